"""Address and segment allocation: guest IPs, public IPs and VXLAN segment ids.

Every allocator is deterministic (lowest free first) and atomic: it inserts a row guarded by
a unique constraint inside a savepoint and moves to the next candidate when another
transaction took the same one first. On SQLite writers are serial anyway (BEGIN IMMEDIATE);
on PostgreSQL the constraint is what keeps two concurrent deploys from sharing an address.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from ipaddress import IPv4Address, IPv4Network

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cumulo.db.models import Account
from cumulo.db.models_infra import PhysicalNetwork, VlanIpRange, Zone
from cumulo.db.models_network import (
    Network,
    NetworkIpAllocation,
    NicSecondaryIp,
    PublicIpAddress,
)
from cumulo.services.errors import InsufficientCapacity, ParamError
from cumulo.services.usage import events as usage

T_ROW = NetworkIpAllocation | PublicIpAddress


def _first_insert(
    session: Session, candidates: Iterator[str], make: Callable[[str], T_ROW]
) -> T_ROW | None:
    for address in candidates:
        row = make(address)
        try:
            with session.begin_nested():
                session.add(row)
                session.flush()
        except IntegrityError:
            continue  # taken by a concurrent transaction since we looked
        return row
    return None


# --- guest addresses --------------------------------------------------------------------


def guest_net(network: Network) -> IPv4Network:
    return IPv4Network(network.cidr, strict=False)


def _guest_candidates(session: Session, network: Network) -> Iterator[str]:
    taken = set(
        session.scalars(
            select(NetworkIpAllocation.address).where(NetworkIpAllocation.network_id == network.id)
        )
    )
    taken.add(network.gateway)
    if network.start_ip and network.end_ip:
        low, high = IPv4Address(network.start_ip), IPv4Address(network.end_ip)
    else:
        net = guest_net(network)
        low, high = net.network_address + 1, net.broadcast_address - 1
    current = low
    while current <= high:
        if str(current) not in taken:
            yield str(current)
        current += 1


def allocate_guest_ip(
    session: Session, network: Network, nic_id: int | None, wanted: str | None = None
) -> str:
    """The lowest free address of the network (or ``wanted``, if free and inside it)."""
    if wanted is not None:
        check_guest_ip(session, network, wanted)
        candidates: Iterator[str] = iter([wanted])
    else:
        candidates = _guest_candidates(session, network)
    row = _first_insert(
        session,
        candidates,
        lambda a: NetworkIpAllocation(network_id=network.id, address=a, nic_id=nic_id),
    )
    if row is None:
        if wanted is not None:
            raise ParamError(f"The IP address {wanted} is already used in network {network.name}")
        raise InsufficientCapacity(
            f"Insufficient address capacity: no free IP address left in network {network.name}"
        )
    return row.address


def check_guest_ip(session: Session, network: Network, address: str) -> None:
    try:
        ip = IPv4Address(address.strip())
    except ValueError:
        raise ParamError(f"Invalid IP address {address}") from None
    net = guest_net(network)
    if ip not in net or ip in (net.network_address, net.broadcast_address):
        raise ParamError(f"IP address {address} is not in the CIDR {network.cidr} of the network")
    if str(ip) == network.gateway:
        raise ParamError(f"IP address {address} is the network's gateway")


def release_guest_ips(session: Session, nic_id: int) -> None:
    """Every address of the NIC back to its network: the primary and its secondary ones."""
    for extra in session.scalars(select(NicSecondaryIp).where(NicSecondaryIp.nic_id == nic_id)):
        session.delete(extra)
    for row in session.scalars(
        select(NetworkIpAllocation).where(NetworkIpAllocation.nic_id == nic_id)
    ):
        session.delete(row)


def addresses_of(session: Session, nic_id: int, primary: str | None) -> set[str]:
    """Every guest address of a NIC, its primary and secondary ones: a rule naming one
    (``vmguestip``) must name one of these."""
    extra = session.scalars(select(NicSecondaryIp.address).where(NicSecondaryIp.nic_id == nic_id))
    return {a for a in (primary, *extra) if a}


def release_address(session: Session, network_id: int, address: str) -> None:
    """One address back to its network (a NIC's secondary IP removed)."""
    for row in session.scalars(
        select(NetworkIpAllocation).where(
            NetworkIpAllocation.network_id == network_id, NetworkIpAllocation.address == address
        )
    ):
        session.delete(row)


# --- VXLAN segment ids ------------------------------------------------------------------


def segment_ranges(physical: PhysicalNetwork) -> list[tuple[int, int]]:
    out = []
    for part in (physical.vlan or "").split(","):
        if not part.strip():
            continue
        low, _, high = part.strip().partition("-")
        out.append((int(low), int(high or low)))
    return out


def allocate_segment(session: Session, network: Network, physical: PhysicalNetwork) -> int:
    """The lowest free VNI of the physical network's range, held by ``network``."""
    taken = set(
        session.scalars(
            select(Network.segment_id).where(
                Network.physical_network_id == physical.id, Network.segment_id.is_not(None)
            )
        )
    )
    for low, high in segment_ranges(physical):
        for vni in range(low, high + 1):
            if vni in taken:
                continue
            try:
                with session.begin_nested():
                    network.segment_id = vni
                    network.physical_network_id = physical.id
                    session.flush()
            except IntegrityError:
                continue
            return vni
    raise InsufficientCapacity(
        f"Unable to allocate a guest segment id for network {network.name}: physical network "
        f"{physical.name} has no free id in its range {physical.vlan or '(none)'}"
    )


# --- public addresses -------------------------------------------------------------------


def _public_candidates(session: Session, zone: Zone) -> Iterator[tuple[VlanIpRange, str]]:
    ranges = session.scalars(
        select(VlanIpRange)
        .where(
            VlanIpRange.zone_id == zone.id,
            VlanIpRange.removed.is_(None),
            VlanIpRange.for_virtual_network.is_(True),
            VlanIpRange.network_id.is_(None),
        )
        .order_by(VlanIpRange.id)
    ).all()
    taken = set(
        session.scalars(select(PublicIpAddress.address).where(PublicIpAddress.zone_id == zone.id))
    )
    for vlan in ranges:
        current, last = IPv4Address(vlan.start_ip), IPv4Address(vlan.end_ip)
        while current <= last:
            if str(current) not in taken:
                yield vlan, str(current)
            current += 1


def allocate_public_ip(
    session: Session, zone: Zone, owner: Account, network: Network | None, *, source_nat: bool
) -> PublicIpAddress:
    """The lowest free public address of the zone, owned by ``owner``."""
    for vlan, address in _public_candidates(session, zone):
        row = PublicIpAddress(
            zone_id=zone.id,
            vlan_range_id=vlan.id,
            address=address,
            account_id=owner.id,
            domain_id=owner.domain_id,
            network_id=network.id if network is not None else None,
            is_source_nat=source_nat,
        )
        try:
            with session.begin_nested():
                session.add(row)
                session.flush()
        except IntegrityError:
            continue
        usage.record_owned(
            session, usage.IP_ASSIGN, row, "PublicIpAddress", zone_id=zone.id, name=address
        )
        return row
    raise InsufficientCapacity(
        f"Insufficient address capacity: no free public IP address in zone {zone.name}"
    )
