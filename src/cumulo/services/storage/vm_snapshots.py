"""VM snapshots: every disk of a VM (and, for DiskAndMemory, its memory) at one instant.

Unlike volume snapshots they are not exported: the host keeps them inside the VM's own qcow2
disks as internal snapshots named by the row's ``name`` (the tag), so taking, reverting and
deleting one is a single command to the host that holds the disks. A row is written first
(Allocated, in the request's transaction, with the checks CloudStack makes), then a job drives
it through one state machine:

    Allocated --take--> Creating --created--> Ready --revert--> Reverting --reverted--> Ready
    Allocated|Creating --failed--> Error
    Ready|Error --delete--> Expunging --deleted--> (removed)
    Reverting --revert-failed--> Ready (with the reason)

A job re-run after a server crash repeats its step (every host command is idempotent); a job
abandoned by the job engine ends the snapshot in a final state (``abandon``), so nothing stays
Creating, Reverting or Expunging.

The snapshots of a VM form a tree: a new snapshot's parent is the VM's current one, and a
revert makes the target current. Deleting a snapshot hands its children to its parent.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy import delete as sql_delete
from sqlalchemy.orm import Session

from cumulo.agentrpc.messages import (
    CreateVmSnapshot,
    DeleteVmSnapshot,
    RevertVmSnapshot,
    VmSnapshotCommand,
)
from cumulo.common.ids import new_uuid
from cumulo.common.time import to_wire, utcnow
from cumulo.db.models import Account, Domain
from cumulo.db.models_compute import VirtualMachine, Volume
from cumulo.db.models_infra import Host, StoragePool, Zone
from cumulo.db.models_storage import Snapshot
from cumulo.db.models_tags import ResourceTag
from cumulo.db.models_vmsnapshots import VMSnapshot
from cumulo.services import config, tags
from cumulo.services.access import Caller, ListScope
from cumulo.services.compute.lifecycle import OperationFailed, host_ref
from cumulo.services.config import ConfigKey, ConfigStore
from cumulo.services.errors import CloudError, ParamError
from cumulo.services.runtime import Runtime
from cumulo.services.storage import volume_ops
from cumulo.services.storage.volume_states import State as VolumeState
from cumulo.services.usage import events as usage

TAG_TYPE = "VMSnapshot"
DISK, DISK_AND_MEMORY = "Disk", "DiskAndMemory"

VM_SNAPSHOT_MAX = config.define(
    ConfigKey(
        "vmsnapshot.max",
        "Advanced",
        "Integer",
        "10",
        "Maximum vm snapshots for a single vm",
        min=1,
    )
)


class State(enum.StrEnum):
    ALLOCATED = "Allocated"
    CREATING = "Creating"
    READY = "Ready"
    REVERTING = "Reverting"
    EXPUNGING = "Expunging"
    ERROR = "Error"


class Event(enum.StrEnum):
    TAKE = "take"
    CREATED = "created"
    FAILED = "failed"
    REVERT = "revert"
    REVERTED = "reverted"
    REVERT_FAILED = "revert-failed"
    DELETE = "delete"
    KEPT = "kept"  # a delete that failed: the snapshot is still there


S, E = State, Event
TRANSITIONS: dict[tuple[State, Event], State] = {
    (S.ALLOCATED, E.TAKE): S.CREATING,
    (S.CREATING, E.TAKE): S.CREATING,  # resumed after a crash
    (S.CREATING, E.CREATED): S.READY,
    (S.ALLOCATED, E.FAILED): S.ERROR,
    (S.CREATING, E.FAILED): S.ERROR,
    (S.READY, E.REVERT): S.REVERTING,
    (S.REVERTING, E.REVERT): S.REVERTING,  # resumed after a crash
    (S.REVERTING, E.REVERTED): S.READY,
    (S.REVERTING, E.REVERT_FAILED): S.READY,
    (S.READY, E.DELETE): S.EXPUNGING,
    (S.ERROR, E.DELETE): S.EXPUNGING,
    (S.EXPUNGING, E.DELETE): S.EXPUNGING,  # resumed after a crash
    (S.EXPUNGING, E.KEPT): S.READY,  # it had been taken (``error`` is None)
    (S.EXPUNGING, E.FAILED): S.ERROR,  # it had failed to be taken (``error`` says why)
}
BUSY = (S.ALLOCATED, S.CREATING, S.REVERTING, S.EXPUNGING)


class TooManySnapshots(CloudError):
    """CloudStack refuses the snapshot with a CloudRuntimeException (530)."""


def transition(session: Session, snap: VMSnapshot, event: Event, **changes: object) -> State:
    """The only writer of a VM snapshot's state: a conditional UPDATE on the state we read."""
    current = snap.state
    target = TRANSITIONS.get((State(current), event))
    if target is None:
        raise ParamError(
            f"Unable to {event.value} VM snapshot {snap.display_name}: it is {current}"
        )
    done = session.execute(
        update(VMSnapshot)
        .where(VMSnapshot.id == snap.id, VMSnapshot.state == current)
        .values(state=target.value, **changes)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    if not done:
        session.refresh(snap)
        raise ParamError(
            f"Unable to {event.value} VM snapshot {snap.display_name}: it is now {snap.state}"
        )
    snap.state = target.value
    for key, value in changes.items():
        setattr(snap, key, value)
    return target


def find(session: Session, uuid: str) -> VMSnapshot:
    snap = session.scalar(
        select(VMSnapshot).where(VMSnapshot.uuid == uuid, VMSnapshot.removed.is_(None))
    )
    if snap is None:
        raise ParamError(f"Unable to find the VM snapshot with id {uuid}")
    return snap


def find_for(session: Session, caller: Caller, uuid: str) -> VMSnapshot:
    snap = find(session, uuid)
    owner = session.get(Account, snap.account_id)
    assert owner is not None
    caller.check_account(owner)
    return snap


def _vm(session: Session, snap: VMSnapshot) -> VirtualMachine:
    vm = session.get(VirtualMachine, snap.vm_id)
    if vm is None or vm.removed is not None:
        raise OperationFailed(f"The VM of VM snapshot {snap.display_name} no longer exists")
    return vm


def _disks(session: Session, vm: VirtualMachine) -> list[Volume]:
    return list(
        session.scalars(
            select(Volume)
            .where(Volume.vm_id == vm.id, Volume.removed.is_(None))
            .order_by(Volume.device_id, Volume.id)
        )
    )


def _live(session: Session, vm: VirtualMachine) -> VMSnapshot | None:
    """A snapshot of the VM that is being taken, reverted to or deleted right now."""
    return session.scalar(
        select(VMSnapshot).where(
            VMSnapshot.vm_id == vm.id,
            VMSnapshot.removed.is_(None),
            VMSnapshot.state.in_([s.value for s in BUSY]),
        )
    )


def _check_vm_quiet(session: Session, vm: VirtualMachine) -> list[Volume]:
    """The VM's disks, all on primary storage, with no volume or VM snapshot under way."""
    disks = _disks(session, vm)
    running = session.scalar(
        select(func.count())
        .select_from(Snapshot)
        .where(
            Snapshot.volume_id.in_([d.id for d in disks]),
            Snapshot.removed.is_(None),
            Snapshot.state.in_(("Allocated", "Creating")),
        )
    )
    if running:
        raise ParamError(
            "There is other active volume snapshot tasks on the instance to which the volume "
            "is attached, please try again later"
        )
    busy = [d for d in disks if d.state != VolumeState.READY or not d.path]
    if not disks or busy:
        what = f"volume {busy[0].name} is {busy[0].state}" if busy else "it has no volumes"
        raise ParamError(f"VM {vm.name} cannot be snapshotted now: {what}")
    other = _live(session, vm)
    if other is not None:
        raise ParamError(
            f"There is other active vm snapshot tasks on the instance {vm.name}: "
            f"{other.display_name} is {other.state}, please try again later"
        )
    return disks


# --- create and take -------------------------------------------------------------------------


def create(
    session: Session,
    vm: VirtualMachine,
    display_name: str | None,
    description: str | None,
    memory: bool,
    cfg: ConfigStore,
) -> VMSnapshot:
    """The Allocated row, after CloudStack's checks; the host takes it in the job (``take``)."""
    if vm.state not in ("Running", "Stopped"):
        raise ParamError(
            f"Creating vm snapshot failed due to VM:{vm.name} is not in the running or "
            f"Stopped state (it is {vm.state})"
        )
    if memory and vm.state != "Running":
        raise ParamError("Can not snapshot memory when VM is not in Running state: VM " + vm.name)
    if display_name is not None and len(display_name) > 255:
        raise ParamError("Creating VM snapshot failed: the name is longer than 255 characters")
    disks = _check_vm_quiet(session, vm)
    limit = int(cfg.get(session, VM_SNAPSHOT_MAX))
    taken = session.scalar(
        select(func.count())
        .select_from(VMSnapshot)
        .where(VMSnapshot.vm_id == vm.id, VMSnapshot.removed.is_(None))
    )
    if (taken or 0) >= limit:
        raise TooManySnapshots(
            f"Creating vm snapshot failed due to a VM can just have : {limit} VM snapshots. "
            "Please delete old ones"
        )
    stamp = utcnow().strftime("%Y%m%d%H%M%S")
    tag = f"{vm.instance_name}_VS_{stamp}"
    if session.scalar(select(VMSnapshot.id).where(VMSnapshot.name == tag)) is not None:
        tag = f"{tag}_{new_uuid()[:8]}"
    current = session.scalar(
        select(VMSnapshot.id).where(
            VMSnapshot.vm_id == vm.id, VMSnapshot.removed.is_(None), VMSnapshot.current.is_(True)
        )
    )
    size = sum(d.size for d in disks) + (vm.memory << 20 if memory else 0)
    snap = VMSnapshot(
        name=tag,
        display_name=display_name or tag,
        description=description,
        vm_id=vm.id,
        account_id=vm.account_id,
        domain_id=vm.domain_id,
        zone_id=vm.zone_id,
        type=DISK_AND_MEMORY if memory else DISK,
        state=State.ALLOCATED.value,
        current=False,
        parent_id=current,
        size=size,
    )
    session.add(snap)
    session.flush()
    return snap


def _host(session: Session, vm: VirtualMachine, disks: list[Volume]) -> tuple[Host, str | None]:
    """The host to ask, and the VM name to work through there (None: the disks offline)."""
    if vm.state == "Running" and vm.host_id is not None:
        host = session.get(Host, vm.host_id)
        if host is not None:
            return host, vm.instance_name
    root = next((d for d in disks if d.volume_type == "ROOT"), disks[0])
    pool = session.get(StoragePool, root.pool_id) if root.pool_id else None
    if pool is None:
        raise OperationFailed(f"Volume {root.name} is not on primary storage")
    return volume_ops.host_for_pool(session, pool, None), None


def _call(
    rt: Runtime, session: Session, snap: VMSnapshot, kind: type[VmSnapshotCommand], **extra: Any
) -> volume_ops.HostCall:
    vm = _vm(session, snap)
    disks = [d for d in _disks(session, vm) if d.path]
    if not disks:
        raise OperationFailed(f"VM {vm.name} has no volumes on primary storage")
    host, vm_name = _host(session, vm, disks)
    command = kind(
        request_id=new_uuid(),
        vm_name=vm_name,
        tag=snap.name,
        disk_paths=tuple(str(d.path) for d in disks),
        **extra,
    )
    return volume_ops.HostCall(host_ref(session, host), command, volume_ops.agent_wait(rt, session))


def _begin_take(rt: Runtime, uuid: str) -> volume_ops.HostCall | None:
    with rt.db.write() as session:
        snap = find(session, uuid)
        if snap.state not in (State.ALLOCATED, State.CREATING):
            return None
        vm = _vm(session, snap)
        memory = snap.type == DISK_AND_MEMORY
        if memory and vm.state != "Running":
            raise OperationFailed(f"VM {vm.name} is no longer running: its memory is gone")
        transition(session, snap, Event.TAKE)
        return _call(rt, session, snap, CreateVmSnapshot, memory=memory)


def take(rt: Runtime, uuid: str) -> None:
    """Take the snapshot on the host; any failure ends it in Error with the reason."""
    try:
        call = _begin_take(rt, uuid)
    except OperationFailed as err:
        fail(rt, uuid, err.text)
        raise
    if call is None:
        return
    ok, why, _ = volume_ops.send(rt, call)
    if not ok:
        fail(rt, uuid, why)
        raise OperationFailed(f"Failed to create VM snapshot: {why}")
    with rt.db.write() as session:
        snap = find(session, uuid)
        if snap.state != State.CREATING:
            return
        session.execute(
            update(VMSnapshot)
            .where(VMSnapshot.vm_id == snap.vm_id, VMSnapshot.current.is_(True))
            .values(current=False)
            .execution_options(synchronize_session=False)
        )
        transition(session, snap, Event.CREATED, current=True, error=None)
        usage.record_owned(
            session, usage.VMSNAPSHOT_CREATE, snap, TAG_TYPE, zone_id=snap.zone_id, size=snap.size
        )


def fail(rt: Runtime, uuid: str, reason: str) -> None:
    """Error with the reason; a half-taken snapshot is removed from the disks by delete."""
    with rt.db.write() as session:
        snap = session.scalar(select(VMSnapshot).where(VMSnapshot.uuid == uuid))
        if snap is None or snap.state not in (State.ALLOCATED, State.CREATING):
            return
        transition(session, snap, Event.FAILED, error=reason)


# --- revert ----------------------------------------------------------------------------------


def check_revert(session: Session, snap: VMSnapshot) -> VirtualMachine:
    """CloudStack's rules: Ready only; a disk snapshot needs the VM stopped, a memory one
    lets it run (the guest comes back as it was) or be stopped."""
    if snap.state != State.READY:
        raise ParamError(
            f"VM Snapshot reverting failed due to vm snapshot {snap.display_name} is not in "
            f"Ready state (it is {snap.state})"
        )
    vm = session.get(VirtualMachine, snap.vm_id)
    if vm is None or vm.removed is not None:
        raise ParamError("The VM of this VM snapshot no longer exists")
    allowed = ("Running", "Stopped") if snap.type == DISK_AND_MEMORY else ("Stopped",)
    if vm.state not in allowed:
        raise ParamError(
            f"VM Snapshot reverting failed due to vm {vm.name} is not in the state of "
            f"{' or '.join(allowed)} (it is {vm.state})"
        )
    _check_vm_quiet_except(session, vm, snap)
    return vm


def _check_vm_quiet_except(session: Session, vm: VirtualMachine, snap: VMSnapshot) -> None:
    other = _live(session, vm)
    if other is not None and other.id != snap.id:
        raise ParamError(
            f"There is other active vm snapshot tasks on the instance {vm.name}: "
            f"{other.display_name} is {other.state}, please try again later"
        )


def revert(rt: Runtime, uuid: str) -> None:
    """Put the VM's disks (and memory) back; the snapshot becomes the VM's current one."""
    with rt.db.write() as session:
        snap = find(session, uuid)
        if snap.state == State.READY:
            check_revert(session, snap)
        vm = _vm(session, snap)
        memory = snap.type == DISK_AND_MEMORY and vm.state == "Running"
        transition(session, snap, Event.REVERT)
        call = _call(rt, session, snap, RevertVmSnapshot, memory=memory)
    ok, why, _ = volume_ops.send(rt, call)
    with rt.db.write() as session:
        snap = find(session, uuid)
        if snap.state != State.REVERTING:
            return
        if not ok:
            transition(session, snap, Event.REVERT_FAILED)
        else:
            session.execute(
                update(VMSnapshot)
                .where(VMSnapshot.vm_id == snap.vm_id, VMSnapshot.current.is_(True))
                .values(current=False)
                .execution_options(synchronize_session=False)
            )
            transition(session, snap, Event.REVERTED, current=True, error=None)
    if not ok:
        raise OperationFailed(f"Failed to revert VM snapshot {snap.display_name}: {why}")


# --- delete ----------------------------------------------------------------------------------


def check_deletable(session: Session, snap: VMSnapshot) -> None:
    if snap.state not in (State.READY, State.ERROR):
        raise ParamError(
            f"VM snapshot {snap.display_name} is in state {snap.state}: it cannot be deleted now"
        )
    vm = session.get(VirtualMachine, snap.vm_id)
    if vm is not None and vm.removed is None:
        _check_vm_quiet_except(session, vm, snap)


def _undelete(session: Session, snap: VMSnapshot) -> None:
    """A delete that did not finish: back to what it was (a taken one has no ``error``)."""
    transition(session, snap, Event.KEPT if snap.error is None else Event.FAILED)


def delete(rt: Runtime, uuid: str) -> None:
    """Remove the tag from every disk, then the row; children move up to its parent."""
    with rt.db.write() as session:
        snap = find(session, uuid)
        transition(session, snap, Event.DELETE)
        was_taken = snap.error is None  # only a taken snapshot was metered
        vm = session.get(VirtualMachine, snap.vm_id)
        alive = vm is not None and vm.removed is None
        call = _call(rt, session, snap, DeleteVmSnapshot) if alive else None
    if call is not None:
        ok, why, _ = volume_ops.send(rt, call)
        if not ok:
            with rt.db.write() as session:
                snap = find(session, uuid)
                if snap.state == State.EXPUNGING:
                    _undelete(session, snap)
            raise OperationFailed(f"Failed to delete VM snapshot: {why}")
    with rt.db.write() as session:
        gone = session.scalar(select(VMSnapshot).where(VMSnapshot.uuid == uuid))
        if gone is None or gone.removed is not None:
            return
        _unlink(session, gone)
        if was_taken:
            usage.record_owned(
                session,
                usage.VMSNAPSHOT_DELETE,
                gone,
                TAG_TYPE,
                zone_id=gone.zone_id,
                size=gone.size,
            )


def _unlink(session: Session, snap: VMSnapshot) -> None:
    """Mark removed; its children hang from its parent, which becomes current if it was."""
    session.execute(
        update(VMSnapshot)
        .where(VMSnapshot.parent_id == snap.id, VMSnapshot.removed.is_(None))
        .values(parent_id=snap.parent_id)
        .execution_options(synchronize_session=False)
    )
    if snap.current and snap.parent_id is not None:
        session.execute(
            update(VMSnapshot)
            .where(VMSnapshot.id == snap.parent_id, VMSnapshot.removed.is_(None))
            .values(current=True)
            .execution_options(synchronize_session=False)
        )
    snap.removed = utcnow()
    snap.current = False
    session.execute(
        sql_delete(ResourceTag).where(
            ResourceTag.resource_type == TAG_TYPE, ResourceTag.resource_id == snap.id
        )
    )


def forget_vm(session: Session, vm: VirtualMachine) -> None:
    """The VM is being expunged: its snapshots go with its disks (as CloudStack deletes them),
    the taken ones closing their usage with VMSNAPSHOT.DELETE."""
    for snap in session.scalars(
        select(VMSnapshot).where(VMSnapshot.vm_id == vm.id, VMSnapshot.removed.is_(None))
    ):
        metered = snap.error is None and snap.state in (S.READY, S.REVERTING, S.EXPUNGING)
        if metered:
            usage.record_owned(
                session,
                usage.VMSNAPSHOT_DELETE,
                snap,
                TAG_TYPE,
                zone_id=snap.zone_id,
                size=snap.size,
            )
        session.execute(
            sql_delete(ResourceTag).where(
                ResourceTag.resource_type == TAG_TYPE, ResourceTag.resource_id == snap.id
            )
        )
        snap.removed, snap.current = utcnow(), False


def abandon(rt: Runtime, uuid: str) -> None:
    """A job the engine gave up on: Creating → Error, Reverting → Ready (with the reason),
    Expunging → what it was, so the snapshot can be deleted (or used) again."""
    why = "the VM snapshot job was abandoned: the servers running it stopped"
    with rt.db.write() as session:
        snap = session.scalar(select(VMSnapshot).where(VMSnapshot.uuid == uuid))
        if snap is None or snap.removed is not None:
            return
        if snap.state in (State.ALLOCATED, State.CREATING):
            transition(session, snap, Event.FAILED, error=why)
        elif snap.state == State.REVERTING:
            transition(session, snap, Event.REVERT_FAILED)
        elif snap.state == State.EXPUNGING:
            _undelete(session, snap)


# --- listing ---------------------------------------------------------------------------------


@dataclass
class VMSnapshotFilter:
    ids: Sequence[str] = ()
    vm: str | None = None
    name: str | None = None
    state: str | None = None
    keyword: str | None = None
    tags: Sequence[dict[str, str]] | None = None


def page_select(vf: VMSnapshotFilter, scope: ListScope) -> Select[Any]:
    s = VMSnapshot
    stmt = (
        select(s.id)
        .join(VirtualMachine, VirtualMachine.id == s.vm_id)
        .where(s.removed.is_(None), VirtualMachine.removed.is_(None))
    )
    if scope.domain_path is not None:
        stmt = stmt.join(Domain, Domain.id == s.domain_id)
        stmt = stmt.where(scope.where(s.account_id, Domain.path))
    elif scope.account_id is not None:
        stmt = stmt.where(s.account_id == scope.account_id)
    if vf.ids:
        stmt = stmt.where(s.uuid.in_(list(vf.ids)))
    if vf.vm is not None:
        stmt = stmt.where(VirtualMachine.uuid == vf.vm)
    if vf.name is not None:
        stmt = stmt.where(s.display_name == vf.name)
    if vf.state is not None:
        stmt = stmt.where(func.lower(s.state) == vf.state.lower())
    if vf.keyword:
        stmt = stmt.where(s.display_name.ilike(f"%{vf.keyword}%"))
    stmt = tags.filter_by_tags(stmt, TAG_TYPE, s.id, vf.tags)  # type: ignore[type-var]
    return stmt.order_by(s.id.desc())


def render(session: Session, ids: Sequence[int]) -> list[dict[str, Any]]:
    if not ids:
        return []
    rows = {
        r[0].id: r
        for r in session.execute(
            select(
                VMSnapshot,
                Account.name.label("account"),
                Domain.uuid.label("domainid"),
                Domain.name.label("domain"),
                Domain.path.label("domainpath"),
                Zone.uuid.label("zoneid"),
                Zone.name.label("zonename"),
                VirtualMachine.uuid.label("vmid"),
                VirtualMachine.name.label("vmname"),
                VirtualMachine.hypervisor_type.label("hypervisor"),
            )
            .join(Account, Account.id == VMSnapshot.account_id)
            .join(Domain, Domain.id == VMSnapshot.domain_id)
            .join(Zone, Zone.id == VMSnapshot.zone_id)
            .join(VirtualMachine, VirtualMachine.id == VMSnapshot.vm_id)
            .where(VMSnapshot.id.in_(list(ids)))
        )
    }
    parent_ids = [r[0].parent_id for r in rows.values() if r[0].parent_id is not None]
    parents = {
        p.id: p for p in session.scalars(select(VMSnapshot).where(VMSnapshot.id.in_(parent_ids)))
    }
    tag_map = tags.tags_for(session, TAG_TYPE, ids)
    out = []
    for snap_id in ids:
        row = rows.get(snap_id)
        if row is None:
            continue
        snap: VMSnapshot = row[0]
        item: dict[str, Any] = {
            "id": snap.uuid,
            "name": snap.name,
            "displayname": snap.display_name,
            "state": snap.state,
            "type": snap.type,
            "current": snap.current,
            "virtualmachineid": row.vmid,
            "virtualmachinename": row.vmname,
            "created": to_wire(snap.created),
            "account": row.account,
            "domainid": row.domainid,
            "domain": row.domain,
            "domainpath": row.domainpath,
            "zoneid": row.zoneid,
            "zonename": row.zonename,
            "hypervisor": row.hypervisor or "Simulator",
            "tags": tag_map.get(snap_id, []),
        }
        if snap.description:
            item["description"] = snap.description
        parent = parents.get(snap.parent_id) if snap.parent_id is not None else None
        if parent is not None:
            item["parent"] = parent.uuid
            item["parentName"] = parent.display_name
        out.append(item)
    return out


tags.register_taggable(TAG_TYPE, tags.owned(VMSnapshot))
