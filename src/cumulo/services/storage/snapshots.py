"""Volume snapshots: exported, self-contained, to the zone's secondary storage.

A snapshot is a row first (Allocated, counted against the owner's ``snapshot`` and
``secondary_storage`` limits in the request's transaction), then a job asks the volume's host
to export a point-in-time copy to the image store under a temporary name, renamed only when
complete (``BackupSnapshot``). Only then does the row get its ``install_path`` and the state
BackedUp: a crash or a failure leaves no file at the final path and the snapshot in Error with
the reason, its counts given back. States, one table:

    Allocated --take--> Creating --backed-up--> BackedUp --delete--> Destroyed
                        Creating --failed--> Error --delete--> Destroyed

The volume itself goes Ready → Snapshotting → Ready around the export, so nothing resizes,
migrates or detaches it meanwhile.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, false, func, or_, select, update
from sqlalchemy import delete as sql_delete
from sqlalchemy.orm import Session

from cumulo.agentrpc.messages import BackupSnapshot, RevertSnapshot
from cumulo.common.ids import new_uuid
from cumulo.common.time import to_wire, utcnow
from cumulo.db.models import Account, Domain
from cumulo.db.models_compute import VirtualMachine, Volume
from cumulo.db.models_infra import ImageStore, StoragePool, Zone
from cumulo.db.models_storage import Snapshot
from cumulo.db.models_tags import ResourceTag
from cumulo.services import limits, tags
from cumulo.services.access import Caller, ListScope
from cumulo.services.compute import planner
from cumulo.services.compute.lifecycle import OperationFailed, host_ref
from cumulo.services.config import ConfigStore
from cumulo.services.errors import ParamError
from cumulo.services.limits import ResourceType
from cumulo.services.runtime import Runtime
from cumulo.services.storage import imagestore, volume_ops, volumes
from cumulo.services.storage.volume_states import Event as VolumeEvent
from cumulo.services.storage.volume_states import State as VolumeState
from cumulo.services.storage.volume_states import transition as move_volume
from cumulo.services.usage import events as usage

TAG_TYPE = "Snapshot"


class State(enum.StrEnum):
    ALLOCATED = "Allocated"
    CREATING = "Creating"
    BACKED_UP = "BackedUp"
    ERROR = "Error"
    DESTROYED = "Destroyed"


class Event(enum.StrEnum):
    TAKE = "take"
    BACKED_UP = "backed-up"
    FAILED = "failed"
    DELETE = "delete"


S, E = State, Event
TRANSITIONS: dict[tuple[State, Event], State] = {
    (S.ALLOCATED, E.TAKE): S.CREATING,
    (S.CREATING, E.TAKE): S.CREATING,  # resumed after a crash
    (S.CREATING, E.BACKED_UP): S.BACKED_UP,
    (S.ALLOCATED, E.FAILED): S.ERROR,
    (S.CREATING, E.FAILED): S.ERROR,
    (S.BACKED_UP, E.DELETE): S.DESTROYED,
    (S.ERROR, E.DELETE): S.DESTROYED,
}


def transition(session: Session, snap: Snapshot, event: Event, **changes: object) -> State:
    """The only writer of a snapshot's state: a conditional UPDATE on the state we read."""
    current = snap.state
    target = TRANSITIONS.get((State(current), event))
    if target is None:
        raise ParamError(f"Unable to {event.value} the snapshot: it is in state {current}")
    done = session.execute(
        update(Snapshot)
        .where(Snapshot.id == snap.id, Snapshot.state == current)
        .values(state=target.value, **changes)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    if not done:
        session.refresh(snap)
        raise ParamError(f"Unable to {event.value} the snapshot: it is now in state {snap.state}")
    snap.state = target.value
    for key, value in changes.items():
        setattr(snap, key, value)
    return target


def counts(snap: Snapshot) -> dict[ResourceType, int]:
    return {ResourceType.snapshot: 1, ResourceType.secondary_storage: snap.size}


def find(session: Session, uuid: str) -> Snapshot:
    snap = session.scalar(select(Snapshot).where(Snapshot.uuid == uuid, Snapshot.removed.is_(None)))
    if snap is None:
        raise ParamError(f"Unable to find snapshot with id {uuid}")
    return snap


def find_for(session: Session, caller: Caller, uuid: str) -> Snapshot:
    snap = find(session, uuid)
    owner = session.get(Account, snap.account_id)
    assert owner is not None
    caller.check_account(owner)
    return snap


def zone_store(session: Session, zone_id: int) -> ImageStore:
    """The zone's image store that the management server and hosts can write."""
    for store in session.scalars(
        select(ImageStore)
        .where(ImageStore.zone_id == zone_id, ImageStore.removed.is_(None))
        .order_by(ImageStore.id)
    ):
        try:
            imagestore.backend_for(store)
        except imagestore.StoreUnavailable:
            continue
        return store
    raise ParamError("Failed to find a secondary storage store in the volume's zone")


export_url = volume_ops.export_url


# --- create and take -------------------------------------------------------------------------


def create(
    session: Session,
    caller: Caller,
    volume: Volume,
    name: str | None,
    config: ConfigStore,
    *,
    interval: str = "MANUAL",
    policy_id: int | None = None,
) -> Snapshot:
    """The Allocated snapshot row and its counts; the export runs in the job (``take``)."""
    if volume.state != VolumeState.READY:
        raise ParamError(
            f"Volume {volume.name} is not in Ready state but {volume.state}: only a volume "
            "that has been attached (and so exists on primary storage) can be snapshotted"
        )
    vm = session.get(VirtualMachine, volume.vm_id) if volume.vm_id else None
    if vm is not None and vm.state not in ("Running", "Stopped"):
        raise ParamError(f"The VM of volume {volume.name} is in state {vm.state}")
    store = zone_store(session, volume.zone_id)
    stamp = utcnow().strftime("%Y%m%d%H%M%S")
    snap = Snapshot(
        name=name or f"{vm.name + '_' if vm else ''}{volume.name}_{stamp}",
        account_id=volume.account_id,
        domain_id=volume.domain_id,
        zone_id=volume.zone_id,
        volume_id=volume.id,
        volume_type=volume.volume_type,
        interval_type=interval,
        policy_id=policy_id,
        state=State.ALLOCATED.value,
        size=volume.size,
        store_id=store.id,
    )
    session.add(snap)
    limits.check_and_increment_many(session, volume.account_id, counts(snap), config=config)
    session.flush()
    return snap


def _path(snap: Snapshot, volume: Volume) -> str:
    return f"snapshot/{snap.account_id}/{volume.id}/{snap.uuid}.qcow2"


def _begin(rt: Runtime, snap_uuid: str) -> volume_ops.HostCall | None:
    with rt.db.write() as session:
        snap = find(session, snap_uuid)
        if snap.state != State.ALLOCATED and snap.state != State.CREATING:
            return None
        volume = volumes.find(session, _volume_uuid(session, snap), include_removed=True)
        store = session.get(ImageStore, snap.store_id)
        pool = session.get(StoragePool, volume.pool_id) if volume.pool_id else None
        if store is None or pool is None or volume.removed is not None:
            raise OperationFailed(f"Volume {volume.name} is no longer on primary storage")
        if volume.state != VolumeState.SNAPSHOTTING:
            move_volume(session, volume, VolumeEvent.SNAPSHOT)
        transition(session, snap, Event.TAKE)
        vm = session.get(VirtualMachine, volume.vm_id) if volume.vm_id else None
        running = vm is not None and vm.state == "Running"
        command = BackupSnapshot(
            request_id=new_uuid(),
            snapshot_id=snap.uuid,
            path=str(volume.path),
            store_url=store.url,
            install_path=_path(snap, volume),
            vm_name=vm.instance_name if running and vm is not None else None,
        )
        host = volume_ops.host_for_pool(session, pool, vm)
        return volume_ops.HostCall(host_ref(session, host), command, float(_wait(rt, session)))


def _wait(rt: Runtime, session: Session) -> float:
    return volume_ops.agent_wait(rt, session)


def _volume_uuid(session: Session, snap: Snapshot) -> str:
    volume = session.get(Volume, snap.volume_id)
    assert volume is not None
    return volume.uuid


def take(rt: Runtime, snap_uuid: str) -> None:
    """Export the snapshot; on any failure it ends in Error with the reason, counts given back."""
    try:
        call = _begin(rt, snap_uuid)
    except OperationFailed as err:
        fail(rt, snap_uuid, err.text)
        raise
    if call is None:
        return
    ok, why, result = volume_ops.send(rt, call)
    if not ok:
        fail(rt, snap_uuid, why)
        raise OperationFailed(f"Failed to create snapshot {snap_uuid}: {why}")
    assert isinstance(call.command, BackupSnapshot)
    with rt.db.write() as session:
        snap = find(session, snap_uuid)
        if snap.state != State.CREATING:
            return
        physical = result.get("physical_size")
        transition(
            session,
            snap,
            Event.BACKED_UP,
            install_path=call.command.install_path,
            physical_size=int(physical) if isinstance(physical, int) else 0,
            error=None,
        )
        usage.record_snapshot(session, usage.SNAPSHOT_CREATE, snap)
        _volume_back(session, snap, VolumeEvent.SNAPSHOTTED)


def _volume_back(session: Session, snap: Snapshot, event: VolumeEvent) -> None:
    volume = session.get(Volume, snap.volume_id)
    if volume is not None and volume.state == VolumeState.SNAPSHOTTING:
        move_volume(session, volume, event)


def fail(rt: Runtime, snap_uuid: str, reason: str) -> None:
    """Error with the reason, counts given back, the volume Ready, no file left behind."""
    with rt.db.write() as session:
        snap = session.scalar(select(Snapshot).where(Snapshot.uuid == snap_uuid))
        if snap is None or snap.state not in (State.ALLOCATED, State.CREATING):
            return
        store = session.get(ImageStore, snap.store_id) if snap.store_id else None
        volume = session.get(Volume, snap.volume_id)
        path = _path(snap, volume) if volume is not None else None
        transition(session, snap, Event.FAILED, error=reason, install_path=None)
        limits.decrement_many(session, snap.account_id, counts(snap))
        _volume_back(session, snap, VolumeEvent.SNAPSHOT_FAILED)
    if store is not None and path is not None:  # an answer lost after the rename
        imagestore.backend_for(store).delete(path)


# --- delete and revert -----------------------------------------------------------------------


def check_deletable(snap: Snapshot) -> None:
    if snap.state not in (State.BACKED_UP, State.ERROR):
        raise ParamError(f"Snapshot {snap.name} is in state {snap.state}: it cannot be deleted now")


def delete(rt: Runtime, snap_uuid: str) -> None:
    """Remove the export from secondary storage, then the row; counts given back once."""
    with rt.db.read() as session:
        snap = session.scalar(select(Snapshot).where(Snapshot.uuid == snap_uuid))
        if snap is None or snap.removed is not None:
            return
        store = session.get(ImageStore, snap.store_id) if snap.store_id else None
        path = snap.install_path
    if store is not None and path:
        imagestore.backend_for(store).delete(path)
    with rt.db.write() as session:
        snap = find(session, snap_uuid)
        was_counted = snap.state == State.BACKED_UP
        transition(session, snap, Event.DELETE, removed=utcnow())
        if was_counted:
            limits.decrement_many(session, snap.account_id, counts(snap))
            usage.record_snapshot(session, usage.SNAPSHOT_DELETE, snap)
        session.execute(
            sql_delete(ResourceTag).where(
                ResourceTag.resource_type == TAG_TYPE, ResourceTag.resource_id == snap.id
            )
        )


def check_revert(session: Session, snap: Snapshot) -> Volume:
    if snap.state != State.BACKED_UP:
        raise ParamError(f"Snapshot {snap.name} is not backed up: it is in state {snap.state}")
    volume = session.get(Volume, snap.volume_id)
    if volume is None or volume.removed is not None:
        raise ParamError("The volume of this snapshot no longer exists")
    if volume.state != VolumeState.READY:
        raise ParamError(f"Volume {volume.name} is in state {volume.state}: it cannot revert")
    vm = session.get(VirtualMachine, volume.vm_id) if volume.vm_id else None
    if vm is not None and vm.state != "Stopped":
        raise ParamError(
            f"The VM {vm.name} of volume {volume.name} must be stopped to revert a snapshot"
        )
    return volume


def revert(rt: Runtime, snap_uuid: str) -> None:
    """Overwrite the volume with the snapshot; its size becomes the snapshot's again."""
    with rt.db.write() as session:
        snap = find(session, snap_uuid)
        volume = check_revert(session, snap) if snap.state == State.BACKED_UP else None
        url = export_url(session, snap)
        if volume is None or url is None:
            raise ParamError(f"Snapshot {snap.name} cannot be reverted")
        pool = session.get(StoragePool, volume.pool_id) if volume.pool_id else None
        if pool is None:
            raise ParamError(f"Volume {volume.name} is not on primary storage")
        delta = snap.size - volume.size
        volume_ops.count_delta(rt, session, volume, delta)
        if delta > 0 and not planner.reserve_pool(session, pool.id, delta):
            raise OperationFailed(f"Storage pool {pool.name} has no room to revert")
        move_volume(session, volume, VolumeEvent.REVERT)
        call = volume_ops.HostCall(
            host_ref(session, volume_ops.host_for_pool(session, pool, None)),
            RevertSnapshot(request_id=new_uuid(), path=str(volume.path), source_url=url),
            _wait(rt, session),
        )
        volume_uuid = volume.uuid
    ok, why, _ = volume_ops.send(rt, call)
    with rt.db.write() as session:
        volume = volumes.find(session, volume_uuid)
        if volume.state != VolumeState.REVERTING:
            return
        if ok:
            if delta < 0 and volume.pool_id is not None:
                planner.release_pool(session, volume.pool_id, -delta)
            move_volume(session, volume, VolumeEvent.REVERTED, size=volume.size + delta)
            return
        volume_ops.count_delta(rt, session, volume, -delta)
        if delta > 0 and volume.pool_id is not None:
            planner.release_pool(session, volume.pool_id, delta)
        move_volume(session, volume, VolumeEvent.REVERT_FAILED, error=why)
    raise OperationFailed(f"Failed to revert snapshot {snap_uuid}: {why}")


# --- listing ---------------------------------------------------------------------------------


@dataclass
class SnapshotFilter:
    ids: Sequence[str] = ()
    name: str | None = None
    volume: str | None = None
    interval: str | None = None
    zone: str | None = None
    state: str | None = None
    keyword: str | None = None
    tags: Sequence[dict[str, str]] | None = None


def page_select(sf: SnapshotFilter, scope: ListScope) -> Select[Any]:
    s = Snapshot
    stmt = select(s.id).where(s.removed.is_(None))
    if scope.domain_path is not None:
        stmt = stmt.join(Domain, Domain.id == s.domain_id)
        stmt = stmt.where(scope.where(s.account_id, Domain.path))
    elif scope.account_id is not None:
        stmt = stmt.where(s.account_id == scope.account_id)
    if sf.ids:
        stmt = stmt.where(s.uuid.in_(list(sf.ids)))
    if sf.name is not None:
        stmt = stmt.where(s.name == sf.name)
    if sf.volume is not None:
        stmt = stmt.where(
            s.volume_id == select(Volume.id).where(Volume.uuid == sf.volume).scalar_subquery()
        )
    if sf.zone is not None:
        stmt = stmt.where(
            s.zone_id == select(Zone.id).where(Zone.uuid == sf.zone).scalar_subquery()
        )
    if sf.interval is not None:
        stmt = stmt.where(func.upper(s.interval_type) == sf.interval.upper())
    if sf.state is not None:
        stmt = stmt.where(s.state == sf.state)
    if sf.keyword:
        stmt = stmt.where(or_(s.name.ilike(f"%{sf.keyword}%")))
    stmt = tags.filter_by_tags(stmt, TAG_TYPE, s.id, sf.tags)  # type: ignore[type-var]
    return stmt.order_by(s.id.desc())


def render(session: Session, caller: Caller, ids: Sequence[int]) -> list[dict[str, Any]]:
    if not ids:
        return []
    rows = {
        r[0].id: r
        for r in session.execute(
            select(
                Snapshot,
                Account.name.label("account"),
                Domain.uuid.label("domainid"),
                Domain.name.label("domain"),
                Domain.path.label("domainpath"),
                Zone.uuid.label("zoneid"),
                Zone.name.label("zonename"),
                Volume.uuid.label("volumeid"),
                Volume.name.label("volumename"),
                Volume.state.label("volumestate"),
            )
            .join(Account, Account.id == Snapshot.account_id)
            .join(Domain, Domain.id == Snapshot.domain_id)
            .join(Zone, Zone.id == Snapshot.zone_id)
            .join(Volume, Volume.id == Snapshot.volume_id)
            .where(Snapshot.id.in_(list(ids)) if ids else false())
        )
    }
    tag_map = tags.tags_for(session, TAG_TYPE, ids)
    out = []
    for snap_id in ids:
        row = rows.get(snap_id)
        if row is None:
            continue
        snap: Snapshot = row[0]
        item: dict[str, Any] = {
            "id": snap.uuid,
            "name": snap.name,
            "account": row.account,
            "domainid": row.domainid,
            "domain": row.domain,
            "domainpath": row.domainpath,
            "zoneid": row.zoneid,
            "zonename": row.zonename,
            "volumeid": row.volumeid,
            "volumename": row.volumename,
            "volumetype": snap.volume_type,
            "volumestate": row.volumestate,
            "snapshottype": snap.interval_type,
            "intervaltype": snap.interval_type,
            "state": snap.state,
            "created": to_wire(snap.created),
            "virtualsize": snap.size,
            "physicalsize": snap.physical_size,
            "revertable": snap.state == State.BACKED_UP,
            "locationtype": "SECONDARY",
            "tags": tag_map.get(snap_id, []),
        }
        if snap.error and snap.state == State.ERROR:
            item["status"] = snap.error
        out.append(item)
    return out


tags.register_taggable(TAG_TYPE, tags.owned(Snapshot))


def _count_snapshots(session: Session, account: Account) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Snapshot)
            .where(
                Snapshot.account_id == account.id,
                Snapshot.removed.is_(None),
                Snapshot.state.in_((State.ALLOCATED, State.CREATING, State.BACKED_UP)),
            )
        )
        or 0
    )


limits.register_counter(ResourceType.snapshot, _count_snapshots)
