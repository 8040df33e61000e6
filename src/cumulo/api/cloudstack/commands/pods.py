"""Pod commands: createPod, updatePod, deletePod, listPods (root admin only)."""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any

from sqlalchemy import Select, select

from cumulo.api.cloudstack.commands.zones import capacities
from cumulo.api.cloudstack.registry import Kind, Param, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx, Listing, Success
from cumulo.db.models_infra import Pod, Zone
from cumulo.services.access import ROOT_ADMIN
from cumulo.services.infra import capacity as capacity_service
from cumulo.services.infra import pods as svc
from cumulo.services.infra import zones as zone_service
from cumulo.services.infra.pods import PodAddresses

POD_FIELDS = (
    "id", "name", "zoneid", "zonename", "gateway", "netmask", "startip", "endip",
    "forsystemvms", "ipranges", "allocationstate", "hasannotations",
)  # fmt: skip


@cache
def pods_select() -> Select[*tuple[Any, ...]]:
    return (
        select(
            Pod.id,
            Pod.uuid,
            Pod.name,
            Pod.gateway,
            Pod.netmask,
            Pod.start_ip,
            Pod.end_ip,
            Pod.allocation_state,
            Zone.uuid.label("zoneid"),
            Zone.name.label("zonename"),
        )
        .join(Zone, Pod.zone_id == Zone.id)
        .where(Pod.removed.is_(None))
    )


def pod_response(row: Any) -> dict[str, Any]:
    """CloudStack shows a pod's system ranges as parallel lists (a pod may hold several)."""
    has_range = row.start_ip is not None
    return {
        "id": row.uuid,
        "name": row.name,
        "zoneid": row.zoneid,
        "zonename": row.zonename,
        "gateway": row.gateway,
        "netmask": row.netmask,
        "startip": [row.start_ip] if has_range else None,
        "endip": [row.end_ip or row.start_ip] if has_range else None,
        "forsystemvms": ["0"] if has_range else None,
        "ipranges": (
            [
                {
                    "startip": row.start_ip,
                    "endip": row.end_ip or row.start_ip,
                    "forsystemvms": "0",
                    "gateway": row.gateway,
                }
            ]
            if has_range
            else None
        ),
        "allocationstate": row.allocation_state,
        "hasannotations": False,
    }


def render(ctx: Ctx, pod: Pod) -> dict[str, Any]:
    ctx.session.flush()
    return pod_response(ctx.session.execute(pods_select().where(Pod.id == pod.id)).one())


Gateway = Annotated[str | None, Param("the gateway for the Pod")]
Netmask = Annotated[str | None, Param("the netmask for the Pod")]
StartIp = Annotated[str | None, Param("the starting IP address for the Pod")]
EndIp = Annotated[str | None, Param("the ending IP address for the Pod")]
State = Annotated[str | None, Param("Allocation state of this Pod for allocation of new resources")]


@command(
    "createPod",
    description="Creates a new Pod.",
    response="pod",
    roles=ROOT_ADMIN,
    event="POD.CREATE",
    entity="Pod",
    fields=POD_FIELDS,
    since="1.0",
)
def create_pod(
    ctx: Ctx,
    zoneid: Annotated[
        UUIDStr, Param("the Zone ID in which the Pod will be created", required=True, entity="Zone")
    ],
    name: Annotated[str, Param("the name of the Pod", required=True)],
    gateway: Gateway = None,
    netmask: Netmask = None,
    startip: StartIp = None,
    endip: EndIp = None,
    allocationstate: State = None,
) -> dict[str, Any]:
    zone = zone_service.find_zone(ctx.session, zoneid)
    ips = PodAddresses(gateway, netmask, startip, endip)
    return render(ctx, svc.create_pod(ctx.session, zone, name, ips, allocationstate))


@command(
    "updatePod",
    description="Updates a Pod.",
    response="pod",
    roles=ROOT_ADMIN,
    event="POD.EDIT",
    entity="Pod",
    fields=POD_FIELDS,
    since="1.0",
)
def update_pod(
    ctx: Ctx,
    id: Annotated[UUIDStr, Param("the ID of the Pod", required=True, entity="Pod")],
    name: Annotated[str | None, Param("the name of the Pod")] = None,
    gateway: Gateway = None,
    netmask: Netmask = None,
    startip: StartIp = None,
    endip: EndIp = None,
    allocationstate: State = None,
) -> dict[str, Any]:
    pod = svc.find_pod(ctx.session, id)
    ips = PodAddresses(gateway, netmask, startip, endip)
    return render(ctx, svc.update_pod(ctx.session, pod, name, ips, allocationstate))


@command(
    "deletePod",
    description="Deletes a Pod.",
    roles=ROOT_ADMIN,
    event="POD.DELETE",
    entity="Pod",
    since="1.0",
)
def delete_pod(
    ctx: Ctx, id: Annotated[UUIDStr, Param("the ID of the Pod", required=True, entity="Pod")]
) -> Success:
    pod = svc.find_pod(ctx.session, id)
    svc.delete_pod(ctx.session, pod)
    ctx.event_resource = (pod.uuid, pod.name)
    return Success()


@command(
    "listPods",
    kind=Kind.LIST,
    description="Lists all Pods.",
    response="pod",
    roles=ROOT_ADMIN,
    fields=POD_FIELDS,
    since="1.0",
)
def list_pods(
    ctx: Ctx,
    id: Annotated[UUIDStr | None, Param("list Pods by ID", entity="Pod")] = None,
    name: Annotated[str | None, Param("list Pods by name")] = None,
    zoneid: Annotated[UUIDStr | None, Param("list Pods by Zone ID", entity="Zone")] = None,
    allocationstate: Annotated[str | None, Param("list pods by allocation state")] = None,
    showcapacities: Annotated[
        bool | None, Param("flag to display the capacity of the pods")
    ] = None,
) -> Listing:
    stmt = pods_select()
    if id is not None:
        stmt = stmt.where(Pod.uuid == id)
    if name is not None:
        stmt = stmt.where(Pod.name == name)
    if zoneid is not None:
        stmt = stmt.where(Zone.uuid == zoneid)
    if allocationstate is not None:
        stmt = stmt.where(Pod.allocation_state == allocationstate)
    if ctx.paging.keyword:
        stmt = stmt.where(Pod.name.ilike(f"%{ctx.paging.keyword}%"))
    rows, total = ctx.page_records(stmt.order_by(Pod.id))
    items = [pod_response(r) for r in rows]
    if showcapacities:
        for item, row in zip(items, rows, strict=True):
            item["capacity"] = capacities(ctx, capacity_service.Scope(pod_id=row.id))
    return Listing(items, total)
