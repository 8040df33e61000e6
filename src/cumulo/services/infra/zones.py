"""Zones: create, change, delete, and who may see which (CloudStack's DataCenter).

A new zone starts Disabled, as CloudStack's do, so nobody deploys into it while it is being
built; the operator enables it last. A zone dedicated to a domain is visible to that domain
and its subdomains only; a user never sees a disabled zone.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlalchemy.orm import Session

from cumulo.common.time import utcnow
from cumulo.db.models import Domain
from cumulo.db.models_infra import (
    Host,
    ImageStore,
    PhysicalNetwork,
    Pod,
    StoragePool,
    VlanIpRange,
    Zone,
)
from cumulo.services.access import Caller
from cumulo.services.errors import ParamError, ResourceInUse
from cumulo.services.infra import DISABLED, ENABLED, addresses, allocation_state

NETWORK_TYPES = ("Basic", "Advanced")


@dataclass
class ZoneChanges:
    """What createZone or updateZone may set; None leaves a field as it is."""

    name: str | None = None
    description: str | None = None
    dns1: str | None = None
    dns2: str | None = None
    ip6dns1: str | None = None
    ip6dns2: str | None = None
    internal_dns1: str | None = None
    internal_dns2: str | None = None
    guest_cidr: str | None = None
    network_domain: str | None = None
    allocation_state: str | None = None
    local_storage_enabled: bool | None = None
    security_groups_enabled: bool | None = None

    def values(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def find_zone(session: Session, uuid: str) -> Zone:
    zone = session.scalar(select(Zone).where(Zone.uuid == uuid, Zone.removed.is_(None)))
    if zone is None:
        raise ParamError(f"Unable to find zone by id {uuid}")
    return zone


def network_type(value: str) -> str:
    for kind in NETWORK_TYPES:
        if kind.lower() == value.lower():
            return kind
    raise ParamError(f"Invalid network type {value}: Basic or Advanced")


def _check_name_free(session: Session, name: str, zone_id: int | None = None) -> None:
    clash = select(Zone.id).where(Zone.name == name, Zone.removed.is_(None))
    if zone_id is not None:
        clash = clash.where(Zone.id != zone_id)
    if session.scalar(clash) is not None:
        raise ParamError(f"A zone with name {name} already exists")


def _check_addresses(changes: ZoneChanges) -> None:
    """CloudStack refuses a DNS server or guest CIDR that is not an address (431)."""
    for field in ("dns1", "dns2", "internal_dns1", "internal_dns2"):
        value = getattr(changes, field)
        if value:
            addresses.ipv4(field.replace("_", ""), value)
    if changes.guest_cidr:
        addresses.cidr("guestcidraddress", changes.guest_cidr)


def create_zone(
    session: Session, changes: ZoneChanges, kind: str, domain: Domain | None = None
) -> Zone:
    assert changes.name is not None
    _check_name_free(session, changes.name)
    _check_addresses(changes)
    zone = Zone(
        name=changes.name,
        description=changes.description or "",
        network_type=network_type(kind),
        domain_id=domain.id if domain is not None else None,
    )
    session.add(zone)
    _apply(zone, changes, creating=True)
    session.flush()
    return zone


def _apply(zone: Zone, changes: ZoneChanges, creating: bool = False) -> None:
    values = changes.values()
    values["allocation_state"] = allocation_state(
        changes.allocation_state, DISABLED if creating else zone.allocation_state
    )
    if creating:
        values["local_storage_enabled"] = bool(changes.local_storage_enabled)
        values["security_groups_enabled"] = bool(changes.security_groups_enabled)
    for name, value in values.items():
        if value is not None:
            setattr(zone, name, value)


def update_zone(session: Session, zone: Zone, changes: ZoneChanges) -> Zone:
    if changes.name is not None and changes.name != zone.name:
        _check_name_free(session, changes.name, zone.id)
    _check_addresses(changes)
    _apply(zone, changes)
    session.flush()
    return zone


# What keeps a zone from being deleted, in the order an operator would remove them.
_ZONE_CHILDREN: tuple[tuple[str, Any, Any], ...] = (
    ("hosts", Host, Host.zone_id),
    ("primary storage pools", StoragePool, StoragePool.zone_id),
    ("image stores", ImageStore, ImageStore.zone_id),
    ("public IP ranges", VlanIpRange, VlanIpRange.zone_id),
    ("pods", Pod, Pod.zone_id),
    ("physical networks", PhysicalNetwork, PhysicalNetwork.zone_id),
)


def delete_zone(session: Session, zone: Zone) -> None:
    """Refused (536) while anything still lives in the zone: nothing is removed implicitly."""
    for what, model, column in _ZONE_CHILDREN:
        if session.scalar(select(exists().where(column == zone.id, model.removed.is_(None)))):
            raise ResourceInUse(
                f"The zone {zone.name} is not deletable because there are {what} in this zone"
            )
    zone.removed = utcnow()


def _ancestor_paths(path: str) -> list[str]:
    """ "/a/b/" -> ["/", "/a/", "/a/b/"]: the domains whose dedicated zones a member sees."""
    parts = [p for p in path.split("/") if p]
    return ["/"] + ["/" + "/".join(parts[: i + 1]) + "/" for i in range(len(parts))]


def visible_where(caller: Caller, domain_path: Any) -> ColumnElement[bool]:
    """Zones a non-root caller may use: Enabled, and public or dedicated to its domain line.

    ``domain_path`` is the (outer-joined) path of the zone's dedicated domain. A domain admin
    also sees zones dedicated below its own domain, since it manages those accounts.
    """
    dedicated_ok = domain_path.in_(_ancestor_paths(caller.domain_path))
    if caller.is_domain_admin:
        dedicated_ok = or_(
            dedicated_ok, domain_path.startswith(caller.domain_path, autoescape=True)
        )
    return and_(Zone.allocation_state == ENABLED, or_(Zone.domain_id.is_(None), dedicated_ok))
