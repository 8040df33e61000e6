"""Volume operations that need a host: attach, detach, resize, migrate, and file clean-up.

Each is the same three steps as the VM lifecycle, each its own transaction, with the host
call in between and never inside one:

1. move the volume by its state machine and take what the operation needs (a pool's space,
   limit counts), re-checking what the request checked, since time passed;
2. send the agent command and wait for the answer;
3. move the volume to its resting state; on failure give back exactly what step 1 took, so
   the volume is where it was and the counts and pool allocation are unchanged.

Jobs may re-run after a crash: a volume found in the transient state of step 1 resumes at
step 2 (agent commands are idempotent), and ``settle`` puts one abandoned there back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from cumulo.agentrpc.hub import HostRef, HubError
from cumulo.agentrpc.messages import (
    AttachDisk,
    Command,
    CreateVolume,
    DeleteVolume,
    DetachDisk,
    DiskSpec,
    MigrateVolume,
    ResizeVolume,
)
from cumulo.common.ids import new_uuid
from cumulo.common.time import utcnow
from cumulo.db.models_catalog import DiskOffering
from cumulo.db.models_compute import VirtualMachine, Volume
from cumulo.db.models_infra import Host, ImageStore, StoragePool
from cumulo.db.models_storage import Snapshot
from cumulo.services import limits
from cumulo.services.compute import planner
from cumulo.services.compute.lifecycle import OperationFailed, host_ref
from cumulo.services.config import AGENT_WAIT
from cumulo.services.errors import InsufficientCapacity, ParamError
from cumulo.services.limits import ResourceType
from cumulo.services.runtime import Runtime
from cumulo.services.storage import volumes
from cumulo.services.storage.imagestore import backend_for
from cumulo.services.storage.volume_states import Event, IllegalState, State, transition
from cumulo.services.usage import events as usage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HostCall:
    """A command to send after step 1, to the host that can carry it out."""

    host: HostRef
    command: Command
    timeout: float


def agent_wait(rt: Runtime, session: Session) -> float:
    return float(rt.config.get(session, AGENT_WAIT))


def send(rt: Runtime, call: HostCall) -> tuple[bool, str, dict[str, object]]:
    try:
        answer = rt.hub.send(call.host, call.command, call.timeout)
        return True, "", dict(answer.result)
    except HubError as err:
        return False, str(err), {}


def _up_hosts(session: Session, pool: StoragePool) -> list[Host]:
    """Up routing hosts that reach the pool: its host, its cluster's, or the zone's."""
    stmt = select(Host).where(Host.removed.is_(None), Host.status == "Up", Host.type == "Routing")
    if pool.scope == "HOST":
        stmt = stmt.where(Host.id == pool.host_id)
    elif pool.scope == "CLUSTER":
        stmt = stmt.where(Host.cluster_id == pool.cluster_id)
    else:
        stmt = stmt.where(Host.zone_id == pool.zone_id)
    return list(session.scalars(stmt.order_by(Host.id).limit(8)))


def host_for_pool(session: Session, pool: StoragePool, vm: VirtualMachine | None) -> Host:
    """Where to run a command on a volume of ``pool``: the VM's host when it runs there."""
    if vm is not None and vm.state == "Running" and vm.host_id is not None:
        host = session.get(Host, vm.host_id)
        if host is not None:
            return host
    found = _up_hosts(session, pool)
    if not found:
        raise OperationFailed(f"No host that reaches storage pool {pool.name} is up")
    return found[0]


def _path(pool: StoragePool, volume: Volume) -> str:
    return f"{(pool.path or '/').rstrip('/')}/{volume.uuid}.qcow2"


def _storage_tags(session: Session, volume: Volume) -> tuple[str, ...]:
    offering = (
        session.get(DiskOffering, volume.disk_offering_id) if volume.disk_offering_id else None
    )
    text = offering.storage_tags if offering is not None else None
    return tuple(t.strip() for t in (text or "").split(",") if t.strip())


def _hosts_for_vm(session: Session, vm: VirtualMachine) -> list[Host]:
    """Hosts whose pools the VM can use: where it runs or ran, else where its root lives."""
    for host_id in (vm.host_id, vm.last_host_id):
        if host_id is not None:
            host = session.get(Host, host_id)
            if host is not None and host.removed is None:
                return [host]
    root = session.scalar(
        select(Volume).where(
            Volume.vm_id == vm.id, Volume.volume_type == "ROOT", Volume.removed.is_(None)
        )
    )
    pool = session.get(StoragePool, root.pool_id) if root and root.pool_id else None
    if pool is not None:
        return _up_hosts(session, pool)
    stmt = select(Host).where(
        Host.zone_id == vm.zone_id,
        Host.removed.is_(None),
        Host.status == "Up",
        Host.type == "Routing",
    )
    return list(session.scalars(stmt.order_by(Host.id).limit(planner.CANDIDATES)))


def _place(session: Session, volume: Volume, vm: VirtualMachine) -> tuple[Host, StoragePool]:
    """Reserve room for the volume on a pool a host of the VM reaches (atomic, as VMs)."""
    req = planner.Request(
        vm_id=vm.id,
        account_id=vm.account_id,
        zone_id=vm.zone_id,
        cpu_mhz=0,
        memory_bytes=0,
        disk_bytes=volume.size,
        storage_tags=_storage_tags(session, volume),
    )
    for host in _hosts_for_vm(session, vm):
        for pool in planner.pool_candidates(session, req, host):
            if planner.reserve_pool(session, pool.id, volume.size):
                return host, pool
    raise InsufficientCapacity(
        f"Unable to find a storage pool for volume {volume.name} that the VM's host reaches"
        + (f" with storage tags {','.join(req.storage_tags)}" if req.storage_tags else "")
    )


def _source_url(session: Session, volume: Volume) -> str | None:
    """Where the first create copies from: an uploaded file, a snapshot export, or nothing."""
    if volume.upload_path and volume.upload_store_id is not None:
        store = session.get(ImageStore, volume.upload_store_id)
        return f"{store.url.rstrip('/')}/{volume.upload_path}" if store is not None else None
    if volume.source_snapshot_id is None:
        return None
    snap = session.get(Snapshot, volume.source_snapshot_id)
    return export_url(session, snap) if snap is not None else None


def export_url(session: Session, snap: Snapshot) -> str | None:
    """Where a host reads a snapshot export: its store's URL and the file's path in it."""
    store = session.get(ImageStore, snap.store_id) if snap.store_id else None
    if store is None or not snap.install_path:
        return None
    return f"{store.url.rstrip('/')}/{snap.install_path}"


# --- attach ----------------------------------------------------------------------------------


def _begin_create(rt: Runtime, volume_uuid: str, vm_uuid: str) -> HostCall | None:
    """Step 1 of a first attach: a pool and Creating; None when the volume has a file."""
    with rt.db.write() as session:
        volume = volumes.find(session, volume_uuid)
        vm = _vm(session, vm_uuid)
        if volume.state == State.CREATING and volume.pool_id is not None:  # resumed
            pool = session.get(StoragePool, volume.pool_id)
            assert pool is not None
            host = host_for_pool(session, pool, vm)
        elif volume.state not in (State.ALLOCATED, State.UPLOADED):
            return None
        else:
            host, pool = _place(session, volume, vm)
            transition(session, volume, Event.CREATE, pool_id=pool.id, path=_path(pool, volume))
        command = CreateVolume(
            request_id=new_uuid(),
            volume_id=volume.uuid,
            path=volume.path or _path(pool, volume),
            size_bytes=volume.size,
            format=volume.format,
            source_url=_source_url(session, volume),
        )
        return HostCall(host_ref(session, host), command, agent_wait(rt, session))


def _end_create(rt: Runtime, volume_uuid: str, ok: bool, why: str) -> None:
    with rt.db.write() as session:
        volume = volumes.find(session, volume_uuid)
        if volume.state != State.CREATING:
            return
        if ok:
            drop_upload(session, volume)  # the copy on primary storage is the volume now
            transition(session, volume, Event.CREATED, error=None)
            return
        if volume.pool_id is not None:
            planner.release_pool(session, volume.pool_id, volume.size)
        event = Event.CREATE_FAILED_UPLOADED if volume.upload_path else Event.CREATE_FAILED
        transition(session, volume, event, pool_id=None, path=None, error=why)
    raise OperationFailed(f"Failed to create volume {volume_uuid} on primary storage: {why}")


def drop_upload(session: Session, volume: Volume) -> None:
    """Remove an uploaded volume's file from the image store (a missing file is fine)."""
    store = session.get(ImageStore, volume.upload_store_id) if volume.upload_store_id else None
    if store is not None and volume.upload_path:
        backend_for(store).delete(volume.upload_path)
    volume.upload_path, volume.upload_store_id = None, None


def _vm(session: Session, uuid: str) -> VirtualMachine:
    vm = session.scalar(
        select(VirtualMachine).where(VirtualMachine.uuid == uuid, VirtualMachine.removed.is_(None))
    )
    if vm is None:
        raise ParamError(f"Unable to find virtual machine with id {uuid}")
    return vm


def _begin_attach(
    rt: Runtime, volume_uuid: str, vm_uuid: str, device: int | None
) -> HostCall | None:
    """Step 1 of attaching: Attaching, with the device id taken; a host call if it runs."""
    with rt.db.write() as session:
        volume = volumes.find(session, volume_uuid)
        vm = _vm(session, vm_uuid)
        if volume.state == State.READY and volume.vm_id == vm.id and volume.attached:
            return None  # a re-run after the attach finished
        if volume.state != State.ATTACHING:
            if vm.state not in ("Running", "Stopped"):
                raise IllegalState(f"Unable to attach: the VM is in state {vm.state}")
            device_id = volumes.next_device_id(session, vm, device)
            transition(session, volume, Event.ATTACH, vm_id=vm.id, device_id=device_id)
        if vm.state != "Running" or vm.host_id is None:
            return None
        host = session.get(Host, vm.host_id)
        assert host is not None
        pool = session.get(StoragePool, volume.pool_id) if volume.pool_id else None
        if pool is not None and not _reaches(pool, host):
            raise ParamError(
                f"Volume {volume.name} is on storage pool {pool.name}, which the VM's host "
                "does not reach: migrate the volume first"
            )
        disk = DiskSpec(
            volume_id=volume.uuid,
            device_id=int(volume.device_id or 0),
            path=str(volume.path),
            size_bytes=volume.size,
            kind="DATADISK",
        )
        command = AttachDisk(request_id=new_uuid(), vm_name=vm.instance_name, disk=disk)
        return HostCall(host_ref(session, host), command, agent_wait(rt, session))


def _end_attach(rt: Runtime, volume_uuid: str, ok: bool, why: str, created_here: bool) -> None:
    with rt.db.write() as session:
        volume = volumes.find(session, volume_uuid)
        if volume.state != State.ATTACHING:
            return
        if ok:
            transition(session, volume, Event.ATTACHED, attached=utcnow(), error=None)
            return
        transition(session, volume, Event.ATTACH_FAILED, vm_id=None, device_id=None, error=why)
    if created_here:
        discard(rt, volume_uuid)
    raise OperationFailed(f"Failed to attach volume {volume_uuid}: {why}")


def attach(rt: Runtime, volume_uuid: str, vm_uuid: str, device: int | None = None) -> None:
    """Create the volume's file if it has none yet, then attach it (hot-plug if running)."""
    create = _begin_create(rt, volume_uuid, vm_uuid)
    if create is not None:
        ok, why, _ = send(rt, create)
        _end_create(rt, volume_uuid, ok, why)
    call = _begin_attach(rt, volume_uuid, vm_uuid, device)
    ok, why = True, ""
    if call is not None:
        ok, why, _ = send(rt, call)
    _end_attach(rt, volume_uuid, ok, why, created_here=create is not None)


def discard(rt: Runtime, volume_uuid: str) -> None:
    """Undo a first attach's create: the file removed, the pool's space given back."""
    with rt.db.read() as session:
        volume = volumes.find(session, volume_uuid)
        pool = session.get(StoragePool, volume.pool_id) if volume.pool_id else None
        if volume.state != State.READY or pool is None or volume.path is None:
            return
        host = host_for_pool(session, pool, None)
        call = HostCall(
            host_ref(session, host),
            DeleteVolume(request_id=new_uuid(), path=volume.path),
            agent_wait(rt, session),
        )
    ok, why, _ = send(rt, call)
    if not ok:
        log.warning("could not remove a discarded volume file", extra={"err": why})
        return  # it stays Ready on its pool: still a usable volume
    with rt.db.write() as session:
        volume = volumes.find(session, volume_uuid)
        if volume.state == State.READY and volume.vm_id is None and volume.pool_id is not None:
            planner.release_pool(session, volume.pool_id, volume.size)
            transition(session, volume, Event.DISCARD, pool_id=None, path=None)


# --- detach ----------------------------------------------------------------------------------


def _begin_detach(rt: Runtime, volume_uuid: str) -> HostCall | None:
    with rt.db.write() as session:
        volume = volumes.find(session, volume_uuid)
        if volume.vm_id is None and volume.state == State.READY:
            return None  # a re-run after the detach finished
        if volume.state != State.DETACHING:
            transition(session, volume, Event.DETACH)
        vm = session.get(VirtualMachine, volume.vm_id) if volume.vm_id else None
        if vm is None or vm.state != "Running" or vm.host_id is None:
            return None
        host = session.get(Host, vm.host_id)
        assert host is not None
        command = DetachDisk(
            request_id=new_uuid(),
            vm_name=vm.instance_name,
            volume_id=volume.uuid,
            path=str(volume.path),
        )
        return HostCall(host_ref(session, host), command, agent_wait(rt, session))


def detach(rt: Runtime, volume_uuid: str) -> None:
    call = _begin_detach(rt, volume_uuid)
    ok, why = True, ""
    if call is not None:
        ok, why, _ = send(rt, call)
    with rt.db.write() as session:
        volume = volumes.find(session, volume_uuid)
        if volume.state != State.DETACHING:
            return
        if ok:
            transition(session, volume, Event.DETACHED, vm_id=None, device_id=None, attached=None)
            return
        transition(session, volume, Event.DETACH_FAILED, error=why)
    raise OperationFailed(f"Failed to detach volume {volume_uuid}: {why}")


# --- resize ----------------------------------------------------------------------------------


def _begin_resize(rt: Runtime, volume_uuid: str, new_size: int, shrink_ok: bool) -> HostCall | None:
    """Counts and pool space for growth taken; an Allocated volume is resized right here."""
    with rt.db.write() as session:
        volume = volumes.find(session, volume_uuid)
        if volume.state == State.READY and volume.size == new_size:
            return None  # a re-run after the resize finished
        delta = new_size - volume.size
        if volume.state == State.ALLOCATED:
            count_delta(rt, session, volume, delta)
            volume.size = new_size
            return None
        pool = session.get(StoragePool, volume.pool_id) if volume.pool_id else None
        if pool is None:
            raise IllegalState(f"Volume {volume.name} is in state {volume.state}")
        if volume.state != State.RESIZING:
            count_delta(rt, session, volume, delta)
            if delta > 0 and not planner.reserve_pool(session, pool.id, delta):
                raise InsufficientCapacity(f"Storage pool {pool.name} has no room to grow it")
            transition(session, volume, Event.RESIZE)
        vm = session.get(VirtualMachine, volume.vm_id) if volume.vm_id else None
        running = vm is not None and vm.state == "Running"
        command = ResizeVolume(
            request_id=new_uuid(),
            path=str(volume.path),
            current_bytes=volume.size,
            new_bytes=new_size,
            shrink_ok=shrink_ok,
            vm_name=vm.instance_name if running and vm is not None else None,
        )
        host = host_for_pool(session, pool, vm)
        return HostCall(host_ref(session, host), command, agent_wait(rt, session))


def count_delta(rt: Runtime, session: Session, volume: Volume, delta: int) -> None:
    if delta > 0:
        limits.check_and_increment_many(
            session, volume.account_id, {ResourceType.primary_storage: delta}, config=rt.config
        )
    elif delta < 0:
        limits.decrement_many(session, volume.account_id, {ResourceType.primary_storage: -delta})


def resize(rt: Runtime, volume_uuid: str, new_size: int, shrink_ok: bool) -> None:
    call = _begin_resize(rt, volume_uuid, new_size, shrink_ok)
    if call is None:
        return
    ok, why, _ = send(rt, call)
    with rt.db.write() as session:
        volume = volumes.find(session, volume_uuid)
        if volume.state != State.RESIZING:
            return
        delta = new_size - volume.size
        if ok:
            if delta < 0 and volume.pool_id is not None:
                planner.release_pool(session, volume.pool_id, -delta)
            transition(session, volume, Event.RESIZED, size=new_size, error=None)
            usage.record_volume(session, usage.VOLUME_RESIZE, volume)
            return
        count_delta(rt, session, volume, -delta)
        if delta > 0 and volume.pool_id is not None:
            planner.release_pool(session, volume.pool_id, delta)
        transition(session, volume, Event.RESIZE_FAILED, error=why)
    raise OperationFailed(f"Failed to resize volume {volume_uuid}: {why}")


# --- migrate ---------------------------------------------------------------------------------


def _reaches(pool: StoragePool, host: Host) -> bool:
    if pool.scope == "HOST":
        return pool.host_id == host.id
    if pool.scope == "CLUSTER":
        return pool.cluster_id == host.cluster_id
    return pool.zone_id == host.zone_id


def _begin_migrate(rt: Runtime, volume_uuid: str, pool_uuid: str) -> HostCall | None:
    with rt.db.write() as session:
        volume = volumes.find(session, volume_uuid)
        target = session.scalar(select(StoragePool).where(StoragePool.uuid == pool_uuid))
        if target is None:
            raise ParamError(f"Unable to find storage pool with id {pool_uuid}")
        if volume.pool_id == target.id and volume.state == State.READY:
            return None  # a re-run after it moved
        source = session.get(StoragePool, volume.pool_id) if volume.pool_id else None
        if source is None:
            raise IllegalState(f"Volume {volume.name} is not on any storage pool yet")
        hosts = [h for h in _up_hosts(session, source) if _reaches(target, h)]
        if not hosts:
            raise ParamError(f"No host reaches both storage pools {source.name} and {target.name}")
        if volume.state != State.MIGRATING:
            if not planner.reserve_pool(session, target.id, volume.size):
                raise InsufficientCapacity(f"Storage pool {target.name} has no room for it")
            transition(session, volume, Event.MIGRATE)
        command = MigrateVolume(
            request_id=new_uuid(), path=str(volume.path), target_path=_path(target, volume)
        )
        return HostCall(host_ref(session, hosts[0]), command, agent_wait(rt, session))


def migrate(rt: Runtime, volume_uuid: str, pool_uuid: str) -> None:
    """Move a volume that no running VM uses to another pool (offline copy on one host)."""
    call = _begin_migrate(rt, volume_uuid, pool_uuid)
    if call is None:
        return
    ok, why, result = send(rt, call)
    with rt.db.write() as session:
        volume = volumes.find(session, volume_uuid)
        target = session.scalar(select(StoragePool).where(StoragePool.uuid == pool_uuid))
        if volume.state != State.MIGRATING or target is None:
            return
        if ok:
            if volume.pool_id is not None:
                planner.release_pool(session, volume.pool_id, volume.size)
            path = str(result.get("path") or _path(target, volume))
            transition(session, volume, Event.MIGRATED, pool_id=target.id, path=path, error=None)
            return
        planner.release_pool(session, target.id, volume.size)
        transition(session, volume, Event.MIGRATE_FAILED, error=why)
    raise OperationFailed(f"Failed to migrate volume {volume_uuid}: {why}")


# --- clean-up of deleted volumes, and abandoned jobs -------------------------------------------


def expunge_destroyed(rt: Runtime, batch: int = 50) -> int:
    """Remove the files of deleted volumes (state Destroy); run by every server's scavenger."""
    with rt.db.read() as session:
        due = list(
            session.scalars(
                select(Volume.uuid)
                .where(Volume.state.in_((State.DESTROY, State.EXPUNGING)))
                .limit(batch)
            )
        )
    done = 0
    for uuid in due:
        try:
            done += _expunge_one(rt, uuid)
        except IllegalState:
            continue  # another server took it
    return done


def _expunge_one(rt: Runtime, uuid: str) -> int:
    with rt.db.write() as session:
        volume = volumes.find(session, uuid, include_removed=True)
        transition(session, volume, Event.EXPUNGE)
        pool = session.get(StoragePool, volume.pool_id) if volume.pool_id else None
        call = None
        if pool is not None and volume.path:
            hosts = _up_hosts(session, pool)
            if hosts:
                call = HostCall(
                    host_ref(session, hosts[0]),
                    DeleteVolume(request_id=new_uuid(), path=volume.path),
                    agent_wait(rt, session),
                )
    if call is not None:
        ok, why, _ = send(rt, call)
        if not ok:
            log.warning("volume file not removed; retried later", extra={"err": why})
            return 0
    with rt.db.write() as session:
        volume = volumes.find(session, uuid, include_removed=True)
        if volume.state == State.EXPUNGING:
            transition(session, volume, Event.EXPUNGED)
    return 1


_SETTLE = {
    State.CREATING: Event.CREATE_FAILED,
    State.ATTACHING: Event.ATTACH_FAILED,
    State.DETACHING: Event.DETACH_FAILED,
    State.RESIZING: Event.RESIZE_FAILED,
    State.MIGRATING: Event.MIGRATE_FAILED,
}


def settle(rt: Runtime, volume_uuid: str) -> None:
    """Put a volume whose job was abandoned back in a resting state, with the reason.

    A create gives its pool space back and an attach its device id; a resize or migrate that
    was under way keeps what its first step took until ``updateResourceCount`` (the host may
    or may not have finished it, and the volume's error says the job was abandoned).
    """
    with rt.db.write() as session:
        volume = session.scalar(select(Volume).where(Volume.uuid == volume_uuid))
        if volume is None or State(volume.state) not in _SETTLE:
            return
        event = _SETTLE[State(volume.state)]
        if event == Event.CREATE_FAILED and volume.upload_path:
            event = Event.CREATE_FAILED_UPLOADED
        changes: dict[str, object] = {"error": "the job was abandoned"}
        if event in (Event.CREATE_FAILED, Event.CREATE_FAILED_UPLOADED) and volume.pool_id:
            planner.release_pool(session, volume.pool_id, volume.size)
            changes.update(pool_id=None, path=None)
        if event == Event.ATTACH_FAILED:
            changes.update(vm_id=None, device_id=None)
        transition(session, volume, event, **changes)
