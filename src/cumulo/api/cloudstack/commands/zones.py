"""Zone commands: createZone, updateZone, deleteZone, listZones; and listHypervisors.

listZones is the benchmark command of the front door (``bench/api_throughput.py``) and the
first call of every client (libcloud's ``list_locations``, the UI's start-up): its select is
built once and reads plain columns, the way listUsers does.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any

from sqlalchemy import Select, distinct, select
from sqlalchemy.orm import aliased

from cumulo.api.cloudstack.commands.capacity import capacity_response
from cumulo.api.cloudstack.registry import Kind, Param, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx, Listing, Success
from cumulo.db.models import Domain
from cumulo.db.models_infra import Cluster, Zone
from cumulo.services.access import ALL_ROLES, ROOT_ADMIN, find_domain
from cumulo.services.infra import capacity as capacity_service
from cumulo.services.infra import pods as pod_service
from cumulo.services.infra import zones as svc
from cumulo.services.infra.zones import ZoneChanges

ZONE_FIELDS = (
    "id", "name", "description", "dns1", "dns2", "internaldns1", "internaldns2", "ip6dns1",
    "ip6dns2", "guestcidraddress", "networktype", "securitygroupsenabled", "allocationstate",
    "dhcpprovider", "localstorageenabled", "domain", "domainid", "domainname", "tags",
    "hasannotations", "type",
)  # fmt: skip
DedicatedDomain = aliased(Domain, name="dedicated")


@cache
def zones_select() -> Select[*tuple[Any, ...]]:
    """Built once: statements are immutable, and building one costs more than running it."""
    return (
        select(
            Zone.id,
            Zone.uuid,
            Zone.name,
            Zone.description,
            Zone.dns1,
            Zone.dns2,
            Zone.internal_dns1,
            Zone.internal_dns2,
            Zone.ip6dns1,
            Zone.ip6dns2,
            Zone.guest_cidr,
            Zone.network_type,
            Zone.security_groups_enabled,
            Zone.allocation_state,
            Zone.local_storage_enabled,
            Zone.network_domain,
            DedicatedDomain.uuid.label("domainid"),
            DedicatedDomain.name.label("domainname"),
        )
        .outerjoin(DedicatedDomain, Zone.domain_id == DedicatedDomain.id)
        .where(Zone.removed.is_(None))
    )


def zone_response(row: Any, full: bool = True) -> dict[str, Any]:
    """One row of ``zones_select()``. Internal DNS and the guest CIDR are operator facts:
    CloudStack's restricted view leaves them out for non-admins."""
    body = {
        "id": row.uuid,
        "name": row.name,
        "description": row.description or None,
        "dns1": row.dns1,
        "dns2": row.dns2,
        "ip6dns1": row.ip6dns1,
        "ip6dns2": row.ip6dns2,
        "networktype": row.network_type,
        "securitygroupsenabled": row.security_groups_enabled,
        "allocationstate": row.allocation_state,
        "dhcpprovider": "VirtualRouter",
        "localstorageenabled": row.local_storage_enabled,
        "domain": row.network_domain,
        "domainid": row.domainid,
        "domainname": row.domainname,
        "tags": [],
        "hasannotations": False,
        "type": "Core",
    }
    if full:
        body["internaldns1"] = row.internal_dns1
        body["internaldns2"] = row.internal_dns2
        body["guestcidraddress"] = row.guest_cidr
    return body


def capacities(ctx: Ctx, scope: capacity_service.Scope) -> list[dict[str, Any]]:
    """``showcapacities=true``: the place's own listCapacity entries (root admin only, as
    CloudStack shows them); one small grouped query per listed object."""
    return [capacity_response(t) for t in capacity_service.totals(ctx.session, scope, None)]


def render(ctx: Ctx, zone: Zone) -> dict[str, Any]:
    ctx.session.flush()
    return zone_response(ctx.session.execute(zones_select().where(Zone.id == zone.id)).one())


@command(
    "listZones",
    kind=Kind.LIST,
    description="Lists zones",
    response="zone",
    roles=ALL_ROLES,
    fields=ZONE_FIELDS,
    since="1.0",
)
def list_zones(
    ctx: Ctx,
    id: Annotated[UUIDStr | None, Param("the ID of the zone", entity="Zone")] = None,
    ids: Annotated[
        list[UUIDStr] | None,
        Param("the IDs of the zones, mutually exclusive with id", since="4.19.0"),
    ] = None,
    name: Annotated[str | None, Param("the name of the zone", since="4.3")] = None,
    available: Annotated[
        bool | None,
        Param(
            "true if you want to retrieve all available Zones. False if you only want to return "
            "the Zones from which you have at least one VM. Default is false."
        ),
    ] = None,
    networktype: Annotated[
        str | None, Param("the network type of the zone that the virtual machine belongs to")
    ] = None,
    domainid: Annotated[
        UUIDStr | None,
        Param("the ID of the domain associated with the zone", entity="Domain"),
    ] = None,
    showcapacities: Annotated[
        bool | None, Param("flag to display the capacity of the zones")
    ] = None,
) -> Listing:
    caller = ctx.caller
    stmt = zones_select()
    if not caller.is_root_admin or available:
        stmt = stmt.where(svc.visible_where(caller, DedicatedDomain.path))
    if id is not None:
        stmt = stmt.where(Zone.uuid == id)
    if ids:
        stmt = stmt.where(Zone.uuid.in_(ids))
    if name is not None:
        stmt = stmt.where(Zone.name == name)
    if networktype is not None:
        stmt = stmt.where(Zone.network_type == networktype)
    if domainid is not None:
        stmt = stmt.where(DedicatedDomain.uuid == domainid)
    if ctx.paging.keyword:
        stmt = stmt.where(Zone.name.ilike(f"%{ctx.paging.keyword}%"))
    rows, total = ctx.page_records(stmt.order_by(Zone.id))
    full = caller.is_root_admin
    items = [zone_response(r, full) for r in rows]
    if showcapacities and full:
        for item, row in zip(items, rows, strict=True):
            item["capacity"] = capacities(ctx, capacity_service.Scope(zone_id=row.id))
    return Listing(items, total)


ZONE_PARAMS_TEXT = {
    "dns1": "the first DNS for the Zone",
    "dns2": "the second DNS for the Zone",
    "ip6dns1": "the first DNS for IPv6 network in the Zone",
    "ip6dns2": "the second DNS for IPv6 network in the Zone",
    "internaldns1": "the first internal DNS for the Zone",
    "internaldns2": "the second internal DNS for the Zone",
    "guestcidraddress": "the guest CIDR address for the Zone",
    "domain": "Network domain name for the networks in the zone",
    "allocationstate": "Allocation state of this Zone for allocation of new resources",
}


def _p(key: str) -> Param:
    return Param(ZONE_PARAMS_TEXT[key])


@command(
    "createZone",
    description="Creates a Zone.",
    response="zone",
    roles=ROOT_ADMIN,
    event="ZONE.CREATE",
    entity="Zone",
    fields=ZONE_FIELDS,
    since="1.0",
)
def create_zone(
    ctx: Ctx,
    name: Annotated[str, Param("the name of the Zone", required=True)],
    networktype: Annotated[
        str, Param("network type of the zone, can be Basic or Advanced", required=True)
    ],
    internaldns1: Annotated[str, Param("the first internal DNS for the Zone", required=True)],
    dns1: Annotated[str | None, _p("dns1")] = None,
    dns2: Annotated[str | None, _p("dns2")] = None,
    internaldns2: Annotated[str | None, _p("internaldns2")] = None,
    ip6dns1: Annotated[str | None, _p("ip6dns1")] = None,
    ip6dns2: Annotated[str | None, _p("ip6dns2")] = None,
    guestcidraddress: Annotated[str | None, _p("guestcidraddress")] = None,
    domain: Annotated[str | None, _p("domain")] = None,
    domainid: Annotated[
        UUIDStr | None,
        Param("the ID of the containing domain, null for public zones", entity="Domain"),
    ] = None,
    allocationstate: Annotated[str | None, _p("allocationstate")] = None,
    securitygroupenabled: Annotated[
        bool | None, Param("true if network is security group enabled, false otherwise")
    ] = None,
    localstorageenabled: Annotated[
        bool | None, Param("true if local storage offering enabled, false otherwise")
    ] = None,
) -> dict[str, Any]:
    dedicated = find_domain(ctx.session, domainid) if domainid else None
    changes = ZoneChanges(
        name=name,
        dns1=dns1,
        dns2=dns2,
        ip6dns1=ip6dns1,
        ip6dns2=ip6dns2,
        internal_dns1=internaldns1,
        internal_dns2=internaldns2,
        guest_cidr=guestcidraddress,
        network_domain=domain,
        allocation_state=allocationstate,
        local_storage_enabled=localstorageenabled,
        security_groups_enabled=securitygroupenabled,
    )
    return render(ctx, svc.create_zone(ctx.session, changes, networktype, dedicated))


@command(
    "updateZone",
    description="Updates a Zone.",
    response="zone",
    roles=ROOT_ADMIN,
    event="ZONE.EDIT",
    entity="Zone",
    fields=ZONE_FIELDS,
    since="1.0",
)
def update_zone(
    ctx: Ctx,
    id: Annotated[UUIDStr, Param("the ID of the Zone", required=True, entity="Zone")],
    name: Annotated[str | None, Param("the name of the Zone")] = None,
    dns1: Annotated[str | None, _p("dns1")] = None,
    dns2: Annotated[str | None, _p("dns2")] = None,
    internaldns1: Annotated[str | None, _p("internaldns1")] = None,
    internaldns2: Annotated[str | None, _p("internaldns2")] = None,
    ip6dns1: Annotated[str | None, _p("ip6dns1")] = None,
    ip6dns2: Annotated[str | None, _p("ip6dns2")] = None,
    guestcidraddress: Annotated[str | None, _p("guestcidraddress")] = None,
    domain: Annotated[str | None, _p("domain")] = None,
    allocationstate: Annotated[str | None, _p("allocationstate")] = None,
    localstorageenabled: Annotated[
        bool | None, Param("true if local storage offering enabled, false otherwise")
    ] = None,
) -> dict[str, Any]:
    zone = svc.find_zone(ctx.session, id)
    changes = ZoneChanges(
        name=name,
        dns1=dns1,
        dns2=dns2,
        ip6dns1=ip6dns1,
        ip6dns2=ip6dns2,
        internal_dns1=internaldns1,
        internal_dns2=internaldns2,
        guest_cidr=guestcidraddress,
        network_domain=domain,
        allocation_state=allocationstate,
        local_storage_enabled=localstorageenabled,
    )
    return render(ctx, svc.update_zone(ctx.session, zone, changes))


@command(
    "deleteZone",
    description="Deletes a Zone.",
    roles=ROOT_ADMIN,
    event="ZONE.DELETE",
    entity="Zone",
    since="1.0",
)
def delete_zone(
    ctx: Ctx, id: Annotated[UUIDStr, Param("the ID of the Zone", required=True, entity="Zone")]
) -> Success:
    zone = svc.find_zone(ctx.session, id)
    svc.delete_zone(ctx.session, zone)
    ctx.event_resource = (zone.uuid, zone.name)
    return Success()


@command(
    "listHypervisors",
    kind=Kind.LIST,
    description="List hypervisors",
    response="hypervisor",
    roles=ALL_ROLES,
    fields=("name",),
    since="1.0",
)
def list_hypervisors(
    ctx: Ctx,
    zoneid: Annotated[
        UUIDStr | None, Param("the zone id for listing hypervisors.", entity="Zone")
    ] = None,
) -> Listing:
    """Without a zone, every hypervisor this cloud drives; with one, those of its clusters."""
    if zoneid is None:
        names = list(pod_service.HYPERVISORS)
    else:
        zone = svc.find_zone(ctx.session, zoneid)
        names = list(
            ctx.session.scalars(
                select(distinct(Cluster.hypervisor_type))
                .where(Cluster.zone_id == zone.id, Cluster.removed.is_(None))
                .order_by(Cluster.hypervisor_type)
            )
        )
    return Listing([{"name": n} for n in names], len(names))
