"""Cluster commands: addCluster, updateCluster, deleteCluster, listClusters (root admin).

addCluster answers with a list (``{"count": 1, "cluster": [...]}``), as CloudStack's
AddClusterCmd does: one call may discover several clusters on some hypervisors.
CloudStack records no action event for clusters (the three commands declare none).
The over-provisioning factors are cluster-scoped settings in CloudStack: addCluster may set
them, and updateConfiguration with ``clusterid`` changes them afterwards.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any

from sqlalchemy import Select, select

from cumulo.api.cloudstack.commands.zones import capacities
from cumulo.api.cloudstack.registry import Kind, Param, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx, Listing, Success
from cumulo.db.models_infra import Cluster, Pod, Zone
from cumulo.services import config
from cumulo.services.access import ROOT_ADMIN
from cumulo.services.infra import capacity as capacity_service
from cumulo.services.infra import pods as svc
from cumulo.services.infra import zones as zone_service
from cumulo.services.infra.pods import ClusterSpec

CLUSTER_FIELDS = (
    "id", "name", "podid", "podname", "zoneid", "zonename", "hypervisortype", "clustertype",
    "allocationstate", "managedstate", "cpuovercommitratio", "memoryovercommitratio", "arch",
    "hasannotations",
)  # fmt: skip


@cache
def clusters_select() -> Select[*tuple[Any, ...]]:
    return (
        select(
            Cluster.id,
            Cluster.uuid,
            Cluster.name,
            Cluster.hypervisor_type,
            Cluster.cluster_type,
            Cluster.allocation_state,
            Cluster.cpu_overcommit,
            Cluster.memory_overcommit,
            Pod.uuid.label("podid"),
            Pod.name.label("podname"),
            Zone.uuid.label("zoneid"),
            Zone.name.label("zonename"),
        )
        .join(Pod, Cluster.pod_id == Pod.id)
        .join(Zone, Cluster.zone_id == Zone.id)
        .where(Cluster.removed.is_(None))
    )


def cluster_response(row: Any) -> dict[str, Any]:
    """CloudStack sends the over-commit ratios as strings ("1.0")."""
    return {
        "id": row.uuid,
        "name": row.name,
        "podid": row.podid,
        "podname": row.podname,
        "zoneid": row.zoneid,
        "zonename": row.zonename,
        "hypervisortype": row.hypervisor_type,
        "clustertype": row.cluster_type,
        "allocationstate": row.allocation_state,
        "managedstate": "Managed",
        "cpuovercommitratio": str(float(row.cpu_overcommit)),
        "memoryovercommitratio": str(float(row.memory_overcommit)),
        "arch": "x86_64",
        "hasannotations": False,
    }


def render(ctx: Ctx, cluster: Cluster) -> dict[str, Any]:
    ctx.session.flush()
    row = ctx.session.execute(clusters_select().where(Cluster.id == cluster.id)).one()
    return cluster_response(row)


def _global(ctx: Ctx, key: config.ConfigKey) -> str:
    return ctx.runtime.config.raw(ctx.session, key)


State = Annotated[
    str | None, Param("Allocation state of this cluster for allocation of new resources")
]


@command(
    "addCluster",
    description="Adds a new cluster",
    response="cluster",
    roles=ROOT_ADMIN,
    entity="Cluster",
    fields=CLUSTER_FIELDS,
    since="1.0",
)
def add_cluster(
    ctx: Ctx,
    zoneid: Annotated[UUIDStr, Param("the Zone ID for the cluster", required=True, entity="Zone")],
    podid: Annotated[UUIDStr, Param("the Pod ID for the host", required=True, entity="Pod")],
    clustername: Annotated[str, Param("the cluster name", required=True)],
    hypervisor: Annotated[
        str, Param("hypervisor type of the cluster: Simulator or KVM", required=True)
    ],
    clustertype: Annotated[
        str | None, Param("type of the cluster: CloudManaged (the default)")
    ] = None,
    allocationstate: State = None,
    cpuovercommitratio: Annotated[
        str | None, Param("value of the cpu overcommit ratio, defaults to 1")
    ] = None,
    memoryovercommitratio: Annotated[
        str | None, Param("value of the default memory overcommit ratio, defaults to 1")
    ] = None,
) -> Listing:
    zone = zone_service.find_zone(ctx.session, zoneid)
    pod = svc.find_pod(ctx.session, podid)
    spec = ClusterSpec(
        name=clustername,
        hypervisor=hypervisor,
        cluster_type=clustertype,
        allocation_state=allocationstate,
        # A new cluster starts from the global factors, as CloudStack's do.
        cpu_overcommit=cpuovercommitratio or _global(ctx, config.CPU_OVERPROVISIONING),
        memory_overcommit=memoryovercommitratio or _global(ctx, config.MEM_OVERPROVISIONING),
    )
    cluster = svc.add_cluster(ctx.session, zone, pod, spec)
    return Listing([render(ctx, cluster)], 1)


@command(
    "updateCluster",
    description="Updates an existing cluster",
    response="cluster",
    roles=ROOT_ADMIN,
    entity="Cluster",
    fields=CLUSTER_FIELDS,
    since="1.0",
)
def update_cluster(
    ctx: Ctx,
    id: Annotated[UUIDStr, Param("the ID of the Cluster", required=True, entity="Cluster")],
    clustername: Annotated[str | None, Param("the cluster name")] = None,
    allocationstate: State = None,
) -> dict[str, Any]:
    cluster = svc.find_cluster(ctx.session, id)
    return render(ctx, svc.update_cluster(ctx.session, cluster, clustername, allocationstate))


@command(
    "deleteCluster",
    description="Deletes a cluster.",
    roles=ROOT_ADMIN,
    entity="Cluster",
    since="1.0",
)
def delete_cluster(
    ctx: Ctx,
    id: Annotated[UUIDStr, Param("the cluster ID", required=True, entity="Cluster")],
) -> Success:
    svc.delete_cluster(ctx.session, svc.find_cluster(ctx.session, id))
    return Success()


@command(
    "listClusters",
    kind=Kind.LIST,
    description="Lists clusters.",
    response="cluster",
    roles=ROOT_ADMIN,
    fields=CLUSTER_FIELDS,
    since="1.0",
)
def list_clusters(
    ctx: Ctx,
    id: Annotated[
        UUIDStr | None, Param("lists clusters by the cluster ID", entity="Cluster")
    ] = None,
    name: Annotated[str | None, Param("lists clusters by the cluster name")] = None,
    zoneid: Annotated[UUIDStr | None, Param("lists clusters by Zone ID", entity="Zone")] = None,
    podid: Annotated[UUIDStr | None, Param("lists clusters by Pod ID", entity="Pod")] = None,
    hypervisor: Annotated[str | None, Param("lists clusters by hypervisor type")] = None,
    clustertype: Annotated[str | None, Param("lists clusters by cluster type")] = None,
    allocationstate: Annotated[str | None, Param("lists clusters by allocation state")] = None,
    showcapacities: Annotated[
        bool | None, Param("flag to display the capacity of the clusters")
    ] = None,
) -> Listing:
    stmt = clusters_select()
    filters = (
        (id, Cluster.uuid),
        (name, Cluster.name),
        (zoneid, Zone.uuid),
        (podid, Pod.uuid),
        (clustertype, Cluster.cluster_type),
        (allocationstate, Cluster.allocation_state),
    )
    for value, column in filters:
        if value is not None:
            stmt = stmt.where(column == value)
    if hypervisor is not None:
        stmt = stmt.where(Cluster.hypervisor_type == svc.hypervisor_type(hypervisor))
    if ctx.paging.keyword:
        stmt = stmt.where(Cluster.name.ilike(f"%{ctx.paging.keyword}%"))
    rows, total = ctx.page_records(stmt.order_by(Cluster.id))
    items = [cluster_response(r) for r in rows]
    if showcapacities:
        for item, row in zip(items, rows, strict=True):
            item["capacity"] = capacities(ctx, capacity_service.Scope(cluster_id=row.id))
    return Listing(items, total)
