"""Choosing a host and a primary storage pool for a VM, and reserving their capacity.

The candidate hosts come from one query (Up and Enabled hosts in Enabled clusters, pods and
zones, of the right hypervisor, carrying the offering's host tags, with room left after the
cluster's over-provisioning factors), ordered by the algorithm and limited to a handful. The
planner then reserves capacity on them one by one (``capacity.reserve``, an atomic
conditional UPDATE): a concurrent deploy that took the last slot first makes our reserve fail
and we move on, so two deploys can never overcommit a host, and 10,000 hosts cost one query.

Affinity groups narrow the candidates: a host anti-affinity group excludes hosts where the
group's other VMs are placed, a host affinity group pins to the host they are on.
"""

from __future__ import annotations

import dataclasses
import functools
import random
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Float, and_, bindparam, cast, func, literal, or_, select, update
from sqlalchemy.orm import Session, aliased

from cumulo.db.models_affinity import AffinityGroup, AffinityGroupVmMap
from cumulo.db.models_compute import VirtualMachine
from cumulo.db.models_infra import Cluster, Host, HostCapacity, Pod, StoragePool, Zone
from cumulo.services.infra import capacity

MIB = 1024 * 1024
CANDIDATES = 24  # hosts fetched per round; enough to ride out races for the first ones
PLACED_STATES = ("Starting", "Running", "Stopping", "Migrating")
ALGORITHMS = ("random", "firstfit", "userdispersing", "firstfitleastconsumed")


@dataclass
class Request:
    """What to place: the VM's size, where, and the constraints on hosts and pools."""

    vm_id: int
    account_id: int
    zone_id: int
    cpu_mhz: int  # cpu_number x cpu_speed
    memory_bytes: int
    disk_bytes: int = 0  # root disk still to be placed on a pool; 0 when it already has one
    hypervisor: str | None = None
    host_tags: tuple[str, ...] = ()
    storage_tags: tuple[str, ...] = ()
    host_id: int | None = None  # admin's explicit choice
    cluster_id: int | None = None  # the root volume's pool pins the cluster
    prefer_host_id: int | None = None  # last host
    avoid: set[int] = field(default_factory=set)
    algorithm: str = "random"


@dataclass(frozen=True)
class Placement:
    host: Host
    pool: StoragePool | None


def _tags_clause(column: object, count: int, prefix: str) -> list[object]:
    """Every tag must be in the comma-separated list (spaces ignored): ``count`` patterns,
    bound as ``<prefix>0``, ``<prefix>1`` … (see ``_tag_params``)."""
    padded = literal(",") + func.replace(column, " ", "") + literal(",")
    return [padded.like(bindparam(f"{prefix}{i}")) for i in range(count)]


def _tag_params(tags: tuple[str, ...], prefix: str) -> dict[str, str]:
    wanted = [tag.strip() for tag in tags if tag.strip()]
    return {f"{prefix}{i}": f"%,{tag},%" for i, tag in enumerate(wanted)}


# Statements are built once per shape and reused with bound values: building a SQLAlchemy
# expression and its cache key costs more than running the query on a deploy's hot path.
_AFFINITY_OTHER = aliased(AffinityGroupVmMap)
_AFFINITY = (
    select(AffinityGroup.type, VirtualMachine.host_id)
    .join(AffinityGroupVmMap, AffinityGroupVmMap.group_id == AffinityGroup.id)
    .join(_AFFINITY_OTHER, _AFFINITY_OTHER.group_id == AffinityGroup.id)
    .join(VirtualMachine, VirtualMachine.id == _AFFINITY_OTHER.vm_id)
    .where(
        AffinityGroupVmMap.vm_id == bindparam("p_vm"),
        _AFFINITY_OTHER.vm_id != bindparam("p_vm"),
        VirtualMachine.host_id.is_not(None),
        VirtualMachine.state.in_(PLACED_STATES),
    )
)
_TOP_HOST = select(func.max(Host.id))


def _affinity(session: Session, vm_id: int) -> tuple[set[int], set[int] | None]:
    """Hosts to exclude (anti-affinity) and hosts to stay on (affinity, None = anywhere)."""
    rows = session.execute(_AFFINITY, {"p_vm": vm_id}).all()
    excluded = {host for kind, host in rows if kind == "host anti-affinity" and host is not None}
    together = {host for kind, host in rows if kind == "host affinity" and host is not None}
    return excluded, (together or None)


_CPU, _MEM = aliased(HostCapacity), aliased(HostCapacity)
_CPU_FREE = cast(_CPU.total, Float) * Cluster.cpu_overcommit - _CPU.used - _CPU.reserved
_MEM_FREE = cast(_MEM.total, Float) * Cluster.memory_overcommit - _MEM.used - _MEM.reserved


@dataclass(frozen=True)
class _Shape:
    """Which optional clauses a candidate query has; one statement is built per shape."""

    hypervisor: bool
    host_tags: int
    host_id: bool
    cluster_id: bool
    exclude: bool
    together: bool
    prefer: str  # "", "only" (the preferred host) or "not" (every other host)
    order: str  # "ahead", "behind" (random's window) or an algorithm name


@functools.lru_cache(maxsize=256)
def _statement(shape: _Shape) -> Any:
    """Every host that could take the VM now, in this shape's order (bound parameters)."""
    stmt = (
        select(Host)
        .join(Cluster, Cluster.id == Host.cluster_id)
        .join(Pod, Pod.id == Host.pod_id)
        .join(Zone, Zone.id == Host.zone_id)
        .join(_CPU, and_(_CPU.host_id == Host.id, _CPU.type == capacity.CPU))
        .join(_MEM, and_(_MEM.host_id == Host.id, _MEM.type == capacity.MEMORY))
        .where(
            Host.zone_id == bindparam("p_zone"),
            Host.type == "Routing",
            Host.removed.is_(None),
            Host.status == "Up",
            Host.resource_state == "Enabled",
            Cluster.allocation_state == "Enabled",
            Pod.allocation_state == "Enabled",
            Zone.allocation_state == "Enabled",
            bindparam("p_cpu") <= _CPU_FREE,
            bindparam("p_mem") <= _MEM_FREE,
            *_tags_clause(Host.host_tags, shape.host_tags, "p_htag"),  # type: ignore[arg-type]
        )
    )
    if shape.hypervisor:
        stmt = stmt.where(func.lower(Host.hypervisor_type) == bindparam("p_hv"))
    if shape.host_id:
        stmt = stmt.where(Host.id == bindparam("p_host"))
    if shape.cluster_id:
        stmt = stmt.where(Host.cluster_id == bindparam("p_cluster"))
    if shape.exclude:
        stmt = stmt.where(Host.id.not_in(bindparam("p_exclude", expanding=True)))
    if shape.together:
        stmt = stmt.where(Host.id.in_(bindparam("p_together", expanding=True)))
    if shape.prefer == "only":
        return stmt.where(Host.id == bindparam("p_prefer"))
    if shape.prefer == "not":
        stmt = stmt.where(Host.id != bindparam("p_prefer"))
    if shape.order == "ahead":
        return stmt.where(Host.id >= bindparam("p_first")).order_by(Host.id).limit(CANDIDATES)
    if shape.order == "behind":
        return stmt.where(Host.id < bindparam("p_first")).order_by(Host.id).limit(CANDIDATES)
    return _ordered(stmt, shape.order).limit(CANDIDATES)


def _query(session: Session, req: Request) -> tuple[_Shape, dict[str, Any]]:
    """The shape of the candidate query for ``req`` and its bound values."""
    excluded, together = _affinity(session, req.vm_id)
    avoid = req.avoid | excluded
    params: dict[str, Any] = {
        "p_zone": req.zone_id,
        "p_cpu": req.cpu_mhz,
        "p_mem": req.memory_bytes,
        "p_account": req.account_id,
        **_tag_params(req.host_tags, "p_htag"),
    }
    if req.hypervisor:
        params["p_hv"] = req.hypervisor.lower()
    if req.host_id is not None:
        params["p_host"] = req.host_id
    if req.cluster_id is not None:
        params["p_cluster"] = req.cluster_id
    if avoid:
        params["p_exclude"] = sorted(avoid)
    if together is not None:
        params["p_together"] = sorted(together)
    if req.prefer_host_id is not None:
        params["p_prefer"] = req.prefer_host_id
    shape = _Shape(
        hypervisor=bool(req.hypervisor),
        host_tags=len([k for k in params if k.startswith("p_htag")]),
        host_id=req.host_id is not None,
        cluster_id=req.cluster_id is not None,
        exclude=bool(avoid),
        together=together is not None,
        prefer="",
        order=req.algorithm,
    )
    return shape, params


def candidates(session: Session, req: Request) -> list[Host]:
    """Hosts that could take the VM now, best first, at most CANDIDATES of them.

    The last host comes first when it still fits. ``random`` reads a window of hosts in id
    order from a random starting id (wrapping around), so its cost does not grow with the
    number of hosts; the other algorithms order all candidates and are meant for smaller
    zones or when their placement matters more than the planner's speed.
    """
    shape, params = _query(session, req)
    found: list[Host] = []
    if req.prefer_host_id is not None:
        only = dataclasses.replace(shape, prefer="only", order="")
        found = list(session.scalars(_statement(only), params))
        shape = dataclasses.replace(shape, prefer="not")
    if req.algorithm == "random":
        top = session.scalar(_TOP_HOST) or 0
        params["p_first"] = random.randint(1, max(top, 1))
        ahead = dataclasses.replace(shape, order="ahead")
        rest = list(session.scalars(_statement(ahead), params))
        if len(rest) < CANDIDATES:
            behind = dataclasses.replace(shape, order="behind")
            rest += list(session.scalars(_statement(behind), params))[: CANDIDATES - len(rest)]
        random.shuffle(rest)
        return found + rest
    return found + list(session.scalars(_statement(shape), params))


def _ordered(stmt: Any, algorithm: str) -> Any:
    """Order candidates by the allocation algorithm."""
    if algorithm == "firstfitleastconsumed":
        return stmt.order_by(_MEM_FREE.desc(), Host.id)
    if algorithm == "userdispersing":
        mine = (
            select(func.count())
            .select_from(VirtualMachine)
            .where(
                VirtualMachine.host_id == Host.id,
                VirtualMachine.account_id == bindparam("p_account"),
                VirtualMachine.state.in_(PLACED_STATES),
            )
            .correlate(Host)
            .scalar_subquery()
        )
        return stmt.order_by(mine.asc(), _MEM_FREE.desc(), Host.id)
    return stmt.order_by(Host.id)  # firstfit


_ROOM = cast(StoragePool.capacity_bytes, Float) * StoragePool.overcommit


@functools.lru_cache(maxsize=16)
def _pool_statement(storage_tags: int) -> Any:
    """Pools a host reaches with room for a disk, best first (bound parameters)."""
    return (
        select(StoragePool)
        .where(
            StoragePool.zone_id == bindparam("p_zone"),
            StoragePool.removed.is_(None),
            StoragePool.status == "Up",
            or_(
                and_(StoragePool.scope == "HOST", StoragePool.host_id == bindparam("p_host")),
                and_(
                    StoragePool.scope == "CLUSTER",
                    StoragePool.cluster_id == bindparam("p_cluster"),
                ),
                StoragePool.scope == "ZONE",
            ),
            StoragePool.allocated_bytes + bindparam("p_size") <= _ROOM,
            *_tags_clause(StoragePool.tags, storage_tags, "p_stag"),  # type: ignore[arg-type]
        )
        .order_by(
            (StoragePool.scope == "ZONE").asc(),  # local and cluster pools before zone-wide
            StoragePool.allocated_bytes.asc(),
        )
        .limit(CANDIDATES)
    )


def pool_candidates(session: Session, req: Request, host: Host) -> list[StoragePool]:
    """Pools the host reaches with room for the disk: its cluster's, then zone-wide ones."""
    tags = _tag_params(req.storage_tags, "p_stag")
    params = {
        "p_zone": host.zone_id,
        "p_host": host.id,
        "p_cluster": host.cluster_id,
        "p_size": req.disk_bytes,
        **tags,
    }
    return list(session.scalars(_pool_statement(len(tags)), params))


_RESERVE_POOL = (
    update(StoragePool)
    .where(
        StoragePool.id == bindparam("p_pool"),
        StoragePool.allocated_bytes + bindparam("p_size") <= _ROOM,
    )
    .values(allocated_bytes=StoragePool.allocated_bytes + bindparam("p_size"))
    .execution_options(synchronize_session=False)
)


def reserve_pool(session: Session, pool_id: int, size: int) -> bool:
    """Take ``size`` bytes of a pool's allocation if it still fits (atomic, like hosts)."""
    done = session.execute(_RESERVE_POOL, {"p_pool": pool_id, "p_size": size})
    return bool(done.rowcount)  # type: ignore[attr-defined]


def release_pool(session: Session, pool_id: int, size: int) -> None:
    smaller: Any = func.greatest if session.get_bind().dialect.name == "postgresql" else func.max
    left = smaller(StoragePool.allocated_bytes - size, 0)
    session.execute(
        update(StoragePool)
        .where(StoragePool.id == pool_id)
        .values(allocated_bytes=left)
        .execution_options(synchronize_session=False)
    )


ROUNDS = 3  # re-read candidates when racing deploys took every one we saw


def place(session: Session, req: Request) -> Placement | None:
    """Reserve a host (and a pool for a new root disk); None when nothing fits."""
    for _ in range(ROUNDS):
        hosts = candidates(session, req)
        if not hosts:
            return None
        for host in hosts:
            found = _try_host(session, req, host)
            if found is not None:
                return found
            req.avoid.add(host.id)
    return None


def _try_host(session: Session, req: Request, host: Host) -> Placement | None:
    if not capacity.reserve(session, host.id, req.cpu_mhz, req.memory_bytes):
        return None  # someone took it since we read it
    if not req.disk_bytes:
        return Placement(host, None)
    for pool in pool_candidates(session, req, host):
        if reserve_pool(session, pool.id, req.disk_bytes):
            return Placement(host, pool)
    capacity.release(session, host.id, req.cpu_mhz, req.memory_bytes)
    return None
