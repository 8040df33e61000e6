"""Service (compute) and disk offerings: their shapes, their visibility, their lifecycle.

An offering limited to domains is seen by accounts of those domains and of their subdomains
(an offering of a parent domain is inherited), by a domain admin also when it belongs to a
domain below its own, and by the root admin always; one with no domain is public. That rule
is SQL (``visible_to``) so paging and ``count`` stay exact.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, or_, select, true
from sqlalchemy.orm import Session

from cumulo.common.time import utcnow
from cumulo.db.models import Domain
from cumulo.db.models_catalog import DiskOffering, OfferingScope, ServiceOffering
from cumulo.db.models_infra import Zone
from cumulo.services.access import Caller, find_domain
from cumulo.services.errors import ParamError

SERVICE, DISK = "service", "disk"
STORAGE_TYPES = ("shared", "local")
PROVISIONING_TYPES = ("thin", "sparse", "fat")
INT_MAX = 2**31 - 1
MIN_MEMORY = 32  # MiB; CloudStack refuses smaller fixed offerings


@dataclass(frozen=True)
class Scopes:
    """The domains and zones an offering is limited to, as CloudStack shows them (comma lists)."""

    domain_uuids: list[str] = field(default_factory=list)
    domain_names: list[str] = field(default_factory=list)
    zone_uuids: list[str] = field(default_factory=list)
    zone_names: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ComputeShape:
    """What createServiceOffering was asked for; ``customized`` None means "decide from values"."""

    cpu_number: int | None = None
    cpu_speed: int | None = None
    memory: int | None = None
    customized: bool | None = None
    min_cpu_number: int | None = None
    max_cpu_number: int | None = None
    min_memory: int | None = None
    max_memory: int | None = None


def normal_tags(text: str | None) -> str | None:
    """Tags are a comma list; spaces around them mean nothing to the planner."""
    if text is None:
        return None
    tags = [t.strip() for t in text.split(",") if t.strip()]
    return ",".join(tags) or None


def check_choice(value: str | None, choices: Sequence[str], what: str) -> str:
    """Lower-cased and checked: CloudStack accepts these enums in any case."""
    chosen = (value or choices[0]).lower()
    if chosen not in choices:
        raise ParamError(f"Invalid {what} {value}: expected one of {', '.join(choices)}")
    return chosen


def check_name(name: str) -> str:
    if not name.strip():
        raise ParamError("The offering name can't be empty")
    return name.strip()


def _in_range(value: int | None, low: int, what: str) -> None:
    if value is not None and not low <= value <= INT_MAX:
        raise ParamError(f"{what} must be between {low} and {INT_MAX}, got {value}")


def _bounds(low: int | None, high: int | None, floor: int, what: str) -> None:
    if (low is None) != (high is None):
        raise ParamError(f"Both min{what} and max{what} must be given for a custom offering")
    _in_range(low, floor, f"min{what}")
    _in_range(high, floor, f"max{what}")
    if low is not None and high is not None and low > high:
        raise ParamError(f"min{what} {low} is greater than max{what} {high}")


def check_shape(shape: ComputeShape) -> bool:
    """Validate a compute shape and say whether it is custom (values come at deploy time)."""
    fixed = (shape.cpu_number, shape.cpu_speed, shape.memory)
    custom = shape.customized is True or (shape.customized is None and fixed == (None,) * 3)
    bounds = (shape.min_cpu_number, shape.max_cpu_number, shape.min_memory, shape.max_memory)
    if custom:
        if shape.cpu_number is not None or shape.memory is not None:
            raise ParamError(
                "A custom offering takes no cpunumber or memory: they are chosen at deploy time "
                "within mincpunumber/maxcpunumber and minmemory/maxmemory"
            )
        _bounds(shape.min_cpu_number, shape.max_cpu_number, 1, "cpunumber")
        _bounds(shape.min_memory, shape.max_memory, MIN_MEMORY, "memory")
    else:
        if None in fixed:
            raise ParamError(
                "cpunumber, cpuspeed and memory must all be given for a fixed offering "
                "(or none of them, or customized=true, for a custom one)"
            )
        if any(b is not None for b in bounds):
            raise ParamError(
                "mincpunumber, maxcpunumber, minmemory, maxmemory are for custom offerings"
            )
        _in_range(shape.cpu_number, 1, "cpunumber")
        _in_range(shape.memory, MIN_MEMORY, "memory")
    _in_range(shape.cpu_speed, 1, "cpuspeed")
    return custom


# --- scopes ------------------------------------------------------------------------------------


def find_zone(session: Session, uuid: str) -> Zone:
    zone = session.scalar(select(Zone).where(Zone.uuid == uuid, Zone.removed.is_(None)))
    if zone is None:
        raise ParamError(f"Unable to find zone by id {uuid}")
    return zone


def set_scopes(
    session: Session,
    kind: str,
    offering_id: int,
    domain_uuids: Iterable[str] | None,
    zone_uuids: Iterable[str] | None,
) -> None:
    """Replace the domain and/or zone limits given (None leaves that kind as it was)."""
    if domain_uuids is not None:
        domains = {find_domain(session, u).id for u in domain_uuids}
        _clear(session, kind, offering_id, OfferingScope.domain_id)
        session.add_all(
            OfferingScope(offering_kind=kind, offering_id=offering_id, domain_id=d)
            for d in sorted(domains)
        )
    if zone_uuids is not None:
        zones = {find_zone(session, u).id for u in zone_uuids}
        _clear(session, kind, offering_id, OfferingScope.zone_id)
        session.add_all(
            OfferingScope(offering_kind=kind, offering_id=offering_id, zone_id=z)
            for z in sorted(zones)
        )


def _clear(session: Session, kind: str, offering_id: int, col: Any) -> None:
    session.execute(
        delete(OfferingScope).where(
            OfferingScope.offering_kind == kind,
            OfferingScope.offering_id == offering_id,
            col.is_not(None),
        )
    )


def ancestor_paths(path: str) -> list[str]:
    """ "/a/b/" → ["/", "/a/", "/a/b/"]: the domain and every domain above it."""
    paths, acc = ["/"], "/"
    for part in [p for p in path.split("/") if p]:
        acc = f"{acc}{part}/"
        paths.append(acc)
    return paths


def visible_to(caller: Caller, kind: str, id_col: Any) -> ColumnElement[bool]:
    """Public offerings, those of the caller's domain or above it, and (for a domain admin)
    those of domains below it; everything for the root admin."""
    if caller.is_root_admin:
        return true()
    own: ColumnElement[bool] = Domain.path.in_(ancestor_paths(caller.domain_path))
    if caller.is_domain_admin:
        own = or_(own, Domain.path.startswith(caller.domain_path, autoescape=True))
    limited = exists().where(
        OfferingScope.offering_kind == kind,
        OfferingScope.offering_id == id_col,
        OfferingScope.domain_id.is_not(None),
    )
    mine = (
        select(OfferingScope.id)
        .join(Domain, Domain.id == OfferingScope.domain_id)
        .where(OfferingScope.offering_kind == kind, OfferingScope.offering_id == id_col, own)
        .exists()
    )
    return or_(~limited, mine)


def in_domain(kind: str, id_col: Any, domain_id: int) -> ColumnElement[bool]:
    return exists().where(
        OfferingScope.offering_kind == kind,
        OfferingScope.offering_id == id_col,
        OfferingScope.domain_id == domain_id,
    )


def in_zone(kind: str, id_col: Any, zone_id: int) -> ColumnElement[bool]:
    """Offered in a zone: limited to it, or limited to no zone at all."""
    limited = exists().where(
        OfferingScope.offering_kind == kind,
        OfferingScope.offering_id == id_col,
        OfferingScope.zone_id.is_not(None),
    )
    there = exists().where(
        OfferingScope.offering_kind == kind,
        OfferingScope.offering_id == id_col,
        OfferingScope.zone_id == zone_id,
    )
    return or_(~limited, there)


def scopes_of(session: Session, kind: str, ids: Sequence[int]) -> dict[int, Scopes]:
    """The limits of one page of offerings, in two small queries rather than one per row."""
    found: dict[int, Scopes] = {i: Scopes() for i in ids}
    if not ids:
        return found
    base = select(OfferingScope.offering_id).where(
        OfferingScope.offering_kind == kind, OfferingScope.offering_id.in_(ids)
    )
    domains = base.add_columns(Domain.uuid, Domain.name).join(
        Domain, Domain.id == OfferingScope.domain_id
    )
    for oid, uuid, name in session.execute(domains.order_by(OfferingScope.id)):
        found[oid].domain_uuids.append(uuid)
        found[oid].domain_names.append(name)
    zones = base.add_columns(Zone.uuid, Zone.name).join(Zone, Zone.id == OfferingScope.zone_id)
    for oid, uuid, name in session.execute(zones.order_by(OfferingScope.id)):
        found[oid].zone_uuids.append(uuid)
        found[oid].zone_names.append(name)
    return found


def check_visible(session: Session, caller: Caller, kind: str, offering_id: int) -> bool:
    model = ServiceOffering if kind == SERVICE else DiskOffering
    stmt = select(model.id).where(model.id == offering_id, visible_to(caller, kind, model.id))
    return session.scalar(stmt) is not None


# --- lifecycle ---------------------------------------------------------------------------------


def find_service_offering(session: Session, uuid: str) -> ServiceOffering:
    found = session.scalar(
        select(ServiceOffering).where(
            ServiceOffering.uuid == uuid, ServiceOffering.removed.is_(None)
        )
    )
    if found is None:
        raise ParamError(f"Unable to find service offering by id {uuid}")
    return found


def find_disk_offering(session: Session, uuid: str) -> DiskOffering:
    found = session.scalar(
        select(DiskOffering).where(DiskOffering.uuid == uuid, DiskOffering.removed.is_(None))
    )
    if found is None:
        raise ParamError(f"Unable to find disk offering by id {uuid}")
    return found


def retire(offering: ServiceOffering | DiskOffering, now: datetime | None = None) -> None:
    """Mark removed, never delete: what was built from it still names it (CloudStack too)."""
    offering.state = "Inactive"
    offering.removed = now or utcnow()


def rename(
    offering: ServiceOffering | DiskOffering,
    name: str | None,
    display_text: str | None,
    sort_key: int | None,
) -> None:
    if name is not None:
        offering.name = check_name(name)
    if display_text is not None:
        offering.display_text = display_text
    if sort_key is not None:
        offering.sort_key = sort_key


@dataclass(frozen=True)
class ComputeOptions:
    """The rest of createServiceOffering: placement hints and the root disk's kind."""

    offer_ha: bool = False
    limit_cpu_use: bool = False
    is_volatile: bool = False
    customized_iops: bool = False
    dynamic_scaling: bool = True
    host_tags: str | None = None
    storage_tags: str | None = None
    storage_type: str | None = None
    provisioning_type: str | None = None
    root_disk_size: int | None = None


def create_service_offering(
    session: Session,
    name: str,
    display_text: str | None,
    shape: ComputeShape,
    options: ComputeOptions,
) -> ServiceOffering:
    custom = check_shape(shape)
    _in_range(options.root_disk_size, 1, "rootdisksize")
    offering = ServiceOffering(
        name=check_name(name),
        display_text=display_text or name.strip(),
        cpu_number=None if custom else shape.cpu_number,
        cpu_speed=shape.cpu_speed,
        memory=None if custom else shape.memory,
        min_cpu_number=shape.min_cpu_number,
        max_cpu_number=shape.max_cpu_number,
        min_memory=shape.min_memory,
        max_memory=shape.max_memory,
        offer_ha=options.offer_ha,
        limit_cpu_use=options.limit_cpu_use,
        is_volatile=options.is_volatile,
        customized_iops=options.customized_iops,
        dynamic_scaling=options.dynamic_scaling,
        host_tags=normal_tags(options.host_tags),
        storage_tags=normal_tags(options.storage_tags),
        storage_type=check_choice(options.storage_type, STORAGE_TYPES, "storagetype"),
        provisioning_type=check_choice(
            options.provisioning_type, PROVISIONING_TYPES, "provisioningtype"
        ),
        root_disk_size=options.root_disk_size,
    )
    session.add(offering)
    session.flush()
    return offering


def is_custom(offering: ServiceOffering) -> bool:
    return offering.cpu_number is None or offering.memory is None


@dataclass(frozen=True)
class DiskOptions:
    storage_tags: str | None = None
    storage_type: str | None = None
    provisioning_type: str | None = None
    display_offering: bool = True
    details: dict[str, str] = field(default_factory=dict)


def check_disk_size(disk_size: int | None, customized: bool) -> None:
    """A fixed size, or customized: the size is then asked when a volume is made, within
    ``custom.diskoffering.size.min``/``max`` (CloudStack has no per-offering bounds)."""
    if customized:
        if disk_size:
            raise ParamError("A customized disk offering takes no disksize: it is asked at use")
        return
    if disk_size is None:
        raise ParamError("Disksize is required for a non-customized disk offering")
    if not 1 <= disk_size <= INT_MAX:
        raise ParamError(f"disksize must be at least 1 GiB, got {disk_size}")


def create_disk_offering(
    session: Session,
    name: str,
    display_text: str | None,
    disk_size: int | None,
    customized: bool,
    options: DiskOptions,
) -> DiskOffering:
    check_disk_size(disk_size, customized)
    offering = DiskOffering(
        name=check_name(name),
        display_text=display_text or name.strip(),
        disk_size=0 if customized else disk_size,
        customized=customized,
        storage_tags=normal_tags(options.storage_tags),
        storage_type=check_choice(options.storage_type, STORAGE_TYPES, "storagetype"),
        provisioning_type=check_choice(
            options.provisioning_type, PROVISIONING_TYPES, "provisioningtype"
        ),
        details=dict(options.details),
        display_offering=options.display_offering,
    )
    session.add(offering)
    session.flush()
    return offering
