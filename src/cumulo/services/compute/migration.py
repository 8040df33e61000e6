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
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from cumulo.agentrpc.hub import CommandFailed, CommandTimeout, HostRef, HubError
from cumulo.agentrpc.messages import DiskSpec, GetVmStatus, MigrateVm, PowerState, VmSpec
from cumulo.common.ids import new_uuid
from cumulo.db.models_catalog import ServiceOffering
from cumulo.db.models_compute import VirtualMachine
from cumulo.db.models_infra import Host, StoragePool
from cumulo.services.compute import planner, vms
from cumulo.services.compute.lifecycle import OperationFailed, host_ref
from cumulo.services.compute.states import Event, IllegalState, State, transition
from cumulo.services.config import AGENT_WAIT
from cumulo.services.errors import InsufficientCapacity, ParamError
from cumulo.services.infra import capacity
from cumulo.services.network import nics as guest_nics
from cumulo.services.runtime import Runtime

log = logging.getLogger(__name__)
MIB = 1024 * 1024


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
    return found[0]


@dataclass(frozen=True)
class MigratePlan:
    vm_uuid: str
    source: HostRef
    target: HostRef
    spec: VmSpec
    timeout: float


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


def _begin(rt: Runtime, vm_uuid: str, target_uuid: str) -> MigratePlan | None:
    """Step 1 (or its resumption); None when the VM is already on the target."""
    with rt.db.write() as session:
        vm = vms.find(session, vm_uuid)
        target = session.scalar(select(Host).where(Host.uuid == target_uuid))
        if target is None:
            raise ParamError(f"Unable to find host with id {target_uuid}")
        if vm.state == State.RUNNING and vm.host_id == target.id:
            return None
        if vm.state == State.RUNNING:
            if not capacity.reserve(
                session, target.id, vm.cpu_number * vm.cpu_speed, vm.memory * MIB
            ):
                raise InsufficientCapacity(
                    f"Unable to migrate VM {vm.name}: host {target.name} no longer has room"
                )
            transition(session, vm, Event.MIGRATE)
        elif vm.state != State.MIGRATING:
            raise IllegalState(f"Unable to migrate the VM: it is in state {vm.state}")
        source = session.get(Host, vm.host_id) if vm.host_id else None
        assert source is not None, "a Running or Migrating VM has a host"
        return MigratePlan(
            vm_uuid=vm.uuid,
            source=host_ref(session, source),
            target=host_ref(session, target),
            spec=_spec(session, vm),
            timeout=float(rt.config.get(session, AGENT_WAIT)),
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


def _finish(rt: Runtime, plan: MigratePlan, moved: bool | None, why: str) -> None:
    """Step 3: the VM rests on one host, holding only that host's capacity."""
    with rt.db.write() as session:
        vm = vms.find(session, plan.vm_uuid)
        if vm.state != State.MIGRATING:
            return
        target = session.scalar(select(Host).where(Host.uuid == plan.target.uuid))
        assert target is not None
        size = (vm.cpu_number * vm.cpu_speed, vm.memory * MIB)
        if moved is None:  # it may run anywhere: Error on the source, as a host report will fix
            capacity.release(session, target.id, *size)
            transition(session, vm, Event.LOST, error=f"migration outcome unknown: {why}")
            vms.uncount_vm(session, vm)
            return
        if moved:
            if vm.host_id is not None:
                capacity.release(session, vm.host_id, *size)
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
            transition(session, vm, Event.MIGRATE_FAILED)


def migrate(rt: Runtime, vm_uuid: str, target_uuid: str) -> None:
    """Move a Running VM to ``target_uuid``; on failure it stays Running where it was."""
    plan = _begin(rt, vm_uuid, target_uuid)
    if plan is None:
        return
    moved, why = _send(rt, plan)
    _finish(rt, plan, moved, why)
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
    if _power(rt, plan.target, plan.spec.name, plan.timeout) == PowerState.RUNNING:
        _finish(rt, plan, True, "")
    elif _power(rt, plan.source, plan.spec.name, plan.timeout) == PowerState.RUNNING:
        _finish(rt, plan, False, "the migration job was abandoned")
    else:
        _finish(rt, plan, None, "the migration job was abandoned; neither host runs it")
