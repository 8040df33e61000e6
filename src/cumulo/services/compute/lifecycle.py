"""Starting, stopping, rebooting, destroying and expunging VMs: the orchestration.

Every operation is a short series of steps, each its own transaction, with the host call in
between and never inside one (a slow host must not hold the database):

1. move the VM by the state machine and reserve what it needs (host capacity, a pool);
2. send the command to the host through the hub and wait for the answer;
3. move the VM to its resting state, releasing what the failure path gives back.

A job that runs again after its server died finds the VM in the transient state of step 1
and resumes from it: the host commands are idempotent (a resent start of a running VM is a
no-op), so resuming is always safe. When a host's answer is lost (timeout), the VM's real
state is asked before anything is released: a VM is never marked stopped while it may run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from cumulo.agentrpc.hub import CommandFailed, CommandTimeout, HostRef, HostUnreachable, HubError
from cumulo.agentrpc.messages import (
    Command,
    DestroyVm,
    DiskSpec,
    GetVmStatus,
    PowerState,
    PrepareTemplate,
    RebootVm,
    StartVm,
    StopVm,
    VmSpec,
)
from cumulo.common.ids import new_uuid
from cumulo.common.time import utcnow
from cumulo.db.models_affinity import AffinityGroupVmMap
from cumulo.db.models_catalog import ServiceOffering
from cumulo.db.models_compute import TemplatePoolRef, VirtualMachine, Volume
from cumulo.db.models_images import Template
from cumulo.db.models_infra import Cluster, Host, Pod, StoragePool, Zone
from cumulo.db.models_tags import ResourceTag
from cumulo.services import limits
from cumulo.services.compute import planner, vms
from cumulo.services.compute.states import Event, IllegalState, State, transition
from cumulo.services.config import (
    AGENT_WAIT,
    EXPUNGE_DELAY,
    START_RETRY,
    VM_ALLOCATION_ALGORITHM,
)
from cumulo.services.errors import CloudError, InsufficientCapacity, ParamError
from cumulo.services.infra import capacity
from cumulo.services.limits import ResourceType
from cumulo.services.network import nics as guest_nics
from cumulo.services.network import routers as network_routers
from cumulo.services.runtime import Runtime
from cumulo.services.storage import links
from cumulo.services.usage import events as usage

log = logging.getLogger(__name__)
MIB = 1024 * 1024
OFF = (PowerState.STOPPED, PowerState.MISSING)  # what a host says of a VM that does not run


class OperationFailed(CloudError):
    """The host could not do it; the VM is back in a resting state (530)."""


# --- helpers ----------------------------------------------------------------------------


# Statements on the start path are built once and run with bound values: building them (and
# their cache keys) on every deploy cost more than running them.
_HOST_PLACE = (
    select(Zone.uuid, Pod.uuid, Cluster.uuid)
    .select_from(Zone)
    .outerjoin(Pod, Pod.id == bindparam("p_pod"))
    .outerjoin(Cluster, Cluster.id == bindparam("p_cluster"))
    .where(Zone.id == bindparam("p_zone"))
)
_CACHED_TEMPLATE = select(TemplatePoolRef.install_path).where(
    TemplatePoolRef.template_id == bindparam("p_template"),
    TemplatePoolRef.pool_id == bindparam("p_pool"),
    TemplatePoolRef.host_id == bindparam("p_host"),
)
_DATA_DISKS = (
    select(Volume)
    .where(
        Volume.vm_id == bindparam("p_vm"),
        Volume.volume_type == "DATADISK",
        Volume.removed.is_(None),
        Volume.path.is_not(None),
    )
    .order_by(Volume.device_id)
)
_HOST_ID_BY_UUID = select(Host.id).where(Host.uuid == bindparam("p_uuid"))


def host_ref(session: Session, host: Host) -> HostRef:
    """Who a command is for, with its zone, pod and cluster uuids (one query)."""
    row = session.execute(
        _HOST_PLACE, {"p_pod": host.pod_id, "p_cluster": host.cluster_id, "p_zone": host.zone_id}
    ).first()
    zone, pod, cluster = row if row is not None else ("", "", "")
    return HostRef(
        uuid=host.uuid,
        name=host.name,
        hypervisor=host.hypervisor_type,
        zone=zone or "",
        pod=pod or "",
        cluster=cluster or "",
        address=host.private_ip or "",
    )


def _wait(rt: Runtime, session: Session) -> float:
    return float(rt.config.get(session, AGENT_WAIT))


def _send(rt: Runtime, host: HostRef, command: Command, timeout: float) -> PowerState | None:
    """Send and return the power state the host reports, if its answer carries one."""
    answer = rt.hub.send(host, command, timeout)
    power = answer.result.get("power")
    return PowerState(power) if power else None


def _ask_power(rt: Runtime, host: HostRef, name: str, timeout: float) -> PowerState | None:
    """The VM's power state on the host, or None when the host cannot be asked."""
    try:
        return _send(rt, host, GetVmStatus(request_id=new_uuid(), name=name), timeout)
    except HubError as err:
        log.warning(
            "cannot ask a host for a VM's state", extra={"host": host.name, "err": str(err)}
        )
        return None


def _release_host(session: Session, vm: VirtualMachine) -> None:
    if vm.host_id is not None:
        capacity.release(session, vm.host_id, vm.cpu_number * vm.cpu_speed, vm.memory * MIB)


# --- start ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StartPlan:
    vm_uuid: str
    host: HostRef
    spec: VmSpec
    template: PrepareTemplate | None  # the template still to cache on the host's pool
    root_volume_id: int | None
    pool_id: int | None
    timeout: float


def _request(
    rt: Runtime, session: Session, vm: VirtualMachine, root: Volume | None
) -> planner.Request:
    offering = session.get(ServiceOffering, vm.service_offering_id)
    assert offering is not None
    pool = session.get(StoragePool, root.pool_id) if root and root.pool_id else None
    return planner.Request(
        vm_id=vm.id,
        account_id=vm.account_id,
        zone_id=vm.zone_id,
        cpu_mhz=vm.cpu_number * vm.cpu_speed,
        memory_bytes=vm.memory * MIB,
        disk_bytes=root.size if root is not None and root.pool_id is None else 0,
        hypervisor=vm.hypervisor_type,
        host_tags=tuple(t for t in (offering.host_tags or "").split(",") if t.strip()),
        storage_tags=tuple(t for t in (offering.storage_tags or "").split(",") if t.strip()),
        cluster_id=pool.cluster_id if pool is not None and pool.scope == "CLUSTER" else None,
        host_id=pool.host_id if pool is not None and pool.scope == "HOST" else None,
        prefer_host_id=vm.last_host_id,
        algorithm=str(rt.config.get(session, VM_ALLOCATION_ALGORITHM)),
    )


def _volume_path(pool: StoragePool, volume: Volume) -> str:
    return f"{(pool.path or '/').rstrip('/')}/{volume.uuid}.qcow2"


def _data_disks(session: Session, vm: VirtualMachine) -> list[DiskSpec]:
    """The attached data volumes that have a file, so the host plugs them in at start."""
    return [
        DiskSpec(v.uuid, int(v.device_id or 0), v.path, v.size, None, "DATADISK")
        for v in session.scalars(_DATA_DISKS, {"p_vm": vm.id})
        if v.path
    ]


def _build_plan(
    rt: Runtime, session: Session, vm: VirtualMachine, host: Host, root: Volume | None
) -> StartPlan:
    disks: list[DiskSpec] = []
    prepare = None
    pool = session.get(StoragePool, root.pool_id) if root and root.pool_id else None
    template = session.get(Template, vm.template_id)
    if root is not None and pool is not None:
        cached = session.scalar(
            _CACHED_TEMPLATE,
            {"p_template": vm.template_id, "p_pool": pool.id, "p_host": host.id},
        )
        if root.state == "Allocated" and cached is None and template is not None:
            prepare = PrepareTemplate(
                request_id=new_uuid(),
                template_id=template.uuid,
                source_url=links.template_link(rt.box, template.uuid),
                checksum=template.checksum or "",
                pool_path=pool.path or "/",
                format=template.format,
            )
        disks.append(
            DiskSpec(
                volume_id=root.uuid,
                device_id=0,
                path=root.path or _volume_path(pool, root),
                size_bytes=root.size,
                template_path=cached,
            )
        )
    disks.extend(_data_disks(session, vm))
    from cumulo.services.compute import iso  # imports volume_ops, which imports this module

    disks.extend(iso.start_disks(session, vm))  # an ISO attached while stopped (attachIso)
    boot = {k: str(v) for k, v in (template.details or {}).items()} if template else {}
    spec = VmSpec(
        name=vm.instance_name,
        uuid=vm.uuid,
        vcpus=vm.cpu_number,
        cpu_mhz=vm.cpu_speed,
        memory_mib=vm.memory,
        disks=tuple(disks),
        boot=boot,
        hostname=vm.name,
        ha=vm.ha_enabled,
        nics=guest_nics.specs(session, vm),
    )
    return StartPlan(
        vm_uuid=vm.uuid,
        host=host_ref(session, host),
        spec=spec,
        template=prepare,
        root_volume_id=root.id if root else None,
        pool_id=pool.id if pool else None,
        timeout=_wait(rt, session),
    )


def _plan_start(
    rt: Runtime, vm_uuid: str, host_uuid: str | None, avoid: set[int]
) -> StartPlan | None:
    """Reserve a host and move the VM to Starting; None when it already runs."""
    with rt.db.write() as session:
        vm = vms.find(session, vm_uuid)
        if vm.state == State.RUNNING:
            return None
        if vm.state == State.STARTING and vm.host_id is not None:  # resumed after a crash
            host = session.get(Host, vm.host_id)
            assert host is not None
            return _build_plan(rt, session, vm, host, vms.root_volume(session, vm))
        if vm.state != State.STOPPED:
            raise IllegalState(f"Unable to start the VM: it is in state {vm.state}")
        guest_nics.prepare_start(session, vm, rt.config)  # networks implemented first
        root = vms.root_volume(session, vm)
        req = _request(rt, session, vm, root)
        req.avoid |= avoid
        if host_uuid is not None:
            host = session.scalar(
                select(Host).where(Host.uuid == host_uuid, Host.removed.is_(None))
            )
            if host is None:
                raise ParamError(f"Unable to find host with id {host_uuid}")
            if req.host_id is not None and req.host_id != host.id:
                raise ParamError(
                    "The VM's root disk is on another host's local storage: it can only start "
                    "there (migrate the volume first)"
                )
            req.host_id = host.id
        placement = planner.place(session, req)
        if placement is None:
            raise InsufficientCapacity(
                f'Unable to create a deployment for VM instance {{"id":"{vm.uuid}", '
                f'"name":"{vm.instance_name}"}}: no host has enough capacity'
            )
        host = placement.host
        if root is not None and placement.pool is not None:
            root.pool_id = placement.pool.id
            root.path = _volume_path(placement.pool, root)
        transition(session, vm, Event.START, host_id=host.id, pod_id=host.pod_id)
        session.flush()
        return _build_plan(rt, session, vm, host, root)


def _with_template(plan: StartPlan, path: str) -> StartPlan:
    disks = tuple(
        DiskSpec(d.volume_id, d.device_id, d.path, d.size_bytes, path, d.kind)
        if d.device_id == 0
        else d
        for d in plan.spec.disks
    )
    spec = VmSpec(**{**plan.spec.__dict__, "disks": disks})
    return StartPlan(**{**plan.__dict__, "spec": spec})


def _run_start(rt: Runtime, plan: StartPlan) -> tuple[bool, str, StartPlan]:
    """Cache the template and start the VM; (started, why not, plan with the template path)."""
    try:
        if plan.template is not None:
            answer = rt.hub.send(plan.host, plan.template, plan.timeout)
            plan = _with_template(plan, str(answer.result.get("path", "")))
        network_routers.before_vm_start(rt, plan.vm_uuid, plan.host.uuid)  # issue 7 hook
        _send(rt, plan.host, StartVm(request_id=new_uuid(), spec=plan.spec), plan.timeout)
        return True, "", plan
    except CommandTimeout as err:
        power = _ask_power(rt, plan.host, plan.spec.name, plan.timeout)
        if power == PowerState.RUNNING and plan.template is None:
            return True, "", plan
        return False, str(err), plan
    except (CommandFailed, HostUnreachable) as err:
        return False, str(err), plan


def _cleanup_failed_start(rt: Runtime, plan: StartPlan) -> bool:
    """Make sure nothing runs after a failed start; False when the host cannot confirm it."""
    try:
        _send(
            rt,
            plan.host,
            StopVm(request_id=new_uuid(), name=plan.spec.name, forced=True),
            plan.timeout,
        )
        return True
    except HubError:  # failed, lost or unreachable: only the host's own word counts
        return _ask_power(rt, plan.host, plan.spec.name, plan.timeout) in OFF


def _finish_start(rt: Runtime, plan: StartPlan, template_path: str | None) -> None:
    with rt.db.write() as session:
        vm = vms.find(session, plan.vm_uuid)
        if vm.state == State.RUNNING:
            return
        transition(session, vm, Event.STARTED, last_host_id=vm.host_id, error=None)
        if plan.root_volume_id is not None:
            root = session.get(Volume, plan.root_volume_id)
            if root is not None and root.state == "Allocated":
                root.state = "Ready"
                root.attached = utcnow()
        if plan.template is not None and plan.pool_id is not None and template_path:
            host_id = session.scalar(_HOST_ID_BY_UUID, {"p_uuid": plan.host.uuid})
            if host_id is not None and vm.template_id is not None:
                session.add(
                    TemplatePoolRef(
                        template_id=vm.template_id,
                        pool_id=plan.pool_id,
                        host_id=host_id,
                        install_path=template_path,
                    )
                )


def _undo_start(rt: Runtime, plan: StartPlan, reason: str, *, confirmed: bool) -> None:
    """Back to Stopped with everything given back, or Error when the host could not confirm."""
    with rt.db.write() as session:
        vm = vms.find(session, plan.vm_uuid)
        if vm.state != State.STARTING:
            return
        if not confirmed:  # it may run: keep the host's capacity until a host report settles it
            transition(session, vm, Event.LOST, error=f"start outcome unknown: {reason}")
            vms.uncount_vm(session, vm)
            return
        _release_host(session, vm)
        root = vms.root_volume(session, vm)
        if root is not None and root.state == "Allocated" and root.pool_id is not None:
            planner.release_pool(session, root.pool_id, root.size)
            root.pool_id = None
            root.path = None
        transition(session, vm, Event.START_FAILED, host_id=None, error=reason)


def start(rt: Runtime, vm_uuid: str, *, host_uuid: str | None = None) -> None:
    """Start a Stopped VM (or resume a start in progress); try other hosts on failure."""
    with rt.db.read() as session:
        retries = int(rt.config.get(session, START_RETRY))
    avoid: set[int] = set()
    last_error = ""
    for _ in range(retries + 1):
        try:
            plan = _plan_start(rt, vm_uuid, host_uuid, avoid)
        except InsufficientCapacity:
            if not last_error:
                raise
            break  # hosts were tried and failed: their error says more than "no capacity"
        if plan is None:
            return
        started, why, plan = _run_start(rt, plan)
        if started:
            path = plan.spec.disks[0].template_path if plan.spec.disks else None
            _finish_start(rt, plan, path)
            return
        confirmed = _cleanup_failed_start(rt, plan)
        _undo_start(rt, plan, why, confirmed=confirmed)
        if not confirmed:
            raise OperationFailed(f"Unable to start VM {vm_uuid}: {why}; its state is unknown")
        last_error = why
        with rt.db.read() as session:
            host = session.scalar(_HOST_ID_BY_UUID, {"p_uuid": plan.host.uuid})
        if host is not None:
            avoid.add(host)
        if host_uuid is not None:
            break
    raise OperationFailed(
        f"Unable to start VM {vm_uuid}: {last_error}"
        + ("; no other host could take it" if not host_uuid else "")
    )


def fail_deploy(rt: Runtime, vm_uuid: str, reason: str) -> None:
    """A deploy that could not start: the VM goes to Error and gives everything back."""
    with rt.db.write() as session:
        vm = vms.find(session, vm_uuid)
        if vm.state not in (State.STOPPED, State.STARTING):
            return
        if vm.state == State.STARTING:
            _release_host(session, vm)
        vms.uncount_vm(session, vm)
        _remove_volumes(session, vm)
        transition(session, vm, Event.DEPLOY_FAILED, host_id=None, error=reason)


# --- stop and reboot --------------------------------------------------------------------


def _begin_stop(rt: Runtime, vm_uuid: str) -> tuple[HostRef, str, float] | None:
    with rt.db.write() as session:
        vm = vms.find(session, vm_uuid)
        if vm.state == State.STOPPED:
            return None
        if vm.state == State.RUNNING:
            transition(session, vm, Event.STOP)
        elif vm.state != State.STOPPING:
            raise IllegalState(f"Unable to stop the VM: it is in state {vm.state}")
        host = session.get(Host, vm.host_id) if vm.host_id else None
        if host is None:  # nothing runs anywhere
            transition(session, vm, Event.STOPPED, host_id=None)
            return None
        return host_ref(session, host), vm.instance_name, _wait(rt, session)


def _end_stop(rt: Runtime, vm_uuid: str, stopped: bool, why: str = "") -> None:
    with rt.db.write() as session:
        vm = vms.find(session, vm_uuid)
        if vm.state != State.STOPPING:
            return
        if stopped:
            _release_host(session, vm)
            transition(session, vm, Event.STOPPED, host_id=None, error=None)
        else:
            transition(session, vm, Event.STOP_FAILED)
    if stopped:
        network_routers.after_vm_change(rt, vm_uuid)  # issue 7 hook: never raises
    if not stopped:
        raise OperationFailed(f"Failed to stop VM {vm_uuid}: {why}")


def stop(rt: Runtime, vm_uuid: str, *, forced: bool = False) -> None:
    """Stop a Running VM; forced stops it at once and, if the host is gone, anyway."""
    begun = _begin_stop(rt, vm_uuid)
    if begun is None:
        return
    host, name, timeout = begun
    command = StopVm(request_id=new_uuid(), name=name, forced=forced, timeout_s=min(timeout, 60))
    try:
        _send(rt, host, command, timeout)
        _end_stop(rt, vm_uuid, True)
    except CommandFailed as err:
        _end_stop(rt, vm_uuid, False, str(err))
    except CommandTimeout as err:
        power = _ask_power(rt, host, name, timeout)
        if power in OFF:
            _end_stop(rt, vm_uuid, True)
        else:
            _end_stop(rt, vm_uuid, forced and power is None, str(err))
    except HostUnreachable as err:
        _end_stop(rt, vm_uuid, forced, f"{err} (a forced stop marks it stopped anyway)")


def reboot(rt: Runtime, vm_uuid: str) -> None:
    with rt.db.read() as session:
        vm = vms.find(session, vm_uuid)
        if vm.state != State.RUNNING:
            raise IllegalState(f"Unable to reboot the VM: it is in state {vm.state}")
        host = session.get(Host, vm.host_id) if vm.host_id else None
        if host is None:
            raise OperationFailed(f"VM {vm_uuid} has no host to reboot it on")
        ref, name, timeout = host_ref(session, host), vm.instance_name, _wait(rt, session)
    try:
        _send(rt, ref, RebootVm(request_id=new_uuid(), name=name), timeout)
    except HubError as err:
        raise OperationFailed(f"Failed to reboot VM {vm_uuid}: {err}") from None


# --- destroy, recover, expunge ----------------------------------------------------------


def destroy(rt: Runtime, vm_uuid: str, *, expunge: bool = False) -> None:
    """Stop if needed, then Destroyed (counts given back); expunge at once when asked."""
    with rt.db.read() as session:
        state = vms.find(session, vm_uuid).state
    if state in (State.RUNNING, State.STOPPING):
        stop(rt, vm_uuid)
    with rt.db.write() as session:
        vm = vms.find(session, vm_uuid)
        if vm.state in (State.STOPPED, State.ERROR):
            was = vm.state
            transition(session, vm, Event.DESTROY)
            if was == State.STOPPED:
                vms.uncount_vm(session, vm)
        elif vm.state not in (State.DESTROYED, State.EXPUNGING):
            raise IllegalState(f"Unable to destroy the VM: it is in state {vm.state}")
    if expunge:
        expunge_vm(rt, vm_uuid)


def recover(session: Session, vm: VirtualMachine, rt: Runtime) -> None:
    """Destroyed → Stopped, taking its counts back (532 when the owner has no room now)."""
    transition(session, vm, Event.RECOVER)
    vms.count_vm(session, vm, rt.config)


def _remove_volumes(session: Session, vm: VirtualMachine) -> list[str]:
    """Remove the VM's root volume (given back to the pool and the limits); its path.

    Data volumes outlive the VM, as in CloudStack: they are detached and stay the owner's.
    """
    paths = []
    now = utcnow()
    for data in session.scalars(
        select(Volume).where(
            Volume.vm_id == vm.id, Volume.volume_type != "ROOT", Volume.removed.is_(None)
        )
    ):
        data.vm_id, data.device_id, data.attached = None, None, None
    for volume in session.scalars(
        select(Volume).where(
            Volume.vm_id == vm.id, Volume.volume_type == "ROOT", Volume.removed.is_(None)
        )
    ):
        if volume.pool_id is not None:
            planner.release_pool(session, volume.pool_id, volume.size)
        if volume.path and volume.state != "Allocated":
            paths.append(volume.path)
        usage.record_volume(session, usage.VOLUME_DELETE, volume)
        volume.state = "Expunged"
        volume.removed = now
        limits.decrement_many(
            session,
            volume.account_id,
            {ResourceType.volume: 1, ResourceType.primary_storage: volume.size},
        )
    return paths


def expunge_vm(rt: Runtime, vm_uuid: str) -> None:
    """Remove the VM's disks from its host and every trace of it; resumable after a crash."""
    with rt.db.write() as session:
        vm = vms.find(session, vm_uuid, include_removed=True)
        if vm.state == State.EXPUNGED:
            return
        transition(session, vm, Event.EXPUNGE)
        host = session.get(Host, vm.last_host_id) if vm.last_host_id else None
        ref = host_ref(session, host) if host is not None else None
        name, timeout = vm.instance_name, _wait(rt, session)
        disks = tuple(
            v.path
            for v in session.scalars(select(Volume).where(Volume.vm_id == vm.id))
            if v.path and v.state != "Allocated" and v.removed is None and v.volume_type == "ROOT"
        )
    if ref is not None:
        try:
            rt.hub.send(ref, DestroyVm(request_id=new_uuid(), name=name, disk_paths=disks), timeout)
        except HubError as err:
            log.warning(
                "expunge could not clean the host; its files stay until the host is back",
                extra={"vm": vm_uuid, "host": ref.name, "err": str(err)},
            )
    with rt.db.write() as session:
        vm = vms.find(session, vm_uuid, include_removed=True)
        if vm.state != State.EXPUNGING:
            return
        _remove_volumes(session, vm)
        from cumulo.services.storage import vm_snapshots  # it imports this module too

        vm_snapshots.forget_vm(session, vm)  # its VM snapshots went with its disks
        now = utcnow()
        guest_nics.release(session, vm)  # NICs, their addresses, rules naming the VM
        session.execute(delete(AffinityGroupVmMap).where(AffinityGroupVmMap.vm_id == vm.id))
        session.execute(
            delete(ResourceTag).where(
                ResourceTag.resource_type == "UserVm", ResourceTag.resource_id == vm.id
            )
        )
        transition(session, vm, Event.EXPUNGED, removed=now, host_id=None)
    network_routers.after_vm_change(rt, vm_uuid)  # issue 7 hook: never raises


# --- settling a VM whose job was abandoned ------------------------------------------------


def settle(rt: Runtime, vm_uuid: str) -> None:
    """Put a VM left Starting, Stopping or Migrating where its host says it is.

    Called when a job is abandoned (its servers kept dying): nothing may stay in progress.
    A host that cannot be asked leaves the VM in Error (it may still run).
    """
    with rt.db.read() as session:
        vm = vms.find(session, vm_uuid, include_removed=True)
        if vm.state not in (State.STARTING, State.STOPPING, State.MIGRATING):
            return
        host = session.get(Host, vm.host_id) if vm.host_id else None
        ref = host_ref(session, host) if host is not None else None
        name, timeout = vm.instance_name, _wait(rt, session)
    power = _ask_power(rt, ref, name, timeout) if ref is not None else PowerState.MISSING
    with rt.db.write() as session:
        vm = vms.find(session, vm_uuid, include_removed=True)
        state = vm.state
        if power == PowerState.RUNNING:
            event = {
                State.STARTING: Event.STARTED,
                State.STOPPING: Event.STOP_FAILED,
                State.MIGRATING: Event.MIGRATE_FAILED,
            }.get(State(state))
            if event is not None:
                transition(session, vm, event, last_host_id=vm.host_id)
        elif power in OFF and state in (
            State.STARTING,
            State.STOPPING,
        ):
            _release_host(session, vm)
            event = Event.START_FAILED if state == State.STARTING else Event.STOPPED
            transition(session, vm, event, host_id=None)
        elif state in (State.STARTING, State.STOPPING, State.MIGRATING):
            transition(session, vm, Event.LOST, error="the job was abandoned; host state unknown")
            vms.uncount_vm(session, vm)


def expunge_due(rt: Runtime, batch: int = 100) -> int:
    """Expunge VMs destroyed (or failed) longer than expunge.delay ago; how many were done.

    Run by every server's scavenger; the state machine's guarded transition lets only one
    server take each VM.
    """
    with rt.db.read() as session:
        delay = int(rt.config.get(session, EXPUNGE_DELAY))
        cutoff = utcnow() - timedelta(seconds=delay)
        due = list(
            session.scalars(
                select(VirtualMachine.uuid)
                .where(
                    VirtualMachine.state.in_((State.DESTROYED, State.ERROR)),
                    VirtualMachine.state_changed <= cutoff,
                    VirtualMachine.removed.is_(None),
                )
                .limit(batch)
            )
        )
    done = 0
    for uuid in due:
        try:
            expunge_vm(rt, uuid)
            done += 1
        except IllegalState:
            continue  # another server took it, or it was recovered meanwhile
    return done
