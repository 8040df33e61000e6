"""listCapacity: CPU, memory and primary storage per zone, pod or cluster."""

from __future__ import annotations

from typing import Annotated, Any

from cumulo.api.cloudstack.registry import Kind, Param, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx, Listing
from cumulo.services.access import ROOT_ADMIN
from cumulo.services.infra import capacity as capacity_service

CAPACITY_FIELDS = (
    "type",
    "name",
    "zoneid",
    "zonename",
    "podid",
    "podname",
    "clusterid",
    "clustername",
    "capacitytotal",
    "capacityused",
    "capacityallocated",
    "percentused",
)


def capacity_response(t: capacity_service.Total) -> dict[str, Any]:
    """``percentused`` is a string with at most two decimals, as CloudStack formats it."""
    return {
        "type": t.type,
        "name": capacity_service.NAMES[t.type],
        "zoneid": t.zone[0],
        "zonename": t.zone[1],
        "podid": t.pod[0] if t.pod else None,
        "podname": t.pod[1] if t.pod else None,
        "clusterid": t.cluster[0] if t.cluster else None,
        "clustername": t.cluster[1] if t.cluster else None,
        "capacitytotal": t.total,
        "capacityused": t.used,
        "capacityallocated": t.used,
        "percentused": f"{t.percent:.2f}".rstrip("0").rstrip("."),
    }


@command(
    "listCapacity",
    kind=Kind.LIST,
    description="Lists all the system wide capacities.",
    response="capacity",
    roles=ROOT_ADMIN,
    fields=CAPACITY_FIELDS,
)
def list_capacity(
    ctx: Ctx,
    zoneid: Annotated[UUIDStr | None, Param("lists capacity by the Zone ID", entity="Zone")] = None,
    podid: Annotated[UUIDStr | None, Param("lists capacity by the Pod ID", entity="Pod")] = None,
    clusterid: Annotated[
        UUIDStr | None, Param("lists capacity by the Cluster ID", entity="Cluster")
    ] = None,
    type: Annotated[
        int | None,
        Param(
            "lists capacity by type* CAPACITY_TYPE_MEMORY = 0* CAPACITY_TYPE_CPU = 1* "
            "CAPACITY_TYPE_STORAGE = 2* CAPACITY_TYPE_STORAGE_ALLOCATED = 3"
        ),
    ] = None,
    fetchlatest: Annotated[
        bool, Param("recalculate capacities and fetch the latest", since="3.0.0")
    ] = False,
    sortby: Annotated[
        str | None, Param("Sort the results. Available values: Usage", since="3.0.0")
    ] = None,
) -> Listing:
    """Always computed from the live rows, so ``fetchlatest`` changes nothing here."""
    del fetchlatest
    scope = capacity_service.resolve_scope(ctx.session, zoneid, podid, clusterid)
    found = capacity_service.totals(ctx.session, scope, type)
    if sortby is not None and sortby.lower() == "usage":
        found.sort(key=lambda t: t.percent, reverse=True)
    items = [capacity_response(t) for t in found]
    p = ctx.paging
    if p.pagesize is not None:
        start = ((p.page or 1) - 1) * p.pagesize
        return Listing(items[start : start + p.pagesize], len(items))
    return Listing(items, len(items))
