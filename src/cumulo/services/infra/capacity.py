"""Host and storage capacity: the one guarded reservation, and the listCapacity totals.

A reservation is a single conditional UPDATE per capacity type (``used + reserved + x <=
total * overcommit``). The database evaluates the guard and the increment atomically on the
row it locks, so two deploys racing for the last slot of a host cannot both win: on
PostgreSQL the second UPDATE waits for the first's row lock and re-checks the guard against
the committed value; on SQLite writers are serialised. No read-modify-write in Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Float, bindparam, case, cast, func, literal, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from cumulo.db.models_infra import Cluster, Host, HostCapacity, Pod, StoragePool, Zone
from cumulo.services.errors import NotFound

# CloudStack's Capacity.CAPACITY_TYPE_* numbers and the names listCapacity shows.
MEMORY = 0
CPU = 1
STORAGE = 2
STORAGE_ALLOCATED = 3
NAMES = {MEMORY: "MEMORY", CPU: "CPU", STORAGE: "STORAGE", STORAGE_ALLOCATED: "STORAGE_ALLOCATED"}

# Hosts and pools whose capacity counts: CloudStack disables a host's capacity rows when the
# host leaves Enabled (disabled, in or entering maintenance), and a pool's in maintenance.
COUNTED_HOST_STATE = "Enabled"
COUNTED_POOL_STATE = "Up"


def _factor(capacity_type: int) -> Any:
    """The host's cluster overcommit factor for this type, as a scalar subquery."""
    column = Cluster.cpu_overcommit if capacity_type == CPU else Cluster.memory_overcommit
    return (
        select(column)
        .join(Host, Host.cluster_id == Cluster.id)
        .where(Host.id == bindparam("p_host"))
        .scalar_subquery()
    )


# Built once and run with bound values: a deploy reserves on every placement, and building
# the expression (and its cache key) each time cost more than the UPDATE itself.
_ADD = {
    kind: update(HostCapacity)
    .where(
        HostCapacity.host_id == bindparam("p_host"),
        HostCapacity.type == kind,
        HostCapacity.used + HostCapacity.reserved + bindparam("p_amount")
        <= cast(HostCapacity.total, Float) * _factor(kind),
    )
    .values(used=HostCapacity.used + bindparam("p_amount"))
    .execution_options(synchronize_session=False)
    for kind in (CPU, MEMORY)
}
_SUBTRACT = (
    update(HostCapacity)
    .where(HostCapacity.host_id == bindparam("p_host"), HostCapacity.type == bindparam("p_type"))
    .values(
        used=case(
            (HostCapacity.used > bindparam("p_amount"), HostCapacity.used - bindparam("p_amount")),
            else_=literal(0),
        )
    )
    .execution_options(synchronize_session=False)
)


def _add(session: Session, host_id: int, capacity_type: int, amount: int) -> bool:
    """Add ``amount`` to one capacity row if it still fits; True when the row was updated."""
    done = session.execute(_ADD[capacity_type], {"p_host": host_id, "p_amount": amount})
    return bool(done.rowcount)  # type: ignore[attr-defined]


def _subtract(session: Session, host_id: int, capacity_type: int, amount: int) -> None:
    """Give ``amount`` back, never below zero (a double release must not go negative)."""
    session.execute(_SUBTRACT, {"p_host": host_id, "p_type": capacity_type, "p_amount": amount})


def reserve(session: Session, host_id: int, cpu_mhz: int, memory_bytes: int) -> bool:
    """Take CPU and memory on a host for one VM, all or nothing, within the caller's transaction.

    False (and nothing taken) when either does not fit. If the CPU fits and the memory does
    not, the CPU is given back in the same transaction, so a concurrent reader of the
    committed rows never sees the half-made reservation.
    """
    if not _add(session, host_id, CPU, cpu_mhz):
        return False
    if not _add(session, host_id, MEMORY, memory_bytes):
        _subtract(session, host_id, CPU, cpu_mhz)
        return False
    return True


def force_reserve(session: Session, host_id: int, cpu_mhz: int, memory_bytes: int) -> None:
    """Count a VM found running on a host even beyond its capacity: it is there."""
    for capacity_type, amount in ((CPU, cpu_mhz), (MEMORY, memory_bytes)):
        session.execute(
            update(HostCapacity)
            .where(HostCapacity.host_id == host_id, HostCapacity.type == capacity_type)
            .values(used=HostCapacity.used + amount)
            .execution_options(synchronize_session=False)
        )


def release(session: Session, host_id: int, cpu_mhz: int, memory_bytes: int) -> None:
    """Give back what ``reserve`` took (a stopped or migrated VM)."""
    _subtract(session, host_id, CPU, cpu_mhz)
    _subtract(session, host_id, MEMORY, memory_bytes)


def set_host_capacity(session: Session, host_id: int, cpu_mhz: int, memory_bytes: int) -> None:
    """The capacity rows of a newly added host (used and reserved start at zero)."""
    session.add_all(
        [
            HostCapacity(host_id=host_id, type=MEMORY, total=memory_bytes, used=0, reserved=0),
            HostCapacity(host_id=host_id, type=CPU, total=cpu_mhz, used=0, reserved=0),
        ]
    )


@dataclass(frozen=True)
class Scope:
    """Where listCapacity looks and at which level it groups (zone, pod or cluster)."""

    zone_id: int | None = None
    pod_id: int | None = None
    cluster_id: int | None = None

    @property
    def level(self) -> str:
        if self.cluster_id is not None:
            return "cluster"
        return "pod" if self.pod_id is not None else "zone"


@dataclass
class Total:
    type: int
    zone: Any
    pod: Any
    cluster: Any
    total: int
    used: int

    @property
    def percent(self) -> float:
        return (self.used * 100.0 / self.total) if self.total else 0.0


def _group_columns(level: str, pod: Any, cluster: Any) -> list[Any]:
    cols: list[Any] = [Zone.id, Zone.uuid, Zone.name]
    if level in ("pod", "cluster"):
        cols += [pod.id, pod.uuid, pod.name]
    if level == "cluster":
        cols += [cluster.id, cluster.uuid, cluster.name]
    return cols


def _split(row: Any, level: str) -> tuple[Any, Any, Any]:
    """(zone, pod, cluster) triples of (uuid, name) from a grouped row."""
    zone = (row[1], row[2])
    pod = (row[4], row[5]) if level in ("pod", "cluster") else None
    cluster = (row[7], row[8]) if level == "cluster" else None
    return zone, pod, cluster


def _filters(scope: Scope, zone_col: Any, pod_col: Any, cluster_col: Any) -> list[Any]:
    out: list[ColumnElement[bool]] = []
    if scope.zone_id is not None:
        out.append(zone_col == scope.zone_id)
    if scope.pod_id is not None:
        out.append(pod_col == scope.pod_id)
    if scope.cluster_id is not None:
        out.append(cluster_col == scope.cluster_id)
    return out


def host_totals(session: Session, scope: Scope, capacity_type: int) -> list[Total]:
    """CPU or memory per zone/pod/cluster: totals times the cluster's overcommit factor
    (as CloudStack's listCapacity shows them), counting Enabled hosts only."""
    factor = Cluster.cpu_overcommit if capacity_type == CPU else Cluster.memory_overcommit
    group = _group_columns(scope.level, Pod, Cluster)
    stmt = (
        select(
            *group,
            func.sum(cast(HostCapacity.total, Float) * factor),
            func.sum(HostCapacity.used + HostCapacity.reserved),
        )
        .select_from(HostCapacity)
        .join(Host, Host.id == HostCapacity.host_id)
        .join(Cluster, Cluster.id == Host.cluster_id)
        .join(Pod, Pod.id == Host.pod_id)
        .join(Zone, Zone.id == Host.zone_id)
        .where(
            HostCapacity.type == capacity_type,
            Host.removed.is_(None),
            Host.resource_state == COUNTED_HOST_STATE,
            *_filters(scope, Host.zone_id, Host.pod_id, Host.cluster_id),
        )
        .group_by(*group)
    )
    out = []
    for row in session.execute(stmt).all():
        zone, pod, cluster = _split(row, scope.level)
        out.append(Total(capacity_type, zone, pod, cluster, int(row[-2] or 0), int(row[-1] or 0)))
    return out


def storage_totals(session: Session, scope: Scope, capacity_type: int) -> list[Total]:
    """Primary storage per zone/pod/cluster: used bytes against the raw size (STORAGE), or
    allocated bytes against the size times the pool's overprovisioning factor
    (STORAGE_ALLOCATED). Zone-wide pools count at zone level only, having no pod."""
    pod = Pod.__table__.alias("pool_pod")
    cluster = Cluster.__table__.alias("pool_cluster")
    group = _group_columns(scope.level, pod.c, cluster.c)
    if capacity_type == STORAGE:
        total = func.sum(StoragePool.capacity_bytes)
        used = func.sum(StoragePool.used_bytes)
    else:
        total = func.sum(cast(StoragePool.capacity_bytes, Float) * StoragePool.overcommit)
        used = func.sum(StoragePool.allocated_bytes)
    stmt = (
        select(*group, total, used)
        .select_from(StoragePool)
        .join(Zone, Zone.id == StoragePool.zone_id)
        .outerjoin(pod, pod.c.id == StoragePool.pod_id)
        .outerjoin(cluster, cluster.c.id == StoragePool.cluster_id)
        .where(
            StoragePool.removed.is_(None),
            StoragePool.status == COUNTED_POOL_STATE,
            *_filters(scope, StoragePool.zone_id, StoragePool.pod_id, StoragePool.cluster_id),
        )
        .group_by(*group)
    )
    if scope.level != "zone":
        stmt = stmt.where(StoragePool.pod_id.is_not(None))
    out = []
    for row in session.execute(stmt).all():
        zone, p, c = _split(row, scope.level)
        out.append(Total(capacity_type, zone, p, c, int(row[-2] or 0), int(row[-1] or 0)))
    return out


def totals(session: Session, scope: Scope, capacity_type: int | None) -> list[Total]:
    """Every capacity type asked for, in CloudStack's type order within each place."""
    types = [capacity_type] if capacity_type is not None else sorted(NAMES)
    out: list[Total] = []
    for t in types:
        if t in (CPU, MEMORY):
            out += host_totals(session, scope, t)
        elif t in (STORAGE, STORAGE_ALLOCATED):
            out += storage_totals(session, scope, t)
    return out


def _key(session: Session, model: Any, uuid: str | None, label: str) -> int | None:
    if uuid is None:
        return None
    key = session.scalar(select(model.id).where(model.uuid == uuid, model.removed.is_(None)))
    if key is None:
        raise NotFound(f"Unable to find {label} by id {uuid}")
    return int(key)


def resolve_scope(
    session: Session, zoneid: str | None, podid: str | None, clusterid: str | None
) -> Scope:
    """listCapacity's ids as keys; each must exist (431 otherwise)."""
    return Scope(
        zone_id=_key(session, Zone, zoneid, "zone"),
        pod_id=_key(session, Pod, podid, "pod"),
        cluster_id=_key(session, Cluster, clusterid, "cluster"),
    )
