"""VLAN/IP ranges: the public (or shared-network) addresses of a zone (CloudStack's ``vlan``).

Ranges are checked before anything is written: IPv4 addresses, start <= end, inside the
gateway/netmask, and not overlapping any other range of the same zone, since one address
handed out twice would break two tenants at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from cumulo.common.time import utcnow
from cumulo.db.models import Account, Domain
from cumulo.db.models_infra import PhysicalNetwork, Pod, TrafficType, VlanIpRange, Zone
from cumulo.services.errors import ParamError
from cumulo.services.infra import addresses


@dataclass
class RangeSpec:
    gateway: str
    netmask: str
    start_ip: str
    end_ip: str | None = None
    vlan: str | None = None
    for_virtual_network: bool = True
    network_id: int | None = None
    ip6_gateway: str | None = None
    ip6_cidr: str | None = None
    ip6_range: str | None = None


@dataclass
class Placement:
    zone: Zone
    pod: Pod | None = None
    physical_network: PhysicalNetwork | None = None
    account: Account | None = None
    domain: Domain | None = None


def find_range(session: Session, uuid: str) -> VlanIpRange:
    found = session.scalar(
        select(VlanIpRange).where(VlanIpRange.uuid == uuid, VlanIpRange.removed.is_(None))
    )
    if found is None:
        raise ParamError(f"Unable to find vlan ip range by id {uuid}")
    return found


def vlan_uri(value: str | None) -> str:
    """CloudStack shows a range's VLAN as a broadcast URI: ``vlan://100``, ``vlan://untagged``."""
    if value is None or value.lower() in ("untagged", "vlan://untagged"):
        return "vlan://untagged"
    tag = value.removeprefix("vlan://")
    if not tag.isdigit() or not 0 <= int(tag) <= 4095:
        raise ParamError(f"Invalid vlan {value}: a number from 0 to 4095 or untagged")
    return f"vlan://{int(tag)}"


def public_network(session: Session, zone: Zone, traffic: str) -> PhysicalNetwork | None:
    """The zone's physical network carrying ``traffic``, when the caller names none."""
    return session.scalar(
        select(PhysicalNetwork)
        .join(TrafficType, TrafficType.physical_network_id == PhysicalNetwork.id)
        .where(
            PhysicalNetwork.zone_id == zone.id,
            PhysicalNetwork.removed.is_(None),
            TrafficType.traffic_type == traffic,
        )
        .order_by(PhysicalNetwork.id)
        .limit(1)
    )


def _check_free(session: Session, zone: Zone, spec: RangeSpec) -> None:
    mine = addresses.checked_range(spec.gateway, spec.netmask, spec.start_ip, spec.end_ip)
    others = select(VlanIpRange).where(
        VlanIpRange.zone_id == zone.id, VlanIpRange.removed.is_(None)
    )
    for other in session.scalars(others):
        theirs = (
            addresses.ipv4("startip", other.start_ip),
            addresses.ipv4("endip", other.end_ip),
        )
        if addresses.overlaps(mine, theirs):
            raise ParamError(
                f"The IP range {mine[0]}-{mine[1]} overlaps the existing range "
                f"{other.start_ip}-{other.end_ip} in zone {zone.name}"
            )


def create_range(session: Session, where: Placement, spec: RangeSpec) -> VlanIpRange:
    if where.pod is not None and where.pod.zone_id != where.zone.id:
        raise ParamError(f"Pod {where.pod.name} does not belong to zone {where.zone.name}")
    if where.physical_network is not None and where.physical_network.zone_id != where.zone.id:
        raise ParamError(
            f"Physical network {where.physical_network.name} is not in zone {where.zone.name}"
        )
    _check_free(session, where.zone, spec)
    end = spec.end_ip or spec.start_ip
    row = VlanIpRange(
        zone_id=where.zone.id,
        pod_id=where.pod.id if where.pod is not None else None,
        physical_network_id=(
            where.physical_network.id if where.physical_network is not None else None
        ),
        network_id=spec.network_id,
        vlan_tag=vlan_uri(spec.vlan),
        gateway=spec.gateway.strip(),
        netmask=spec.netmask.strip(),
        start_ip=spec.start_ip.strip(),
        end_ip=end.strip(),
        ip6_gateway=spec.ip6_gateway,
        ip6_cidr=spec.ip6_cidr,
        ip6_range=spec.ip6_range,
        for_virtual_network=spec.for_virtual_network,
        purpose="Public" if spec.for_virtual_network else "DirectAttached",
        account_id=where.account.id if where.account is not None else None,
        domain_id=(
            where.account.domain_id
            if where.account is not None
            else (where.domain.id if where.domain is not None else None)
        ),
        description=f"{spec.start_ip.strip()}-{end.strip()}",
    )
    session.add(row)
    session.flush()
    return row


def delete_range(row: VlanIpRange) -> None:
    row.removed = utcnow()
