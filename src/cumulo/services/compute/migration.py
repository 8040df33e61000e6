"""Moving a Running VM to another host: migrateVirtualMachine.

The steps, each in its own transaction with the host call between them:

1. reserve the VM's size on the target (``capacity.reserve``, atomic, as at placement) and
   move the VM Running → Migrating, together: a Migrating VM always holds both hosts;
2. send ``MigrateVm`` to the source host (it hands the VM to the target);
3. on success release the source and move Migrating → Running on the target; on failure
   release the target and move Migrating → Running on the source (the VM never stopped).

When the source's answer is lost, the target is asked first: a VM running there has moved.
The target is chosen when the request is accepted (the admin's ``hostid``, or the planner's
pick among other hosts that fit, honouring affinity rules), so a job resumed after a crash
knows it, finds the VM Migrating with both reservations held, and carries on from step 2.

**KVM hosts with local storage: stop-and-copy.** A real host cannot hand a running VM to a
peer (hosts have no route to each other and the server never dials them), and its disks live
on the source's own HOST-scoped pool. So the server orchestrates a cold move, each step a host
call that is safe to repeat, between two transactions:

1. as above, plus the disks' size reserved on the target's local pool;
2. the VM is shut down on the source (ACPI, then a hard stop after ``STOP_WAIT_S``);
3. the source *stages* each disk, flattened, in the zone's image store (temporary name, then
   renamed: a staged file is always whole), ``migrations/<vm>/<volume>.qcow2``;
4. the target *fetches* each staged disk onto its pool (again temporary name, then rename)
   and starts the VM from those copies with the ordinary ``StartVm``;
5. only then are the source's QEMU runtime files and disks removed and the staged copies
   deleted; then one transaction points the volume rows at the target's pool, moves the pool
   and host capacity and makes the VM Running on the target.

A failure before the target runs removes the target's partial files (``DestroyVm`` with the
copied disk paths) and the staged copies, starts the VM again on the source and makes it
Running there. A job re-run after a server crash asks the target first: if the VM runs
there, the move is finished (cleanup included); otherwise it repeats steps 2-4, each of which
finds its earlier work done. The VM is stopped from step 2 to the end of step 4.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from cumulo.agentrpc.hub import CommandFailed, CommandTimeout, HostRef, HubError
from cumulo.agentrpc.messages import (
    Command,
    DestroyVm,
    DiskSpec,
    FetchDisk,
    GetVmStatus,
    MigrateVm,
    PowerState,
    StageDisk,
    StartVm,
    StopVm,
    VmSpec,
)
from cumulo.common.ids import new_uuid
from cumulo.db.models_catalog import ServiceOffering
from cumulo.db.models_compute import VirtualMachine, Volume
from cumulo.db.models_images import Template
from cumulo.db.models_infra import Host, ImageStore, StoragePool
from cumulo.services.compute import planner, vms
from cumulo.services.compute.lifecycle import OperationFailed, host_ref
from cumulo.services.compute.states import Event, IllegalState, State, transition
from cumulo.services.config import AGENT_WAIT
from cumulo.services.errors import InsufficientCapacity, ParamError
from cumulo.services.infra import capacity
from cumulo.services.network import nics as guest_nics
from cumulo.services.network import routers as network_routers
from cumulo.services.runtime import Runtime
from cumulo.services.storage import imagestore
from cumulo.services.storage.snapshots import zone_store

log = logging.getLogger(__name__)
MIB = 1024 * 1024
STOP_WAIT_S = 30.0  # ACPI shutdown on the source before QEMU is stopped hard
STAGING = "migrations"  # the image-store folder of staged disks, one folder per VM


def _request(session: Session, vm: VirtualMachine) -> planner.Request:
    """The VM's needs as the planner sees them; the root volume's pool pins its cluster."""
    offering = session.get(ServiceOffering, vm.service_offering_id)
    root = vms.root_volume(session, vm)
    pool = session.get(StoragePool, root.pool_id) if root and root.pool_id else None
    tags = (offering.host_tags or "") if offering else ""
    return planner.Request(
        vm_id=vm.id,
        account_id=vm.account_id,
        zone_id=vm.zone_id,
        cpu_mhz=vm.cpu_number * vm.cpu_speed,
        memory_bytes=vm.memory * MIB,
        hypervisor=vm.hypervisor_type,
        host_tags=tuple(t for t in tags.split(",") if t.strip()),
        cluster_id=pool.cluster_id if pool is not None and pool.scope == "CLUSTER" else None,
        avoid={vm.host_id} if vm.host_id is not None else set(),
        algorithm="firstfitleastconsumed",
    )


def choose_target(session: Session, vm: VirtualMachine, host_uuid: str | None) -> Host:
    """The host to move to: the admin's choice, checked, or the planner's best other host."""
    if vm.state != State.RUNNING or vm.host_id is None:
        raise ParamError(
            f"Unable to migrate VM {vm.name}: it is in state {vm.state}; only a Running VM "
            "can be migrated"
        )
    req = _request(session, vm)
    if host_uuid is not None:
        host = session.scalar(select(Host).where(Host.uuid == host_uuid, Host.removed.is_(None)))
        if host is None or host.type != "Routing":
            raise ParamError(f"Unable to find host with id {host_uuid}")
        if host.id == vm.host_id:
            raise ParamError(
                f"Cannot migrate VM {vm.name}: the destination host is the host it runs on"
            )
        if host.zone_id != vm.zone_id or (
            (host.hypervisor_type or "").lower() != (vm.hypervisor_type or "").lower()
        ):
            raise ParamError(
                f"Cannot migrate VM {vm.name} to host {host.name}: another zone or hypervisor"
            )
        req.host_id = host.id
    found = planner.candidates(session, req)
    if not found:
        where = f"host {host_uuid}" if host_uuid else "any other host"
        raise InsufficientCapacity(
            f"Unable to migrate VM {vm.name}: {where} cannot take it (capacity, state, "
            "storage reach or an affinity rule)"
        )
    if not copies_disks(session, vm):
        return found[0]
    zone_store(session, vm.zone_id)  # the disks are staged there: refuse early without one
    need = sum(v.size for v in _local_volumes(session, vm))
    for host in found:
        pool = _target_pool(session, host)
        if (
            pool is not None
            and pool.allocated_bytes + need <= pool.capacity_bytes * pool.overcommit
        ):
            return host
    where = f"host {found[0].name}" if host_uuid else "any other host"
    raise InsufficientCapacity(
        f"Unable to migrate VM {vm.name}: the local storage of {where} has no room for its "
        f"{need} bytes of disks"
    )


def copies_disks(session: Session, vm: VirtualMachine) -> bool:
    """A KVM VM with a disk on host-local storage moves by stop-and-copy."""
    if (vm.hypervisor_type or "").lower() != "kvm":
        return False
    return bool(_local_volumes(session, vm))


def _volumes(session: Session, vm: VirtualMachine) -> list[Volume]:
    """The VM's disks that have a file, root first."""
    return list(
        session.scalars(
            select(Volume)
            .where(Volume.vm_id == vm.id, Volume.removed.is_(None), Volume.path.is_not(None))
            .order_by(Volume.volume_type.desc(), Volume.device_id, Volume.id)  # ROOT first
        )
    )


def _local_volumes(session: Session, vm: VirtualMachine) -> list[Volume]:
    local = []
    for volume in _volumes(session, vm):
        pool = session.get(StoragePool, volume.pool_id) if volume.pool_id else None
        if pool is not None and pool.scope == "HOST":
            local.append(volume)
    return local


def _target_pool(session: Session, host: Host) -> StoragePool | None:
    """The target's local pool for the copies: its lowest-id Up one. Deterministic, so a
    resumed job names the pool its first run reserved."""
    return session.scalar(
        select(StoragePool)
        .where(
            StoragePool.scope == "HOST",
            StoragePool.host_id == host.id,
            StoragePool.removed.is_(None),
            StoragePool.status == "Up",
        )
        .order_by(StoragePool.id)
        .limit(1)
    )


@dataclass(frozen=True)
class DiskMove:
    """One disk of a stop-and-copy move: where it is, where it is staged, where it goes."""

    volume_uuid: str
    source_pool_id: int
    size: int
    source_path: str
    install_path: str  # in the image store
    target_path: str


@dataclass(frozen=True)
class CopyPlan:
    store_uuid: str
    store_url: str
    target_pool_id: int
    disks: tuple[DiskMove, ...]
    source_spec: VmSpec  # the VM as it runs on the source (to restart it there on failure)
    target_spec: VmSpec  # the same VM on the copied disks


@dataclass(frozen=True)
class MigratePlan:
    vm_uuid: str
    source: HostRef
    target: HostRef
    spec: VmSpec
    timeout: float
    copy: CopyPlan | None = field(default=None)


def _spec(session: Session, vm: VirtualMachine) -> VmSpec:
    root = vms.root_volume(session, vm)
    disks: tuple[DiskSpec, ...] = ()
    if root is not None and root.path:
        disks = (DiskSpec(root.uuid, 0, root.path, root.size),)
    return VmSpec(
        name=vm.instance_name,
        uuid=vm.uuid,
        vcpus=vm.cpu_number,
        cpu_mhz=vm.cpu_speed,
        memory_mib=vm.memory,
        disks=disks,
        nics=guest_nics.specs(session, vm),
        hostname=vm.name,
        ha=vm.ha_enabled,
    )


def _full_spec(session: Session, vm: VirtualMachine, paths: dict[str, str]) -> VmSpec:
    """The VM as a start builds it (every disk, boot details, NICs), disks at ``paths``.

    No template path: the disks exist already (on the source, or copied to the target)."""
    disks = tuple(
        DiskSpec(
            volume_id=v.uuid,
            device_id=0 if v.volume_type == "ROOT" else int(v.device_id or 0),
            path=paths.get(v.uuid, str(v.path)),
            size_bytes=v.size,
            template_path=None,
            kind=v.volume_type,
        )
        for v in _volumes(session, vm)
    )
    template = session.get(Template, vm.template_id)
    boot = {k: str(v) for k, v in (template.details or {}).items()} if template else {}
    return VmSpec(
        name=vm.instance_name,
        uuid=vm.uuid,
        vcpus=vm.cpu_number,
        cpu_mhz=vm.cpu_speed,
        memory_mib=vm.memory,
        disks=disks,
        boot=boot,
        hostname=vm.name,
        ha=vm.ha_enabled,
        nics=guest_nics.specs(session, vm),
    )


def _copy_plan(session: Session, vm: VirtualMachine, pool: StoragePool) -> CopyPlan:
    store = zone_store(session, vm.zone_id)
    moves = []
    for volume in _local_volumes(session, vm):
        assert volume.pool_id is not None and volume.path is not None
        moves.append(
            DiskMove(
                volume_uuid=volume.uuid,
                source_pool_id=volume.pool_id,
                size=volume.size,
                source_path=volume.path,
                install_path=f"{STAGING}/{vm.uuid}/{volume.uuid}.qcow2",
                target_path=f"{(pool.path or '/').rstrip('/')}/{volume.uuid}.qcow2",
            )
        )
    return CopyPlan(
        store_uuid=store.uuid,
        store_url=store.url,
        target_pool_id=pool.id,
        disks=tuple(moves),
        source_spec=_full_spec(session, vm, {}),
        target_spec=_full_spec(session, vm, {m.volume_uuid: m.target_path for m in moves}),
    )


def _begin(rt: Runtime, vm_uuid: str, target_uuid: str) -> MigratePlan | None:
    """Step 1 (or its resumption); None when the VM is already on the target."""
    with rt.db.write() as session:
        vm = vms.find(session, vm_uuid)
        target = session.scalar(select(Host).where(Host.uuid == target_uuid))
        if target is None:
            raise ParamError(f"Unable to find host with id {target_uuid}")
        if vm.state == State.RUNNING and vm.host_id == target.id:
            return None
        copying = copies_disks(session, vm)
        pool: StoragePool | None = None
        if vm.state == State.RUNNING:
            if not capacity.reserve(
                session, target.id, vm.cpu_number * vm.cpu_speed, vm.memory * MIB
            ):
                raise InsufficientCapacity(
                    f"Unable to migrate VM {vm.name}: host {target.name} no longer has room"
                )
            if copying:
                need = sum(v.size for v in _local_volumes(session, vm))
                pool = _target_pool(session, target)
                if pool is None or not planner.reserve_pool(session, pool.id, need):
                    raise InsufficientCapacity(  # rolls the host reservation back too
                        f"Unable to migrate VM {vm.name}: the local storage of host "
                        f"{target.name} has no room for {need} bytes of disks"
                    )
            transition(session, vm, Event.MIGRATE)
        elif vm.state != State.MIGRATING:
            raise IllegalState(f"Unable to migrate the VM: it is in state {vm.state}")
        elif copying:
            pool = _target_pool(session, target)
            if pool is None:
                raise OperationFailed(f"host {target.name} has no local storage pool any more")
        source = session.get(Host, vm.host_id) if vm.host_id else None
        assert source is not None, "a Running or Migrating VM has a host"
        return MigratePlan(
            vm_uuid=vm.uuid,
            source=host_ref(session, source),
            target=host_ref(session, target),
            spec=_spec(session, vm),
            timeout=float(rt.config.get(session, AGENT_WAIT)),
            copy=_copy_plan(session, vm, pool) if copying and pool is not None else None,
        )


def _power(rt: Runtime, host: HostRef, name: str, timeout: float) -> PowerState | None:
    try:
        answer = rt.hub.send(host, GetVmStatus(request_id=new_uuid(), name=name), timeout)
    except HubError:
        return None
    power = answer.result.get("power")
    return PowerState(power) if power else None


def _send(rt: Runtime, plan: MigratePlan) -> tuple[bool | None, str]:
    """Step 2: (moved?, why not); moved is None when neither host can say where it runs."""
    command = MigrateVm(request_id=new_uuid(), spec=plan.spec, target_host=plan.target.uuid)
    try:
        rt.hub.send(plan.source, command, plan.timeout)
        return True, ""
    except CommandFailed as err:
        return False, str(err)
    except HubError as err:
        if _power(rt, plan.target, plan.spec.name, plan.timeout) == PowerState.RUNNING:
            return True, ""
        if _power(rt, plan.source, plan.spec.name, plan.timeout) == PowerState.RUNNING:
            return False, str(err)
        return (None if isinstance(err, CommandTimeout) else False), str(err)


# --- stop-and-copy (KVM, local storage) ---------------------------------------------------


def _call(rt: Runtime, host: HostRef, command: Command, timeout: float) -> str:
    """Send; '' when the host carried it out, else why not (never raises)."""
    try:
        rt.hub.send(host, command, timeout)
        return ""
    except HubError as err:
        return f"{command.kind} on host {host.name}: {err}"


def _stop_and_copy(rt: Runtime, plan: MigratePlan, copy: CopyPlan) -> tuple[bool | None, str]:
    """Steps 2-5: (moved?, why not). None: it runs nowhere and could not be restarted."""
    name = copy.source_spec.name
    if _power(rt, plan.target, name, plan.timeout) == PowerState.RUNNING:
        _cleanup(rt, plan, copy, plan.source, [m.source_path for m in copy.disks])
        return True, ""  # a re-run job: the target started it before the crash
    began = time.monotonic()
    why = _call(
        rt,
        plan.source,
        StopVm(request_id=new_uuid(), name=name, timeout_s=STOP_WAIT_S),
        plan.timeout,
    )
    for move in copy.disks if not why else ():
        stage = StageDisk(new_uuid(), name, move.source_path, copy.store_url, move.install_path)
        why = why or _call(rt, plan.source, stage, plan.timeout)
    for move in copy.disks if not why else ():
        fetch = FetchDisk(new_uuid(), f"{copy.store_url.rstrip('/')}/{move.install_path}",
                          move.target_path)  # fmt: skip
        why = why or _call(rt, plan.target, fetch, plan.timeout)
    if not why:
        why = _segments_on(rt, plan, plan.target)
    if not why:
        why = _call(rt, plan.target, StartVm(new_uuid(), copy.target_spec), plan.timeout)
        if why and _power(rt, plan.target, name, plan.timeout) == PowerState.RUNNING:
            why = ""  # the answer was lost, the start was not
    if not why:
        log.info(
            "VM migrated by stop-and-copy",
            extra={"vm": plan.vm_uuid, "stopped_s": round(time.monotonic() - began, 2)},
        )
        _cleanup(rt, plan, copy, plan.source, [m.source_path for m in copy.disks])
        return True, ""
    log.warning("stop-and-copy failed; back to the source", extra={"vm": plan.vm_uuid, "why": why})
    return _roll_back(rt, plan, copy, why)


def _segments_on(rt: Runtime, plan: MigratePlan, host: HostRef) -> str:
    """The VM's guest networks (bridge, VXLAN, its router's DHCP entry) on ``host`` before it
    boots there, as a start does; the reason when a host could not make them."""
    try:
        network_routers.before_vm_start(rt, plan.vm_uuid, host.uuid)
    except HubError as err:
        return f"its networks could not be set up on host {host.name}: {err}"
    return ""


def _roll_back(rt: Runtime, plan: MigratePlan, copy: CopyPlan, why: str) -> tuple[bool | None, str]:
    """The target never ran it: its partial files and the staged copies go, the VM starts
    again on the source (a no-op when it still runs there)."""
    _cleanup(rt, plan, copy, plan.target, [m.target_path for m in copy.disks])
    restarted = _call(rt, plan.source, StartVm(new_uuid(), copy.source_spec), plan.timeout)
    if restarted and _power(rt, plan.source, copy.source_spec.name, plan.timeout) != (
        PowerState.RUNNING
    ):
        return None, f"{why}; restarting it on host {plan.source.name} failed too: {restarted}"
    return False, why


def _cleanup(
    rt: Runtime, plan: MigratePlan, copy: CopyPlan, host: HostRef, paths: list[str]
) -> None:
    """Remove the VM's runtime files and ``paths`` from ``host``, and the staged copies.

    Best effort: a leftover is logged (an operator can remove it), never a reason to leave
    the VM half-moved."""
    why = _call(rt, host, DestroyVm(new_uuid(), copy.source_spec.name, tuple(paths)), plan.timeout)
    if why:
        log.warning("migration left files on a host", extra={"vm": plan.vm_uuid, "why": why})
    with rt.db.read() as session:
        store = session.scalar(select(ImageStore).where(ImageStore.uuid == copy.store_uuid))
    for move in copy.disks:
        try:
            if store is not None:
                imagestore.backend_for(store).delete(move.install_path)
        except (OSError, ValueError, imagestore.StoreUnavailable) as err:
            log.warning(
                "a staged disk was not deleted", extra={"vm": plan.vm_uuid, "err": str(err)}
            )


def _move_volumes(session: Session, copy: CopyPlan) -> None:
    """The volume rows follow their files to the target's pool; the pools' usage too."""
    for move in copy.disks:
        volume = session.scalar(select(Volume).where(Volume.uuid == move.volume_uuid))
        if volume is None:
            continue
        planner.release_pool(session, move.source_pool_id, move.size)
        volume.pool_id = copy.target_pool_id
        volume.path = move.target_path


def _finish(rt: Runtime, plan: MigratePlan, moved: bool | None, why: str) -> None:
    """Step 3: the VM rests on one host, holding only that host's capacity."""
    with rt.db.write() as session:
        vm = vms.find(session, plan.vm_uuid)
        if vm.state != State.MIGRATING:
            return
        target = session.scalar(select(Host).where(Host.uuid == plan.target.uuid))
        assert target is not None
        size = (vm.cpu_number * vm.cpu_speed, vm.memory * MIB)
        copied = sum(m.size for m in plan.copy.disks) if plan.copy is not None else 0
        if moved is None:  # it may run anywhere: Error on the source, as a host report will fix
            capacity.release(session, target.id, *size)
            if plan.copy is not None:
                planner.release_pool(session, plan.copy.target_pool_id, copied)
            transition(session, vm, Event.LOST, error=f"migration outcome unknown: {why}")
            vms.uncount_vm(session, vm)
            return
        if moved:
            if vm.host_id is not None:
                capacity.release(session, vm.host_id, *size)
            if plan.copy is not None:
                _move_volumes(session, plan.copy)
            transition(
                session,
                vm,
                Event.MIGRATED,
                host_id=target.id,
                last_host_id=target.id,
                pod_id=target.pod_id,
            )
        else:
            capacity.release(session, target.id, *size)
            if plan.copy is not None:
                planner.release_pool(session, plan.copy.target_pool_id, copied)
            transition(session, vm, Event.MIGRATE_FAILED)


def migrate(rt: Runtime, vm_uuid: str, target_uuid: str) -> None:
    """Move a Running VM to ``target_uuid``; on failure it stays Running where it was."""
    plan = _begin(rt, vm_uuid, target_uuid)
    if plan is None:
        return
    if plan.copy is not None:
        moved, why = _stop_and_copy(rt, plan, plan.copy)
    else:
        moved, why = _send(rt, plan)
    _finish(rt, plan, moved, why)
    if moved:
        network_routers.after_vm_change(rt, vm_uuid)  # the source may release its segments
    if moved is None:
        raise OperationFailed(f"Unable to migrate VM {vm_uuid}: {why}; its state is unknown")
    if not moved:
        log.info("migration failed; the VM stays on its host", extra={"vm": vm_uuid})
        raise OperationFailed(
            f"Unable to migrate VM {vm_uuid} to host {plan.target.name}: {why}; "
            f"it keeps running on host {plan.source.name}"
        )


def abandon(rt: Runtime, vm_uuid: str, target_uuid: str) -> None:
    """A migration whose job was abandoned: finish it the way the hosts say it went."""
    with rt.db.read() as session:
        vm = vms.find(session, vm_uuid)
        if vm.state != State.MIGRATING:
            return
    plan = _begin(rt, vm_uuid, target_uuid)
    if plan is None:
        return
    name = plan.spec.name
    copy = plan.copy
    if _power(rt, plan.target, name, plan.timeout) == PowerState.RUNNING:
        if copy is not None:
            _cleanup(rt, plan, copy, plan.source, [m.source_path for m in copy.disks])
        _finish(rt, plan, True, "")
    elif copy is not None:  # stopped or still on the source: it goes back there
        _finish(rt, plan, *_roll_back(rt, plan, copy, "the migration job was abandoned"))
    elif _power(rt, plan.source, name, plan.timeout) == PowerState.RUNNING:
        _finish(rt, plan, False, "the migration job was abandoned")
    else:
        _finish(rt, plan, None, "the migration job was abandoned; neither host runs it")
