"""Public addresses: associate, disassociate, static NAT.

An address comes from the zone's public VLAN IP ranges (lowest free first), belongs to an
account (counted against its ``public_ip`` limit) and, usually, to one of its isolated
networks, whose router will answer for it. A network's source NAT address is taken when the
network is implemented and is released only with the network.
"""

from __future__ import annotations

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from cumulo.db.models import Account
from cumulo.db.models_compute import Nic, VirtualMachine
from cumulo.db.models_infra import Zone
from cumulo.db.models_network import Network, NetworkRule, PublicIpAddress
from cumulo.services import limits
from cumulo.services.access import Caller
from cumulo.services.config import ConfigStore
from cumulo.services.errors import NotFound, ParamError
from cumulo.services.limits import ResourceType
from cumulo.services.network import ipam, networks
from cumulo.services.network.errors import RuleConflict


def find(session: Session, uuid: str) -> PublicIpAddress:
    found = session.scalar(select(PublicIpAddress).where(PublicIpAddress.uuid == uuid))
    if found is None:
        raise NotFound(f"Unable to find ip address by id {uuid}")
    return found


def find_for(session: Session, caller: Caller, uuid: str) -> PublicIpAddress:
    ip = find(session, uuid)
    owner = session.get(Account, ip.account_id)
    assert owner is not None
    caller.check_account(owner)
    return ip


def associate(
    session: Session,
    caller: Caller,
    owner: Account,
    *,
    zone_uuid: str | None,
    network_uuid: str | None,
    config: ConfigStore | None = None,
) -> PublicIpAddress:
    network = None
    if network_uuid is not None:
        network = networks.find_for(session, caller, network_uuid)
        if network.guest_type != "Isolated":
            raise ParamError(
                f"Public IPs can only be associated to Isolated networks: {network.name}"
            )
        owner = networks.owner_of(session, network)
        zone = session.get(Zone, network.zone_id)
    elif zone_uuid is not None:
        zone = session.scalar(select(Zone).where(Zone.uuid == zone_uuid, Zone.removed.is_(None)))
    else:
        raise ParamError("One of zoneid or networkid is required to associate an IP address")
    if zone is None:
        raise ParamError(f"Unable to find zone by id {zone_uuid}")
    if network is None:
        own = networks.usable_isolated(session, owner, zone)
        network = own[0] if len(own) == 1 else None
    limits.check_and_increment(session, owner.id, ResourceType.public_ip, config=config)
    return ipam.allocate_public_ip(session, zone, owner, network, source_nat=False)


def check_releasable(ip: PublicIpAddress) -> None:
    if ip.is_source_nat:
        raise ParamError(
            f"IP address {ip.address} is the source NAT address of its network: it is "
            "released with the network only"
        )


def disassociate(session: Session, ip: PublicIpAddress) -> None:
    check_releasable(ip)
    networks.release_public_ip(session, ip)


def has_rules(session: Session, ip: PublicIpAddress, *purposes: str) -> bool:
    stmt = exists().where(NetworkRule.public_ip_id == ip.id)
    if purposes:
        stmt = stmt.where(NetworkRule.purpose.in_(purposes))
    return bool(session.scalar(select(stmt)))


def vm_nic_on(session: Session, vm: VirtualMachine, network_id: int) -> Nic:
    nic = session.scalar(
        select(Nic).where(Nic.vm_id == vm.id, Nic.network_id == network_id, Nic.removed.is_(None))
    )
    if nic is None or nic.ip4 is None:
        raise ParamError(f"VM {vm.name} has no NIC on the IP address's network")
    return nic


def enable_static_nat(
    session: Session, ip: PublicIpAddress, vm: VirtualMachine, guest_ip: str | None
) -> PublicIpAddress:
    if ip.is_source_nat:
        raise ParamError(f"Can't enable static NAT on the source NAT address {ip.address}")
    if ip.network_id is None:
        raise ParamError(f"IP address {ip.address} is not associated with any network")
    if ip.static_nat_vm_id is not None and ip.static_nat_vm_id != vm.id:
        raise ParamError(f"Static NAT is already enabled on {ip.address} for another VM")
    if has_rules(session, ip, "PortForwarding", "LoadBalancing"):
        raise RuleConflict(
            f"Can't enable static NAT on {ip.address}: it has port forwarding or load "
            "balancing rules"
        )
    if vm.account_id != ip.account_id:
        raise ParamError(f"VM {vm.name} and IP address {ip.address} belong to different accounts")
    nic = vm_nic_on(session, vm, ip.network_id)
    if guest_ip is not None and guest_ip not in ipam.addresses_of(session, nic.id, nic.ip4):
        raise ParamError(f"{guest_ip} is not an address of VM {vm.name} on that network")
    target = guest_ip or nic.ip4  # a secondary IP of the NIC may be the target (issue 7)
    taken = select(PublicIpAddress.id).where(
        PublicIpAddress.static_nat_vm_id == vm.id,
        PublicIpAddress.static_nat_ip == target,
        PublicIpAddress.id != ip.id,
    )
    if session.scalar(taken) is not None:
        raise ParamError(f"VM {vm.name} already has static NAT from another address")
    ip.static_nat_vm_id = vm.id
    ip.static_nat_ip = target
    return ip


def disable_static_nat(ip: PublicIpAddress) -> None:
    if ip.static_nat_vm_id is None:
        raise ParamError(f"Static NAT is not enabled on IP address {ip.address}")
    ip.static_nat_vm_id = None
    ip.static_nat_ip = None


def network_of(session: Session, ip: PublicIpAddress) -> Network:
    if ip.network_id is None:
        raise ParamError(f"IP address {ip.address} is not associated with any network")
    network = session.get(Network, ip.network_id)
    assert network is not None
    return network
