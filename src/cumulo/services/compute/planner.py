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

import random
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Float, and_, cast, func, literal, or_, select, update
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


def _tags_clause(column: object, tags: tuple[str, ...]) -> list[object]:
    """Every tag must be in the comma-separated list (spaces ignored)."""
    padded = literal(",") + func.replace(column, " ", "") + literal(",")
    return [padded.like(f"%,{tag.strip()},%") for tag in tags if tag.strip()]


def _affinity(session: Session, vm_id: int) -> tuple[set[int], set[int] | None]:
    """Hosts to exclude (anti-affinity) and hosts to stay on (affinity, None = anywhere)."""
    other = aliased(AffinityGroupVmMap)
    rows = session.execute(
        select(AffinityGroup.type, VirtualMachine.host_id)
        .join(AffinityGroupVmMap, AffinityGroupVmMap.group_id == AffinityGroup.id)
        .join(other, other.group_id == AffinityGroup.id)
        .join(VirtualMachine, VirtualMachine.id == other.vm_id)
        .where(
            AffinityGroupVmMap.vm_id == vm_id,
            other.vm_id != vm_id,
            VirtualMachine.host_id.is_not(None),
            VirtualMachine.state.in_(PLACED_STATES),
        )
    ).all()
    excluded = {host for kind, host in rows if kind == "host anti-affinity" and host is not None}
    together = {host for kind, host in rows if kind == "host affinity" and host is not None}
    return excluded, (together or None)


_CPU, _MEM = aliased(HostCapacity), aliased(HostCapacity)
_CPU_FREE = cast(_CPU.total, Float) * Cluster.cpu_overcommit - _CPU.used - _CPU.reserved
_MEM_FREE = cast(_MEM.total, Float) * Cluster.memory_overcommit - _MEM.used - _MEM.reserved


def _base(session: Session, req: Request) -> Any:
    """Every host that could take the VM now, unordered."""
    stmt = (
        select(Host)
        .join(Cluster, Cluster.id == Host.cluster_id)
        .join(Pod, Pod.id == Host.pod_id)
        .join(Zone, Zone.id == Host.zone_id)
        .join(_CPU, and_(_CPU.host_id == Host.id, _CPU.type == capacity.CPU))
        .join(_MEM, and_(_MEM.host_id == Host.id, _MEM.type == capacity.MEMORY))
        .where(
            Host.zone_id == req.zone_id,
            Host.type == "Routing",
            Host.removed.is_(None),
            Host.status == "Up",
            Host.resource_state == "Enabled",
            Cluster.allocation_state == "Enabled",
            Pod.allocation_state == "Enabled",
            Zone.allocation_state == "Enabled",
            req.cpu_mhz <= _CPU_FREE,
            req.memory_bytes <= _MEM_FREE,
            *_tags_clause(Host.host_tags, req.host_tags),  # type: ignore[arg-type]
        )
    )
    if req.hypervisor:
        stmt = stmt.where(func.lower(Host.hypervisor_type) == req.hypervisor.lower())
    if req.host_id is not None:
        stmt = stmt.where(Host.id == req.host_id)
    if req.cluster_id is not None:
        stmt = stmt.where(Host.cluster_id == req.cluster_id)
    excluded, together = _affinity(session, req.vm_id)
    if req.avoid or excluded:
        stmt = stmt.where(Host.id.not_in(req.avoid | excluded))
    if together is not None:
        stmt = stmt.where(Host.id.in_(together))
    return stmt


def candidates(session: Session, req: Request) -> list[Host]:
    """Hosts that could take the VM now, best first, at most CANDIDATES of them.

    The last host comes first when it still fits. ``random`` reads a window of hosts in id
    order from a random starting id (wrapping around), so its cost does not grow with the
    number of hosts; the other algorithms order all candidates and are meant for smaller
    zones or when their placement matters more than the planner's speed.
    """
    stmt = _base(session, req)
    found: list[Host] = []
    if req.prefer_host_id is not None:
        found = list(session.scalars(stmt.where(Host.id == req.prefer_host_id)))
        stmt = stmt.where(Host.id != req.prefer_host_id)
    if req.algorithm == "random":
        top = session.scalar(select(func.max(Host.id))) or 0
        first = random.randint(1, max(top, 1))
        ahead = session.scalars(stmt.where(Host.id >= first).order_by(Host.id).limit(CANDIDATES))
        rest = list(ahead)
        if len(rest) < CANDIDATES:
            behind = stmt.where(Host.id < first).order_by(Host.id)
            rest += list(session.scalars(behind.limit(CANDIDATES - len(rest))))
        random.shuffle(rest)
        return found + rest
    return found + list(session.scalars(_ordered(stmt, req).limit(CANDIDATES)))


def _ordered(stmt: Any, req: Request) -> Any:
    """Order candidates by the allocation algorithm."""
    if req.algorithm == "firstfitleastconsumed":
        return stmt.order_by(_MEM_FREE.desc(), Host.id)
    if req.algorithm == "userdispersing":
        mine = (
            select(func.count())
            .select_from(VirtualMachine)
            .where(
                VirtualMachine.host_id == Host.id,
                VirtualMachine.account_id == req.account_id,
                VirtualMachine.state.in_(PLACED_STATES),
            )
            .correlate(Host)
            .scalar_subquery()
        )
        return stmt.order_by(mine.asc(), _MEM_FREE.desc(), Host.id)
    return stmt.order_by(Host.id)  # firstfit


def pool_candidates(session: Session, req: Request, host: Host) -> list[StoragePool]:
    """Pools the host reaches with room for the disk: its cluster's, then zone-wide ones."""
    room = cast(StoragePool.capacity_bytes, Float) * StoragePool.overcommit
    stmt = (
        select(StoragePool)
        .where(
            StoragePool.zone_id == host.zone_id,
            StoragePool.removed.is_(None),
            StoragePool.status == "Up",
            or_(
                and_(StoragePool.scope == "HOST", StoragePool.host_id == host.id),
                and_(StoragePool.scope == "CLUSTER", StoragePool.cluster_id == host.cluster_id),
                StoragePool.scope == "ZONE",
            ),
            StoragePool.allocated_bytes + req.disk_bytes <= room,
            *_tags_clause(StoragePool.tags, req.storage_tags),  # type: ignore[arg-type]
        )
        .order_by(
            (StoragePool.scope == "ZONE").asc(),  # local and cluster pools before zone-wide
            StoragePool.allocated_bytes.asc(),
        )
        .limit(CANDIDATES)
    )
    return list(session.scalars(stmt))


def reserve_pool(session: Session, pool_id: int, size: int) -> bool:
    """Take ``size`` bytes of a pool's allocation if it still fits (atomic, like hosts)."""
    room = cast(StoragePool.capacity_bytes, Float) * StoragePool.overcommit
    done = session.execute(
        update(StoragePool)
        .where(StoragePool.id == pool_id, StoragePool.allocated_bytes + size <= room)
        .values(allocated_bytes=StoragePool.allocated_bytes + size)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    return bool(done)


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
