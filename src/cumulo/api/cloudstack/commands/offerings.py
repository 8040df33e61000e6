"""Service (compute) and disk offerings: create, update, delete (root admin), list (everyone).

Lists select plain columns and fetch the page's domain and zone limits in one more query,
rendered as CloudStack does: comma-joined ``domainid``/``domain`` and ``zoneid``/``zone``.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any

from sqlalchemy import ColumnElement, Select, or_, select

from cumulo.api.cloudstack.registry import Kind, Param, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx, Listing, Success
from cumulo.common.time import to_wire
from cumulo.db.models_catalog import DiskOffering, ServiceOffering
from cumulo.services.access import ALL_ROLES, ROOT_ADMIN, find_domain
from cumulo.services.catalog import offerings as svc
from cumulo.services.catalog.offerings import DISK, SERVICE, Scopes
from cumulo.services.errors import ParamError

SERVICE_FIELDS = (
    "id",
    "name",
    "displaytext",
    "cpunumber",
    "cpuspeed",
    "memory",
    "created",
    "storagetype",
    "provisioningtype",
    "offerha",
    "limitcpuuse",
    "isvolatile",
    "tags",
    "hosttags",
    "domainid",
    "domain",
    "zoneid",
    "zone",
    "issystem",
    "defaultuse",
    "iscustomized",
    "iscustomizediops",
    "rootdisksize",
    "dynamicscalingenabled",
    "serviceofferingdetails",
    "state",
)
DISK_FIELDS = (
    "id",
    "name",
    "displaytext",
    "disksize",
    "iscustomized",
    "tags",
    "storagetype",
    "provisioningtype",
    "created",
    "domainid",
    "domain",
    "zoneid",
    "zone",
    "displayoffering",
    "state",
)
# createDiskOffering's I/O knobs: stored as details, shown under CloudStack's response names.
DISK_DETAILS = {
    "bytesreadrate": "diskBytesReadRate",
    "bytesreadratemax": "diskBytesReadRateMax",
    "bytesreadratemaxlength": "diskBytesReadRateMaxLength",
    "byteswriterate": "diskBytesWriteRate",
    "byteswriteratemax": "diskBytesWriteRateMax",
    "byteswriteratemaxlength": "diskBytesWriteRateMaxLength",
    "iopsreadrate": "diskIopsReadRate",
    "iopsreadratemax": "diskIopsReadRateMax",
    "iopsreadratemaxlength": "diskIopsReadRateMaxLength",
    "iopswriterate": "diskIopsWriteRate",
    "iopswriteratemax": "diskIopsWriteRateMax",
    "iopswriteratemaxlength": "diskIopsWriteRateMaxLength",
    "miniops": "miniops",
    "maxiops": "maxiops",
    "hypervisorsnapshotreserve": "hypervisorsnapshotreserve",
    "cachemode": "cacheMode",
}
CACHE_MODES = ("none", "writeback", "writethrough")

Name = Annotated[str | None, Param("the name of the offering")]
DisplayText = Annotated[str | None, Param("the display text of the offering", length=4096)]
SortKey = Annotated[int | None, Param("sort key of the offering, integer")]
DomainIds = Annotated[
    list[UUIDStr] | None,
    Param("the ID of the containing domain(s), null for public offerings", entity="Domain"),
]
ZoneIds = Annotated[
    list[UUIDStr] | None,
    Param("the ID of the containing zone(s), null for public offerings", entity="Zone"),
]
UpdateDomains = Annotated[
    str | None,
    Param(
        "the ID of the containing domain(s) as comma separated string, public for public offerings",
        length=4096,
    ),
]
UpdateZones = Annotated[
    str | None,
    Param(
        "the ID of the containing zone(s) as comma separated string, all for all zones offerings",
        length=4096,
        since="4.13",
    ),
]
StorageType = Annotated[
    str | None,
    Param("the storage type of the offering. Values are local and shared."),
]
ProvisioningType = Annotated[
    str | None,
    Param("provisioning type used to create volumes. Valid values are thin, sparse, fat."),
]


def _joined(values: list[str]) -> str | None:
    return ",".join(values) or None


def _scope_fields(scopes: Scopes) -> dict[str, Any]:
    return {
        "domainid": _joined(scopes.domain_uuids),
        "domain": _joined(scopes.domain_names),
        "zoneid": _joined(scopes.zone_uuids),
        "zone": _joined(scopes.zone_names),
    }


def _update_scopes(
    ctx: Ctx, kind: str, offering_id: int, domains: str | None, zones: str | None
) -> None:
    """updateXOffering takes comma strings: ``public`` clears domains, ``all`` clears zones."""

    def ids(text: str | None, everything: str) -> list[str] | None:
        if text is None:
            return None
        if text.strip().lower() == everything:
            return []
        return [t.strip() for t in text.split(",") if t.strip()]

    svc.set_scopes(ctx.session, kind, offering_id, ids(domains, "public"), ids(zones, "all"))


# --- service offerings -------------------------------------------------------------------------


def service_response(row: Any, scopes: Scopes) -> dict[str, Any]:
    """One offering, from an entity or a row of ``service_select()`` (same attribute names)."""
    custom = row.cpu_number is None or row.memory is None
    bounds = {
        "mincpunumber": row.min_cpu_number,
        "maxcpunumber": row.max_cpu_number,
        "minmemory": row.min_memory,
        "maxmemory": row.max_memory,
    }
    details = {k: str(v) for k, v in bounds.items() if v is not None}
    return {
        "id": row.uuid,
        "name": row.name,
        "displaytext": row.display_text,
        "cpunumber": row.cpu_number,
        "cpuspeed": row.cpu_speed,
        "memory": row.memory,
        "created": to_wire(row.created),
        "storagetype": row.storage_type,
        "provisioningtype": row.provisioning_type,
        "offerha": row.offer_ha,
        "limitcpuuse": row.limit_cpu_use,
        "isvolatile": row.is_volatile,
        "tags": row.storage_tags,
        "hosttags": row.host_tags,
        **_scope_fields(scopes),
        "issystem": False,
        "defaultuse": False,
        "iscustomized": custom,
        "iscustomizediops": row.customized_iops,
        "rootdisksize": row.root_disk_size,
        "dynamicscalingenabled": row.dynamic_scaling,
        "serviceofferingdetails": details or None,
        "state": row.state,
        "hasannotations": False,
    }


@cache
def service_select() -> Select[Any]:
    return select(*ServiceOffering.__table__.c).where(ServiceOffering.removed.is_(None))


def render_service(ctx: Ctx, offering: ServiceOffering) -> dict[str, Any]:
    ctx.session.flush()
    scopes = svc.scopes_of(ctx.session, SERVICE, [offering.id])[offering.id]
    return service_response(offering, scopes)


@command(
    "createServiceOffering",
    description="Creates a service offering.",
    response="serviceoffering",
    roles=ROOT_ADMIN,
    event="SERVICE.OFFERING.CREATE",
    entity="ServiceOffering",
    fields=SERVICE_FIELDS,
)
def create_service_offering(
    ctx: Ctx,
    name: Annotated[str, Param("the name of the service offering", required=True)],
    displaytext: Annotated[
        str | None,
        Param("The display text of the service offering, defaults to 'name'.", length=4096),
    ] = None,
    cpunumber: Annotated[int | None, Param("the CPU number of the service offering")] = None,
    cpuspeed: Annotated[int | None, Param("the CPU speed of the service offering in MHz.")] = None,
    memory: Annotated[int | None, Param("the total memory of the service offering in MB")] = None,
    customized: Annotated[
        bool | None,
        Param(
            "Whether service offering allows custom CPU/memory or not. If set to true, "
            "cpunumber and memory are chosen at deploy time, within mincpunumber/maxcpunumber "
            "and minmemory/maxmemory when those are given",
            since="4.13",
        ),
    ] = None,
    mincpunumber: Annotated[
        int | None, Param("The minimum number of CPUs to be set with Custom Compute Offering")
    ] = None,
    maxcpunumber: Annotated[
        int | None, Param("The maximum number of CPUs to be set with Custom Compute Offering")
    ] = None,
    minmemory: Annotated[
        int | None, Param("The minimum memory size of the custom service offering in MB")
    ] = None,
    maxmemory: Annotated[
        int | None, Param("The maximum memory size of the custom service offering in MB")
    ] = None,
    offerha: Annotated[bool, Param("the HA for the service offering")] = False,
    limitcpuuse: Annotated[
        bool, Param("restrict the CPU usage to committed service offering")
    ] = False,
    isvolatile: Annotated[
        bool,
        Param(
            "true if the virtual machine needs to be volatile so that on every reboot of VM, "
            "original root disk is dettached then destroyed and a fresh root disk is created "
            "and attached to VM"
        ),
    ] = False,
    hosttags: Annotated[
        str | None, Param("the host tag for this service offering.", length=4096)
    ] = None,
    tags: Annotated[str | None, Param("the tags for this service offering.", length=4096)] = None,
    storagetype: StorageType = None,
    provisioningtype: ProvisioningType = None,
    domainid: DomainIds = None,
    zoneid: ZoneIds = None,
    rootdisksize: Annotated[int | None, Param("the Root disk size in GB.", since="4.15")] = None,
    customizediops: Annotated[
        bool, Param("whether compute offering iops is custom or not", since="4.4")
    ] = False,
    dynamicscalingenabled: Annotated[
        bool,
        Param(
            "true if virtual machine needs to be dynamically scalable of cpu or memory",
            since="4.16",
        ),
    ] = True,
    issystem: Annotated[
        bool, Param("is this a system vm offering (not supported: Cumulo has no system VMs)")
    ] = False,
    systemvmtype: Annotated[
        str | None, Param("the system VM type. Possible types are domainrouter, consoleproxy")
    ] = None,
) -> dict[str, Any]:
    if issystem or systemvmtype:
        raise ParamError("System offerings are not supported: Cumulo runs no system VMs")
    shape = svc.ComputeShape(
        cpunumber, cpuspeed, memory, customized, mincpunumber, maxcpunumber, minmemory, maxmemory
    )
    options = svc.ComputeOptions(
        offer_ha=offerha,
        limit_cpu_use=limitcpuuse,
        is_volatile=isvolatile,
        customized_iops=customizediops,
        dynamic_scaling=dynamicscalingenabled,
        host_tags=hosttags,
        storage_tags=tags,
        storage_type=storagetype,
        provisioning_type=provisioningtype,
        root_disk_size=rootdisksize,
    )
    offering = svc.create_service_offering(ctx.session, name, displaytext, shape, options)
    svc.set_scopes(ctx.session, SERVICE, offering.id, domainid, zoneid)
    return render_service(ctx, offering)


@command(
    "updateServiceOffering",
    description="Updates a service offering.",
    response="serviceoffering",
    roles=ROOT_ADMIN,
    event="SERVICE.OFFERING.EDIT",
    entity="ServiceOffering",
    fields=SERVICE_FIELDS,
)
def update_service_offering(
    ctx: Ctx,
    id: Annotated[UUIDStr, Param("the ID of the service offering to be updated", required=True)],
    name: Name = None,
    displaytext: DisplayText = None,
    sortkey: SortKey = None,
    hosttags: Annotated[
        str | None, Param("the host tag for this service offering.", length=4096, since="4.16")
    ] = None,
    storagetags: Annotated[
        str | None,
        Param("comma-separated list of tags for the service offering", length=4096, since="4.16"),
    ] = None,
    domainid: UpdateDomains = None,
    zoneid: UpdateZones = None,
) -> dict[str, Any]:
    offering = svc.find_service_offering(ctx.session, id)
    svc.rename(offering, name, displaytext, sortkey)
    if hosttags is not None:
        offering.host_tags = svc.normal_tags(hosttags)
    if storagetags is not None:
        offering.storage_tags = svc.normal_tags(storagetags)
    _update_scopes(ctx, SERVICE, offering.id, domainid, zoneid)
    return render_service(ctx, offering)


@command(
    "deleteServiceOffering",
    description="Deletes a service offering.",
    roles=ROOT_ADMIN,
    event="SERVICE.OFFERING.DELETE",
    entity="ServiceOffering",
)
def delete_service_offering(
    ctx: Ctx, id: Annotated[UUIDStr, Param("the ID of the service offering", required=True)]
) -> Success:
    offering = svc.find_service_offering(ctx.session, id)
    svc.retire(offering)
    ctx.event_resource = (offering.uuid, offering.name)
    return Success()


def _keyword(ctx: Ctx, name_col: Any, text_col: Any) -> Any:
    like = f"%{ctx.paging.keyword}%"
    return or_(name_col.ilike(like), text_col.ilike(like))


def _list_filters(
    ctx: Ctx, kind: str, id_col: Any, domainid: str | None, zoneid: str | None
) -> list[ColumnElement[bool]]:
    """Visibility, then the domain and zone filters every offering list shares."""
    clauses = [svc.visible_to(ctx.caller, kind, id_col)]
    if domainid is not None:
        domain = find_domain(ctx.session, domainid)
        clauses.append(svc.in_domain(kind, id_col, domain.id))
    if zoneid is not None:
        clauses.append(svc.in_zone(kind, id_col, svc.find_zone(ctx.session, zoneid).id))
    return clauses


@command(
    "listServiceOfferings",
    kind=Kind.LIST,
    description="Lists all available service offerings.",
    response="serviceoffering",
    roles=ALL_ROLES,
    fields=SERVICE_FIELDS,
)
def list_service_offerings(
    ctx: Ctx,
    id: Annotated[UUIDStr | None, Param("ID of the service offering")] = None,
    name: Annotated[str | None, Param("name of the service offering")] = None,
    domainid: Annotated[
        UUIDStr | None,
        Param("the ID of the domain associated with the service offering", entity="Domain"),
    ] = None,
    zoneid: Annotated[
        UUIDStr | None,
        Param("id of zone disk offering is associated with", entity="Zone", since="4.13"),
    ] = None,
    iscustomized: Annotated[
        bool | None, Param("whether the offering is customized or not", since="4.20")
    ] = None,
    issystem: Annotated[bool, Param("is this a system vm offering")] = False,
    systemvmtype: Annotated[
        str | None, Param("the system VM type. Possible types are domainrouter, consoleproxy")
    ] = None,
    virtualmachineid: Annotated[
        UUIDStr | None,
        Param(
            "the ID of the virtual machine. Pass this in if you want to see the available "
            "service offering that a virtual machine can use",
            entity="VirtualMachine",
        ),
    ] = None,
) -> Listing:
    if issystem or systemvmtype:
        return Listing([], 0)  # no system VMs, so no system offerings
    o = ServiceOffering
    stmt = service_select().where(*_list_filters(ctx, SERVICE, o.id, domainid, zoneid))
    if id is not None:
        stmt = stmt.where(o.uuid == id)
    if name is not None:
        stmt = stmt.where(o.name == name)
    if iscustomized is not None:
        custom = or_(o.cpu_number.is_(None), o.memory.is_(None))
        stmt = stmt.where(custom if iscustomized else ~custom)
    if ctx.paging.keyword:
        stmt = stmt.where(_keyword(ctx, o.name, o.display_text))
    rows, total = ctx.page_records(stmt.order_by(o.sort_key, o.id))
    scopes = svc.scopes_of(ctx.session, SERVICE, [r.id for r in rows])
    return Listing([service_response(r, scopes[r.id]) for r in rows], total)


# --- disk offerings ----------------------------------------------------------------------------


def disk_response(row: Any, scopes: Scopes) -> dict[str, Any]:
    details = row.details or {}
    return {
        "id": row.uuid,
        "name": row.name,
        "displaytext": row.display_text,
        "disksize": row.disk_size,
        "iscustomized": row.customized,
        "tags": row.storage_tags,
        "storagetype": row.storage_type,
        "provisioningtype": row.provisioning_type,
        "created": to_wire(row.created),
        **_scope_fields(scopes),
        "displayoffering": row.display_offering,
        "iscustomizediops": details.get("customizediops") == "true",
        **{wire: details[key] for key, wire in DISK_DETAILS.items() if key in details},
        "state": row.state,
        "hasannotations": False,
    }


@cache
def disk_select() -> Select[Any]:
    return select(*DiskOffering.__table__.c).where(DiskOffering.removed.is_(None))


def render_disk(ctx: Ctx, offering: DiskOffering) -> dict[str, Any]:
    ctx.session.flush()
    scopes = svc.scopes_of(ctx.session, DISK, [offering.id])[offering.id]
    return disk_response(offering, scopes)


def _disk_details(values: dict[str, Any], extra: list[dict[str, str]] | None) -> dict[str, str]:
    details = {k: str(v).lower() for k, v in values.items() if v is not None}
    for entry in extra or []:
        details.update({str(k): str(v) for k, v in entry.items()})
    if details.get("cachemode", "none") not in CACHE_MODES:
        raise ParamError(f"Invalid cachemode {details['cachemode']}: none, writeback, writethrough")
    return details


Rate = Annotated[int | None, Param("an I/O rate or burst of the disk offering")]


@command(
    "createDiskOffering",
    description="Creates a disk offering.",
    response="diskoffering",
    roles=ROOT_ADMIN,
    event="DISK.OFFERING.CREATE",
    entity="DiskOffering",
    fields=DISK_FIELDS,
)
def create_disk_offering(
    ctx: Ctx,
    name: Annotated[str, Param("name of the disk offering", required=True)],
    displaytext: Annotated[
        str | None,
        Param("An alternate display text of the disk offering, defaults to 'name'.", length=4096),
    ] = None,
    disksize: Annotated[
        int | None, Param("size of the disk offering in GB (1GB = 1,073,741,824 bytes)")
    ] = None,
    customized: Annotated[bool, Param("whether disk offering size is custom or not")] = False,
    tags: Annotated[str | None, Param("tags for the disk offering", length=4096)] = None,
    storagetype: StorageType = None,
    provisioningtype: ProvisioningType = None,
    domainid: DomainIds = None,
    zoneid: ZoneIds = None,
    displayoffering: Annotated[
        bool, Param("an optional field, whether to display the offering to the end user or not.")
    ] = True,
    bytesreadrate: Rate = None,
    bytesreadratemax: Rate = None,
    byteswriterate: Rate = None,
    byteswriteratemax: Rate = None,
    iopsreadrate: Rate = None,
    iopsreadratemax: Rate = None,
    iopswriterate: Rate = None,
    iopswriteratemax: Rate = None,
    customizediops: Annotated[
        bool | None, Param("whether disk offering iops is custom or not")
    ] = None,
    miniops: Annotated[int | None, Param("min iops of the disk offering")] = None,
    maxiops: Annotated[int | None, Param("max iops of the disk offering")] = None,
    cachemode: Annotated[
        str | None,
        Param(
            "the cache mode to use for this disk offering. none, writeback or writethrough",
            since="4.14",
        ),
    ] = None,
    details: Annotated[
        list[dict[str, str]] | None,
        Param("details to specify disk offering parameters", since="4.16"),
    ] = None,
) -> dict[str, Any]:
    knobs = {
        "bytesreadrate": bytesreadrate,
        "bytesreadratemax": bytesreadratemax,
        "byteswriterate": byteswriterate,
        "byteswriteratemax": byteswriteratemax,
        "iopsreadrate": iopsreadrate,
        "iopsreadratemax": iopsreadratemax,
        "iopswriterate": iopswriterate,
        "iopswriteratemax": iopswriteratemax,
        "customizediops": customizediops,
        "miniops": miniops,
        "maxiops": maxiops,
        "cachemode": cachemode,
    }
    options = svc.DiskOptions(
        storage_tags=tags,
        storage_type=storagetype,
        provisioning_type=provisioningtype,
        display_offering=displayoffering,
        details=_disk_details(knobs, details),
    )
    offering = svc.create_disk_offering(
        ctx.session, name, displaytext, disksize, customized, options
    )
    svc.set_scopes(ctx.session, DISK, offering.id, domainid, zoneid)
    return render_disk(ctx, offering)


@command(
    "updateDiskOffering",
    description="Updates a disk offering.",
    response="diskoffering",
    roles=ROOT_ADMIN,
    event="DISK.OFFERING.EDIT",
    entity="DiskOffering",
    fields=DISK_FIELDS,
)
def update_disk_offering(
    ctx: Ctx,
    id: Annotated[UUIDStr, Param("ID of the disk offering", required=True)],
    name: Name = None,
    displaytext: DisplayText = None,
    sortkey: SortKey = None,
    displayoffering: Annotated[
        bool | None,
        Param("an optional field, whether to display the offering to the end user or not."),
    ] = None,
    tags: Annotated[
        str | None, Param("comma-separated list of tags for the disk offering", length=4096)
    ] = None,
    domainid: UpdateDomains = None,
    zoneid: UpdateZones = None,
) -> dict[str, Any]:
    offering = svc.find_disk_offering(ctx.session, id)
    svc.rename(offering, name, displaytext, sortkey)
    if displayoffering is not None:
        offering.display_offering = displayoffering
    if tags is not None:
        offering.storage_tags = svc.normal_tags(tags)
    _update_scopes(ctx, DISK, offering.id, domainid, zoneid)
    return render_disk(ctx, offering)


@command(
    "deleteDiskOffering",
    description="Deletes a disk offering.",
    roles=ROOT_ADMIN,
    event="DISK.OFFERING.DELETE",
    entity="DiskOffering",
)
def delete_disk_offering(
    ctx: Ctx, id: Annotated[UUIDStr, Param("ID of the disk offering", required=True)]
) -> Success:
    offering = svc.find_disk_offering(ctx.session, id)
    svc.retire(offering)
    ctx.event_resource = (offering.uuid, offering.name)
    return Success()


@command(
    "listDiskOfferings",
    kind=Kind.LIST,
    description="Lists all available disk offerings.",
    response="diskoffering",
    roles=ALL_ROLES,
    fields=DISK_FIELDS,
)
def list_disk_offerings(
    ctx: Ctx,
    id: Annotated[UUIDStr | None, Param("ID of the disk offering")] = None,
    name: Annotated[str | None, Param("name of the disk offering")] = None,
    domainid: Annotated[
        UUIDStr | None,
        Param("the ID of the domain of the disk offering.", entity="Domain"),
    ] = None,
    zoneid: Annotated[
        UUIDStr | None,
        Param("id of zone disk offering is associated with", entity="Zone", since="4.13"),
    ] = None,
) -> Listing:
    o = DiskOffering
    stmt = disk_select().where(*_list_filters(ctx, DISK, o.id, domainid, zoneid))
    if ctx.caller.role_type not in ROOT_ADMIN:
        stmt = stmt.where(o.display_offering.is_(True))
    if id is not None:
        stmt = stmt.where(o.uuid == id)
    if name is not None:
        stmt = stmt.where(o.name == name)
    if ctx.paging.keyword:
        stmt = stmt.where(_keyword(ctx, o.name, o.display_text))
    rows, total = ctx.page_records(stmt.order_by(o.sort_key, o.id))
    scopes = svc.scopes_of(ctx.session, DISK, [r.id for r in rows])
    return Listing([disk_response(r, scopes[r.id]) for r in rows], total)
