"""Guest networks: create, find, update, restart, delete, and the state they move through.

States follow CloudStack's Network.State: an isolated network is ``Allocated`` when created
(nothing exists anywhere yet), ``Implemented`` once a VM on it first starts (it then holds a
VXLAN segment id and, when its offering has SourceNat, a source NAT public address), and
``Shutdown`` when stopped everywhere; ``deleteNetwork`` ends it in ``Destroy``. Shared networks
are ``Setup`` from the start: their addresses and segment are the admin's.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from cumulo.common.time import utcnow
from cumulo.db.models import Account, Domain
from cumulo.db.models_compute import Nic
from cumulo.db.models_infra import PhysicalNetwork, TrafficType, Zone
from cumulo.db.models_network import (
    LbHealthCheckPolicy,
    LbStickinessPolicy,
    LoadBalancerMember,
    Network,
    NetworkOffering,
    NetworkRule,
    PublicIpAddress,
)
from cumulo.services import limits
from cumulo.services.access import Caller
from cumulo.services.config import ConfigStore
from cumulo.services.errors import NotFound, ParamError, PermissionDenied, ResourceInUse
from cumulo.services.limits import ResourceType
from cumulo.services.network import ipam
from cumulo.services.network import offerings as offering_svc
from cumulo.services.usage import events as usage

DEFAULT_GUEST_CIDR = "10.1.1.0/24"
LIVE_STATES = ("Allocated", "Implementing", "Implemented", "Setup", "Shutdown")


@dataclass
class NetworkSpec:
    name: str
    display_text: str | None
    offering_uuid: str
    zone_uuid: str
    gateway: str | None = None
    netmask: str | None = None
    start_ip: str | None = None
    end_ip: str | None = None
    vlan: str | None = None
    network_domain: str | None = None
    acl_type: str | None = None
    physical_network_uuid: str | None = None
    display: bool = True


def find(session: Session, uuid: str) -> Network:
    found = session.scalar(select(Network).where(Network.uuid == uuid, Network.removed.is_(None)))
    if found is None:
        raise NotFound(f"Unable to find network by id {uuid}")
    return found


def owner_of(session: Session, network: Network) -> Account:
    owner = session.get(Account, network.account_id)
    assert owner is not None
    return owner


def find_for(session: Session, caller: Caller, uuid: str) -> Network:
    """The network, if the caller may change it (531 otherwise)."""
    network = find(session, uuid)
    if network.acl_type == "Domain":
        domain = session.get(Domain, network.domain_id)
        assert domain is not None
        caller.check_domain(domain)
    else:
        caller.check_account(owner_of(session, network))
    return network


def can_use(session: Session, owner: Account, network: Network) -> bool:
    """May ``owner``'s VMs plug into ``network``? Its own, or a shared one over its domain."""
    if network.acl_type == "Account":
        return network.account_id == owner.id
    net_domain = session.get(Domain, network.domain_id)
    own_domain = session.get(Domain, owner.domain_id)
    return bool(net_domain and own_domain and own_domain.path.startswith(net_domain.path))


def guest_physical_network(session: Session, zone: Zone, uuid: str | None) -> PhysicalNetwork:
    stmt = (
        select(PhysicalNetwork)
        .join(TrafficType, TrafficType.physical_network_id == PhysicalNetwork.id)
        .where(
            PhysicalNetwork.zone_id == zone.id,
            PhysicalNetwork.removed.is_(None),
            TrafficType.traffic_type == "Guest",
        )
        .order_by(PhysicalNetwork.id)
    )
    if uuid is not None:
        stmt = stmt.where(PhysicalNetwork.uuid == uuid)
    found = session.scalars(stmt.limit(1)).first()
    if found is None:
        raise ParamError(
            f"Unable to find a physical network with Guest traffic type in zone {zone.name}"
        )
    return found


def zone_has_guest_networking(session: Session, zone: Zone) -> bool:
    try:
        guest_physical_network(session, zone, None)
    except ParamError:
        return False
    return zone.network_type == "Advanced"


def _subnet(spec: NetworkSpec, zone: Zone) -> tuple[str, str, str]:
    """(cidr, gateway, netmask): the request's, else the zone's guest CIDR."""
    if (spec.gateway is None) != (spec.netmask is None):
        raise ParamError("gateway and netmask must be specified together")
    if spec.gateway is None or spec.netmask is None:
        net = IPv4Network(zone.guest_cidr or DEFAULT_GUEST_CIDR, strict=False)
        return str(net), str(net.network_address + 1), str(net.netmask)
    try:
        gateway = IPv4Address(spec.gateway.strip())
        net = IPv4Network(f"{gateway}/{spec.netmask.strip()}", strict=False)
    except ValueError:
        raise ParamError(f"Invalid gateway {spec.gateway} or netmask {spec.netmask}") from None
    if net.prefixlen > 29 or gateway in (net.network_address, net.broadcast_address):
        raise ParamError(f"Invalid gateway {gateway} for the subnet {net}: need a host address")
    return str(net), str(gateway), str(net.netmask)


def _range(spec: NetworkSpec, cidr: str, gateway: str) -> tuple[str | None, str | None]:
    if spec.start_ip is None:
        if spec.end_ip is not None:
            raise ParamError("endip needs startip")
        return None, None
    net = IPv4Network(cidr)
    try:
        low = IPv4Address(spec.start_ip.strip())
        high = IPv4Address((spec.end_ip or spec.start_ip).strip())
    except ValueError:
        raise ParamError(f"Invalid IP range {spec.start_ip}-{spec.end_ip}") from None
    if low > high or low not in net or high not in net:
        raise ParamError(f"The IP range {low}-{high} is not inside the network's CIDR {cidr}")
    if low <= IPv4Address(gateway) <= high:
        raise ParamError(f"The IP range {low}-{high} contains the gateway {gateway}")
    return str(low), str(high)


def _check_offering(caller: Caller, offering: NetworkOffering, spec: NetworkSpec) -> None:
    if offering.state != "Enabled":
        raise ParamError(
            f"Network offering {offering.name} can't be used: its state is not Enabled"
        )
    if offering.for_vpc:
        raise ParamError(f"Network offering {offering.name} is for VPC networks: a vpcid is needed")
    if offering.guest_ip_type == "L2":
        raise ParamError("L2 networks are not supported yet")
    if offering.guest_ip_type == "Shared" and not caller.is_root_admin:
        raise PermissionDenied("Only root admins can create Shared networks")
    if spec.vlan is not None and not caller.is_root_admin:
        raise PermissionDenied("Only root admins can specify a vlan for a network")
    if offering.specify_vlan and spec.vlan is None:
        raise ParamError(f"Network offering {offering.name} requires a vlan to be specified")
    if offering.guest_ip_type == "Shared" and (spec.gateway is None or spec.start_ip is None):
        raise ParamError("Shared networks need gateway, netmask and startip")


def _vlan(value: str | None) -> int | None:
    if value is None:
        return None
    tag = value.strip().removeprefix("vxlan://").removeprefix("vlan://")
    if not tag.isdigit() or not 0 < int(tag) <= 16777214:
        raise ParamError(f"Invalid vlan {value}: a segment id from 1 to 16777214")
    return int(tag)


def create(
    session: Session,
    caller: Caller,
    owner: Account,
    spec: NetworkSpec,
    *,
    config: ConfigStore | None = None,
) -> Network:
    """A network row, checked and counted; nothing is implemented until a VM starts."""
    zone = session.scalar(select(Zone).where(Zone.uuid == spec.zone_uuid, Zone.removed.is_(None)))
    if zone is None:
        raise ParamError(f"Unable to find zone by id {spec.zone_uuid}")
    offering = offering_svc.find(session, spec.offering_uuid)
    _check_offering(caller, offering, spec)
    if offering.guest_ip_type == "Isolated" and zone.network_type != "Advanced":
        raise ParamError("Isolated networks can only be created in an Advanced zone")
    if not spec.name or not spec.name.strip():
        raise ParamError("Network name must not be empty")
    physical = guest_physical_network(session, zone, spec.physical_network_uuid)
    cidr, gateway, netmask = _subnet(spec, zone)
    start, end = _range(spec, cidr, gateway)
    segment = _vlan(spec.vlan)
    shared = offering.guest_ip_type == "Shared"
    acl = (spec.acl_type or ("Domain" if shared else "Account")).capitalize()
    if acl not in ("Account", "Domain") or (acl == "Domain" and not shared):
        raise ParamError(f"Invalid acltype {spec.acl_type} for a {offering.guest_ip_type} network")
    network = Network(
        name=spec.name.strip(),
        display_text=spec.display_text or spec.name.strip(),
        zone_id=zone.id,
        physical_network_id=physical.id,
        offering_id=offering.id,
        account_id=owner.id,
        domain_id=owner.domain_id,
        acl_type=acl,
        guest_type=offering.guest_ip_type,
        state="Setup" if shared else "Allocated",
        cidr=cidr,
        gateway=gateway,
        netmask=netmask,
        start_ip=start,
        end_ip=end,
        specified_vlan=str(segment) if segment is not None else None,
        network_domain=spec.network_domain
        or zone.network_domain
        or f"cs{owner.id:x}cloud.internal",
        display=spec.display,
    )
    session.add(network)
    if segment is not None:
        _take_specified_segment(session, network, physical, segment)
    limits.check_and_increment(session, owner.id, ResourceType.network, config=config)
    session.flush()
    return network


def _take_specified_segment(
    session: Session, network: Network, physical: PhysicalNetwork, segment: int
) -> None:
    used = session.scalar(
        select(Network.id).where(
            Network.physical_network_id == physical.id,
            Network.segment_id == segment,
            Network.removed.is_(None),
        )
    )
    if used is not None:
        raise ParamError(f"The vlan {segment} is already used by another network")
    network.segment_id = segment


def update(
    session: Session,
    network: Network,
    *,
    name: str | None = None,
    display_text: str | None = None,
    network_domain: str | None = None,
    display: bool | None = None,
    offering_uuid: str | None = None,
) -> Network:
    if name is not None:
        if not name.strip():
            raise ParamError("Network name must not be empty")
        network.name = name.strip()
    if display_text is not None:
        network.display_text = display_text
    if network_domain is not None and network_domain != network.network_domain:
        network.network_domain = network_domain
        network.restart_required = network.state == "Implemented"
    if display is not None:
        network.display = display
    if offering_uuid is not None:
        offering = offering_svc.find(session, offering_uuid)
        current = session.get(NetworkOffering, network.offering_id)
        assert current is not None
        if offering.guest_ip_type != current.guest_ip_type or offering.state != "Enabled":
            raise ParamError(
                f"Network offering {offering.name} can't replace {current.name}: it must be "
                "Enabled and of the same guest type"
            )
        network.offering_id = offering.id
    return network


# --- implement, shutdown, restart, delete ----------------------------------------------


def implement(session: Session, network: Network, config: ConfigStore | None = None) -> bool:
    """Give the network what it needs to carry traffic; True when something changed."""
    if network.state in ("Implemented", "Setup") and network.segment_id is not None:
        return False
    physical = session.get(PhysicalNetwork, network.physical_network_id)
    if physical is None:
        raise ParamError(f"Network {network.name} has no physical network")
    if network.segment_id is None:
        ipam.allocate_segment(session, network, physical)
    offering = session.get(NetworkOffering, network.offering_id)
    assert offering is not None
    if offering_svc.has(offering, "SourceNat") and source_nat_ip(session, network) is None:
        zone = session.get(Zone, network.zone_id)
        assert zone is not None
        owner = owner_of(session, network)
        ipam.allocate_public_ip(session, zone, owner, network, source_nat=True)
        limits.check_and_increment(session, owner.id, ResourceType.public_ip, config=config)
    if network.guest_type != "Shared":
        network.state = "Implemented"
    session.flush()
    return True


def shutdown(session: Session, network: Network) -> None:
    """Stopped everywhere: the segment id goes back; the source NAT address stays."""
    if network.state != "Implemented":
        return
    network.segment_id = int(network.specified_vlan) if network.specified_vlan else None
    network.state = "Shutdown"


def source_nat_ip(session: Session, network: Network) -> PublicIpAddress | None:
    return session.scalar(
        select(PublicIpAddress).where(
            PublicIpAddress.network_id == network.id, PublicIpAddress.is_source_nat.is_(True)
        )
    )


def restart(session: Session, network: Network, *, cleanup: bool) -> Network:
    """Rebuild the router: the generation tells the dataplane to redo it (from scratch when
    ``cleanup``); an Allocated or Shutdown network is implemented again."""
    network.router_generation += 2 if cleanup else 1
    network.restart_required = False
    if network.state == "Shutdown":
        implement(session, network)
    return network


def vms_using(session: Session, network: Network) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Nic)
            .where(Nic.network_id == network.id, Nic.removed.is_(None))
        )
        or 0
    )


def check_deletable(session: Session, network: Network) -> None:
    used = vms_using(session, network)
    if used:
        raise ResourceInUse(
            f"Can't delete the network {network.name}: {used} VM NIC(s) still use it; "
            "expunge the VMs first"
        )


def destroy(session: Session, network: Network) -> None:
    """Release everything the network holds (addresses, rules, segment) and remove it."""
    for ip in session.scalars(
        select(PublicIpAddress).where(PublicIpAddress.network_id == network.id)
    ).all():
        release_public_ip(session, ip)
    usage.record_rules_removed(session, NetworkRule.network_id == network.id)
    rule_ids = select(NetworkRule.id).where(NetworkRule.network_id == network.id)
    session.execute(delete(LoadBalancerMember).where(LoadBalancerMember.rule_id.in_(rule_ids)))
    for policy in (LbStickinessPolicy, LbHealthCheckPolicy):
        session.execute(delete(policy).where(policy.rule_id.in_(rule_ids)))
    session.execute(delete(NetworkRule).where(NetworkRule.network_id == network.id))
    network.segment_id = None
    network.state = "Destroy"
    network.removed = utcnow()
    limits.decrement_many(session, network.account_id, {ResourceType.network: 1})


def release_public_ip(session: Session, ip: PublicIpAddress) -> None:
    """The address's rules go with it; the owner's public IP count goes down."""
    usage.record_rules_removed(session, NetworkRule.public_ip_id == ip.id)
    rule_ids = select(NetworkRule.id).where(NetworkRule.public_ip_id == ip.id)
    session.execute(delete(LoadBalancerMember).where(LoadBalancerMember.rule_id.in_(rule_ids)))
    for policy in (LbStickinessPolicy, LbHealthCheckPolicy):
        session.execute(delete(policy).where(policy.rule_id.in_(rule_ids)))
    session.execute(delete(NetworkRule).where(NetworkRule.public_ip_id == ip.id))
    limits.decrement_many(session, ip.account_id, {ResourceType.public_ip: 1})
    usage.record_owned(
        session, usage.IP_RELEASE, ip, "PublicIpAddress", zone_id=ip.zone_id, name=ip.address
    )
    session.delete(ip)
    session.flush()


def usable_isolated(session: Session, owner: Account, zone: Zone) -> list[Network]:
    return list(
        session.scalars(
            select(Network)
            .where(
                Network.account_id == owner.id,
                Network.zone_id == zone.id,
                Network.guest_type == "Isolated",
                Network.removed.is_(None),
            )
            .order_by(Network.id)
        )
    )


# --- counting from the truth (updateResourceCount) ------------------------------------


def _count_networks(session: Session, account: Account) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Network)
            .where(Network.account_id == account.id, Network.removed.is_(None))
        )
        or 0
    )


def _count_public_ips(session: Session, account: Account) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(PublicIpAddress)
            .where(PublicIpAddress.account_id == account.id)
        )
        or 0
    )


limits.register_counter(ResourceType.network, _count_networks)
limits.register_counter(ResourceType.public_ip, _count_public_ips)
