"""Primary storage commands: create, list, update, delete, and maintenance in and out."""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any

from sqlalchemy import Select, select

from cumulo.api.cloudstack.registry import Kind, Param, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx, Listing, Submit, Success
from cumulo.common.time import to_wire
from cumulo.db.models_infra import Cluster, Pod, StoragePool, Zone
from cumulo.services.access import ROOT_ADMIN
from cumulo.services.infra import storage as storage_service

POOL_FIELDS = (
    "id",
    "name",
    "zoneid",
    "zonename",
    "podid",
    "podname",
    "clusterid",
    "clustername",
    "ipaddress",
    "path",
    "type",
    "state",
    "scope",
    "hypervisor",
    "disksizetotal",
    "disksizeallocated",
    "disksizeused",
    "tags",
    "overprovisionfactor",
    "created",
    "provider",
)

PoolPod = Pod.__table__.alias("pool_pod")
PoolCluster = Cluster.__table__.alias("pool_cluster")


@cache
def pools_select() -> Select[*tuple[Any, ...]]:
    """Columns only; a zone-wide pool has no pod or cluster, hence the outer joins."""
    return (
        select(
            StoragePool,
            Zone.uuid.label("zoneid"),
            Zone.name.label("zonename"),
            PoolPod.c.uuid.label("podid"),
            PoolPod.c.name.label("podname"),
            PoolCluster.c.uuid.label("clusterid"),
            PoolCluster.c.name.label("clustername"),
        )
        .join(Zone, Zone.id == StoragePool.zone_id)
        .outerjoin(PoolPod, PoolPod.c.id == StoragePool.pod_id)
        .outerjoin(PoolCluster, PoolCluster.c.id == StoragePool.cluster_id)
        .where(StoragePool.removed.is_(None))
    )


def pool_response(row: Any) -> dict[str, Any]:
    pool: StoragePool = row[0]
    return {
        "id": pool.uuid,
        "name": pool.name,
        "zoneid": row.zoneid,
        "zonename": row.zonename,
        "podid": row.podid,
        "podname": row.podname,
        "clusterid": row.clusterid,
        "clustername": row.clustername,
        "ipaddress": storage_service.pool_host(pool),
        "path": pool.path,
        "type": pool.pool_type,
        "state": pool.status,
        "scope": pool.scope,
        "hypervisor": pool.hypervisor_type,
        "disksizetotal": pool.capacity_bytes,
        "disksizeallocated": pool.allocated_bytes,
        "disksizeused": pool.used_bytes,
        "tags": pool.tags or None,
        "istagarule": False,
        "overprovisionfactor": f"{pool.overcommit:g}",
        "created": to_wire(pool.created),
        "provider": pool.provider,
        "hasannotations": False,
        "managed": False,
    }


def render(ctx: Ctx, pool: StoragePool) -> dict[str, Any]:
    ctx.session.flush()
    row = ctx.session.execute(pools_select().where(StoragePool.id == pool.id)).one()
    return pool_response(row)


@command(
    "createStoragePool",
    description="Creates a storage pool.",
    response="storagepool",
    roles=ROOT_ADMIN,
    entity="StoragePool",
    fields=POOL_FIELDS,
)
def create_storage_pool(
    ctx: Ctx,
    zoneid: Annotated[
        UUIDStr, Param("the Zone ID for the storage pool", required=True, entity="Zone")
    ],
    name: Annotated[str, Param("the name for the storage pool", required=True)],
    url: Annotated[str, Param("the URL of the storage pool", required=True, length=2048)],
    scope: Annotated[str | None, Param("the scope of the storage: cluster or zone")] = None,
    podid: Annotated[UUIDStr | None, Param("the Pod ID for the storage pool", entity="Pod")] = None,
    clusterid: Annotated[
        UUIDStr | None, Param("the cluster ID for the storage pool", entity="Cluster")
    ] = None,
    hypervisor: Annotated[
        str | None,
        Param(
            "hypervisor type of the hosts in zone that will be attached to this "
            "storage pool. KVM, Simulator supported as of now."
        ),
    ] = None,
    tags: Annotated[str | None, Param("the tags for the storage pool")] = None,
    capacitybytes: Annotated[
        int | None, Param("bytes CloudStack can provision from this storage pool", min=0)
    ] = None,
    provider: Annotated[str | None, Param("the storage provider name")] = None,
) -> dict[str, Any]:
    pool = storage_service.create_pool(
        ctx.session,
        storage_service.PoolRequest(
            zoneid=zoneid,
            name=name,
            url=url,
            scope=scope,
            podid=podid,
            clusterid=clusterid,
            hypervisor=hypervisor,
            tags=tags,
            capacitybytes=capacitybytes,
            provider=provider,
        ),
    )
    return render(ctx, pool)


@command(
    "listStoragePools",
    kind=Kind.LIST,
    description="Lists storage pools.",
    response="storagepool",
    roles=ROOT_ADMIN,
    fields=POOL_FIELDS,
)
def list_storage_pools(
    ctx: Ctx,
    id: Annotated[UUIDStr | None, Param("the ID of the storage pool", entity="StoragePool")] = None,
    name: Annotated[str | None, Param("the name of the storage pool")] = None,
    zoneid: Annotated[
        UUIDStr | None, Param("the Zone ID for the storage pool", entity="Zone")
    ] = None,
    podid: Annotated[UUIDStr | None, Param("the Pod ID for the storage pool", entity="Pod")] = None,
    clusterid: Annotated[
        UUIDStr | None,
        Param("list storage pools belongig to the specific cluster", entity="Cluster"),
    ] = None,
    ipaddress: Annotated[str | None, Param("the IP address for the storage pool")] = None,
    path: Annotated[str | None, Param("the storage pool path")] = None,
    scope: Annotated[str | None, Param("the scope of the storage pool")] = None,
    status: Annotated[str | None, Param("the status of the storage pool")] = None,
) -> Listing:
    stmt = pools_select()
    exact = {
        StoragePool.uuid: id,
        StoragePool.name: name,
        Zone.uuid: zoneid,
        PoolPod.c.uuid: podid,
        PoolCluster.c.uuid: clusterid,
        StoragePool.path: path,
    }
    for column, value in exact.items():
        if value is not None:
            stmt = stmt.where(column == value)
    if scope is not None:
        stmt = stmt.where(StoragePool.scope == scope.upper())
    if status is not None:
        stmt = stmt.where(StoragePool.status.ilike(status))
    if ipaddress is not None:
        stmt = stmt.where(StoragePool.url.contains(f"//{ipaddress}"))
    if ctx.paging.keyword:
        stmt = stmt.where(StoragePool.name.ilike(f"%{ctx.paging.keyword}%"))
    rows, total = ctx.page_records(stmt.order_by(StoragePool.id))
    return Listing([pool_response(r) for r in rows], total)


@command(
    "updateStoragePool",
    description="Updates a storage pool.",
    response="storagepool",
    roles=ROOT_ADMIN,
    entity="StoragePool",
    fields=POOL_FIELDS,
)
def update_storage_pool(
    ctx: Ctx,
    id: Annotated[
        UUIDStr, Param("the Id of the storage pool", required=True, entity="StoragePool")
    ],
    name: Annotated[str | None, Param("Change the name of the storage pool", since="4.15")] = None,
    tags: Annotated[
        list[str] | None, Param("comma-separated list of tags for the storage pool")
    ] = None,
    capacitybytes: Annotated[
        int | None, Param("bytes CloudStack can provision from this storage pool", min=0)
    ] = None,
    enabled: Annotated[
        bool | None,
        Param("false to disable the pool for allocation of new volumes, true to enable it back."),
    ] = None,
) -> dict[str, Any]:
    pool = storage_service.find_pool(ctx.session, id)
    storage_service.update_pool(
        pool,
        name=name,
        tags=",".join(tags) if tags is not None else None,
        capacitybytes=capacitybytes,
        enabled=enabled,
    )
    return render(ctx, pool)


@command(
    "deleteStoragePool",
    description="Deletes a storage pool.",
    roles=ROOT_ADMIN,
    entity="StoragePool",
)
def delete_storage_pool(
    ctx: Ctx,
    id: Annotated[UUIDStr, Param("Storage pool id", required=True, entity="StoragePool")],
    forced: Annotated[
        bool,
        Param(
            "Force destroy storage pool (force expunge volumes in Destroyed state as a part of "
            "pool removal)"
        ),
    ] = False,
) -> Success:
    pool = storage_service.find_pool(ctx.session, id)
    storage_service.delete_pool(pool, forced=forced)
    return Success()


def _submit(pool: StoragePool) -> Submit:
    return Submit(
        params={"id": pool.uuid},
        instance_type="StoragePool",
        instance_id=pool.uuid,
        resource_name=pool.name,
    )


@command(
    "enableStorageMaintenance",
    kind=Kind.ASYNC,
    description="Puts storage pool into maintenance state",
    response="storagepool",
    roles=ROOT_ADMIN,
    event="MAINT.PREPARE.PS",
    entity="StoragePool",
    fields=POOL_FIELDS,
)
def enable_storage_maintenance(
    ctx: Ctx,
    id: Annotated[UUIDStr, Param("Primary storage ID", required=True, entity="StoragePool")],
) -> Submit:
    pool = storage_service.find_pool(ctx.session, id)
    storage_service.start_pool_maintenance(pool)
    return _submit(pool)


@enable_storage_maintenance.runs
def run_enable_storage_maintenance(ctx: Ctx, id: str) -> dict[str, Any]:
    pool = storage_service.find_pool(ctx.session, id)
    storage_service.finish_pool_maintenance(pool)
    return render(ctx, pool)


@command(
    "cancelStorageMaintenance",
    kind=Kind.ASYNC,
    description="Cancels maintenance for primary storage",
    response="storagepool",
    roles=ROOT_ADMIN,
    event="MAINT.CANCEL.PS",
    entity="StoragePool",
    fields=POOL_FIELDS,
)
def cancel_storage_maintenance(
    ctx: Ctx,
    id: Annotated[UUIDStr, Param("the primary storage ID", required=True, entity="StoragePool")],
) -> Submit:
    pool = storage_service.find_pool(ctx.session, id)
    storage_service.check_cancel_pool_maintenance(pool)
    return _submit(pool)


@cancel_storage_maintenance.runs
def run_cancel_storage_maintenance(ctx: Ctx, id: str) -> dict[str, Any]:
    pool = storage_service.find_pool(ctx.session, id)
    storage_service.cancel_pool_maintenance(pool)
    return render(ctx, pool)
