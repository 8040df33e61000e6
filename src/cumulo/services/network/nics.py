"""VM NICs on guest networks: allocated with the VM, implemented at start, freed at expunge.

The compute side calls three functions and nothing else: ``allocate`` while creating a VM,
``prepare_start``/``specs`` while planning a start, ``release`` at expunge. A NIC gets the
lowest free address of its network (``ipam``) and a MAC built from its own row id under the
locally administered prefix ``02:00``, unique for as long as row ids are (2**32 NICs).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from cumulo.agentrpc import sgconfig
from cumulo.agentrpc.messages import NicSpec
from cumulo.common.time import utcnow
from cumulo.db.models import Account
from cumulo.db.models_compute import Nic, VirtualMachine
from cumulo.db.models_infra import Zone
from cumulo.db.models_network import (
    LoadBalancerMember,
    Network,
    NetworkRule,
    NicSecondaryIp,
    PublicIpAddress,
    SecurityGroupMember,
)
from cumulo.services.access import Caller
from cumulo.services.config import ConfigStore
from cumulo.services.errors import ParamError, PermissionDenied
from cumulo.services.network import ipam, networks
from cumulo.services.network import offerings as offering_svc
from cumulo.services.usage import events as usage


def mac_for(nic_id: int) -> str:
    octets = [(nic_id >> shift) & 0xFF for shift in (24, 16, 8, 0)]
    return "02:00:" + ":".join(f"{o:02x}" for o in octets)


def bridge_name(network: Network) -> str:
    """The host bridge of a network: named from its segment id (Linux allows 15 chars)."""
    return f"brvx{network.segment_id}" if network.segment_id is not None else f"brnet{network.id}"


def _networks_for(
    session: Session,
    caller: Caller,
    owner: Account,
    zone: Zone,
    uuids: Sequence[str],
    config: ConfigStore | None,
) -> list[Network]:
    """The requested networks, or CloudStack's Advanced-zone default when none is named."""
    if uuids:
        found = []
        for uuid in dict.fromkeys(uuids):
            network = networks.find(session, uuid)
            if network.zone_id != zone.id:
                raise ParamError(f"Network {network.name} is not in zone {zone.name}")
            if not networks.can_use(session, owner, network):
                raise PermissionDenied(
                    f"Account {owner.name} does not have permission to use network {uuid}"
                )
            found.append(network)
        return found
    if not networks.zone_has_guest_networking(session, zone):
        return []  # a zone without guest networking set up: VMs get no NIC (simulator)
    own = networks.usable_isolated(session, owner, zone)
    if len(own) == 1:
        return own
    if len(own) > 1:
        raise ParamError(
            "More than one isolated network exists for the account: specify networkids"
        )
    default = offering_svc.find_by_name(session, offering_svc.DEFAULT_ISOLATED)
    if default is None or default.state != "Enabled":
        raise ParamError("Can't find a default network for the VM: specify networkids")
    spec = networks.NetworkSpec(
        name=f"{owner.name}-network",
        display_text=f"{owner.name}-network",
        offering_uuid=default.uuid,
        zone_uuid=zone.uuid,
    )
    return [networks.create(session, caller, owner, spec, config=config)]


def allocate(
    session: Session,
    caller: Caller,
    owner: Account,
    vm: VirtualMachine,
    network_uuids: Sequence[str],
    *,
    ip_address: str | None = None,
    config: ConfigStore | None = None,
) -> list[Nic]:
    """One NIC per network, the first the default; ``ip_address`` asks for the first's IP."""
    zone = session.get(Zone, vm.zone_id)
    assert zone is not None
    out = []
    for device, network in enumerate(
        _networks_for(session, caller, owner, zone, network_uuids, config)
    ):
        out.append(add_nic(session, vm, network, device, ip_address if device == 0 else None))
    return out


def add_nic(
    session: Session, vm: VirtualMachine, network: Network, device: int, ip: str | None = None
) -> Nic:
    nic = Nic(
        vm_id=vm.id,
        network_id=network.id,
        device_id=device,
        mac="",
        netmask=network.netmask,
        gateway=network.gateway,
        is_default=device == 0,
        traffic_type="Guest",
    )
    session.add(nic)
    session.flush()
    nic.mac = mac_for(nic.id)
    nic.ip4 = ipam.allocate_guest_ip(session, network, nic.id, ip)
    usage.record_nic(session, usage.OFFERING_ASSIGN, vm, nic)
    return nic


def vm_nics(session: Session, vm_id: int) -> list[tuple[Nic, Network]]:
    return [
        (nic, network)
        for nic, network in session.execute(
            select(Nic, Network)
            .join(Network, Network.id == Nic.network_id)
            .where(Nic.vm_id == vm_id, Nic.removed.is_(None))
            .order_by(Nic.device_id)
        )
    ]


def prepare_start(session: Session, vm: VirtualMachine, config: ConfigStore | None = None) -> None:
    """Implement every network the VM plugs into (segment id, source NAT) before it starts."""
    for _nic, network in vm_nics(session, vm.id):
        networks.implement(session, network, config)


def specs(session: Session, vm: VirtualMachine) -> tuple[NicSpec, ...]:
    """The VM's NICs for a start, each with its security-group filtering when the VM is in
    groups, so the host filters the tap before the guest sends its first frame."""
    from cumulo.services.network import port_rules  # it builds on this module's queries

    filtering = {
        port.nic_id: sgconfig.to_wire(port) for port in port_rules.render(session, vm.uuid)
    }
    return tuple(
        NicSpec(
            nic_id=nic.uuid,
            mac=nic.mac,
            bridge=bridge_name(network),
            ip4=nic.ip4,
            device_id=nic.device_id,
            security_group=filtering.get(nic.uuid),
        )
        for nic, network in vm_nics(session, vm.id)
    )


def release(session: Session, vm: VirtualMachine) -> None:
    """At expunge: addresses back to their networks, the VM out of every rule it was in."""
    now = utcnow()
    used: set[int] = set()
    for nic in session.scalars(select(Nic).where(Nic.vm_id == vm.id, Nic.removed.is_(None))):
        ipam.release_guest_ips(session, nic.id)
        usage.record_nic(session, usage.OFFERING_REMOVE, vm, nic)
        nic.removed = now
        used.add(nic.network_id or 0)
    session.flush()
    for network in session.scalars(select(Network).where(Network.id.in_(used))):
        shutdown_if_idle(session, network)
    usage.record_rules_removed(
        session, NetworkRule.vm_id == vm.id, NetworkRule.purpose == "PortForwarding"
    )
    session.execute(
        delete(NetworkRule).where(
            NetworkRule.vm_id == vm.id, NetworkRule.purpose == "PortForwarding"
        )
    )
    session.execute(delete(LoadBalancerMember).where(LoadBalancerMember.vm_id == vm.id))
    usage.record_security_groups(session, usage.SG_REMOVE, vm)
    session.execute(delete(SecurityGroupMember).where(SecurityGroupMember.vm_id == vm.id))
    for ip in session.scalars(
        select(PublicIpAddress).where(PublicIpAddress.static_nat_vm_id == vm.id)
    ):
        ip.static_nat_vm_id = None
        ip.static_nat_ip = None


# --- NICs added to, removed from and re-defaulted on an existing VM ----------------------


def _live_nic_on(session: Session, vm: VirtualMachine, network: Network) -> Nic | None:
    return session.scalar(
        select(Nic).where(Nic.vm_id == vm.id, Nic.network_id == network.id, Nic.removed.is_(None))
    )


def check_add(session: Session, owner: Account, vm: VirtualMachine, network: Network) -> None:
    if vm.state not in ("Running", "Stopped"):
        raise ParamError(f"A NIC can be added to a Running or Stopped VM only, not {vm.state}")
    if network.zone_id != vm.zone_id:
        raise ParamError(f"Network {network.name} is not in the VM's zone")
    if not networks.can_use(session, owner, network):
        raise PermissionDenied(f"Account {owner.name} can't use network {network.uuid}")
    if _live_nic_on(session, vm, network) is not None:
        raise ParamError(f"VM {vm.name} already has a NIC on network {network.name}")


def add_to_vm(session: Session, vm: VirtualMachine, network: Network, ip: str | None = None) -> Nic:
    """Idempotent: a NIC already on the network is the answer to a re-run."""
    existing = _live_nic_on(session, vm, network)
    if existing is not None:
        return existing
    devices = [n.device_id for n, _ in vm_nics(session, vm.id)]
    nic = add_nic(session, vm, network, max(devices, default=-1) + 1, ip)
    nic.is_default = not devices
    if vm.state == "Running":
        networks.implement(session, network)
    return nic


def find_nic(session: Session, vm: VirtualMachine, uuid: str) -> Nic:
    nic = session.scalar(
        select(Nic).where(Nic.uuid == uuid, Nic.vm_id == vm.id, Nic.removed.is_(None))
    )
    if nic is None:
        raise ParamError(f"Unable to find NIC {uuid} of VM {vm.name}")
    return nic


def check_remove(nic: Nic) -> None:
    if nic.is_default:
        raise ParamError("Unable to remove the default NIC: make another NIC the default first")


def remove_from_vm(session: Session, vm: VirtualMachine, nic: Nic) -> None:
    """The NIC's address goes back; rules that sent traffic to it go with it."""
    ipam.release_guest_ips(session, nic.id)
    if nic.network_id is not None:
        usage.record_rules_removed(
            session, NetworkRule.vm_id == vm.id, NetworkRule.network_id == nic.network_id
        )
        session.execute(
            delete(NetworkRule).where(
                NetworkRule.vm_id == vm.id, NetworkRule.network_id == nic.network_id
            )
        )
        lb_rules = select(NetworkRule.id).where(NetworkRule.network_id == nic.network_id)
        session.execute(
            delete(LoadBalancerMember).where(
                LoadBalancerMember.vm_id == vm.id, LoadBalancerMember.rule_id.in_(lb_rules)
            )
        )
        for ip in session.scalars(
            select(PublicIpAddress).where(
                PublicIpAddress.static_nat_vm_id == vm.id,
                PublicIpAddress.network_id == nic.network_id,
            )
        ):
            ip.static_nat_vm_id = None
            ip.static_nat_ip = None
    usage.record_nic(session, usage.OFFERING_REMOVE, vm, nic)
    nic.removed = utcnow()
    session.flush()
    network = session.get(Network, nic.network_id) if nic.network_id else None
    if network is not None:
        shutdown_if_idle(session, network)


def shutdown_if_idle(session: Session, network: Network) -> None:
    """The last NIC gone: the network stops holding its segment (CloudStack's network GC
    does this after a delay; with no router process to keep, it is done at once)."""
    if networks.vms_using(session, network) == 0:
        networks.shutdown(session, network)


def make_default(session: Session, vm: VirtualMachine, nic: Nic) -> None:
    for other, _network in vm_nics(session, vm.id):
        other.is_default = other.id == nic.id


# --- secondary IPs (addIpToNic / removeIpFromNic) ---------------------------------------
# DHCP hands out the primary address only; the guest configures a secondary one itself.
# The address is reserved in the network's IPAM like a primary, and port forwarding and
# static NAT may target it (``vmguestip``).


def secondary_ips(session: Session, nic_ids: Sequence[int]) -> dict[int, list[NicSecondaryIp]]:
    found: dict[int, list[NicSecondaryIp]] = {}
    rows = session.scalars(
        select(NicSecondaryIp).where(NicSecondaryIp.nic_id.in_(nic_ids)).order_by(NicSecondaryIp.id)
    )
    for row in rows:
        found.setdefault(row.nic_id, []).append(row)
    return found


def find_nic_by_uuid(session: Session, uuid: str) -> Nic:
    nic = session.scalar(select(Nic).where(Nic.uuid == uuid, Nic.removed.is_(None)))
    if nic is None:
        raise ParamError(f"Unable to find NIC {uuid}")
    return nic


def find_secondary(session: Session, uuid: str) -> NicSecondaryIp:
    row = session.scalar(select(NicSecondaryIp).where(NicSecondaryIp.uuid == uuid))
    if row is None:
        raise ParamError(f"Unable to find secondary IP {uuid}")
    return row


def add_secondary_ip(session: Session, nic: Nic, wanted: str | None) -> NicSecondaryIp:
    """Reserve ``wanted`` (or the network's lowest free address) for the NIC; 431 when the
    address is taken or outside the network."""
    network = session.get(Network, nic.network_id) if nic.network_id is not None else None
    if network is None or nic.vm_id is None:
        raise ParamError(f"NIC {nic.uuid} is not on a guest network")
    if network.guest_type == "L2":
        raise ParamError("Secondary IPs need a network with IP address management (not L2)")
    address = ipam.allocate_guest_ip(session, network, nic.id, wanted)
    row = NicSecondaryIp(nic_id=nic.id, vm_id=nic.vm_id, network_id=network.id, address=address)
    session.add(row)
    session.flush()
    return row


def remove_secondary_ip(session: Session, row: NicSecondaryIp) -> None:
    """Refused (431) while a port forwarding rule or a static NAT still sends traffic to it,
    as CloudStack refuses; otherwise the address goes back to the network."""
    in_use = session.scalar(
        select(NetworkRule.id).where(
            NetworkRule.network_id == row.network_id, NetworkRule.vm_ip == row.address
        )
    ) or session.scalar(
        select(PublicIpAddress.id).where(
            PublicIpAddress.static_nat_ip == row.address,
            PublicIpAddress.static_nat_vm_id == row.vm_id,
        )
    )
    if in_use is not None:
        raise ParamError(
            f"Can't remove IP {row.address}: a port forwarding rule or static NAT uses it"
        )
    ipam.release_address(session, row.network_id, row.address)
    session.delete(row)
    session.flush()
