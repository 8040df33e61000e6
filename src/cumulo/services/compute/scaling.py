"""Changing a VM's size: changeServiceForVirtualMachine (stopped) and scaleVirtualMachine.

A VM's size lives on the VM row (``cpu_number``/``cpu_speed``/``memory``), and its owner's
CPU and memory counts and its host's capacity were taken by that size. A new size therefore
moves each of them by the difference only, all in one transaction:

- counts: ``check_and_increment`` for growth (532 when over a limit, nothing changed),
  ``decrement`` for shrinkage;
- capacity, for a Running VM: ``capacity.reserve`` of the growth on its host (atomic, as at
  placement: two scale-ups racing for a host's last slot cannot both win; 533 otherwise).

A Running VM may only grow, and only when it is dynamically scalable (CloudStack refuses to
shrink a live guest). The simulator needs nothing from the host to grow a VM, so no agent
command is sent; the new size is what the next start gives the host.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from cumulo.db.models_catalog import ServiceOffering
from cumulo.db.models_compute import VirtualMachine
from cumulo.services import limits
from cumulo.services.access import Caller
from cumulo.services.catalog import offerings
from cumulo.services.compute import vms
from cumulo.services.compute.states import State
from cumulo.services.config import ConfigStore
from cumulo.services.errors import InsufficientCapacity, ParamError, PermissionDenied
from cumulo.services.infra import capacity
from cumulo.services.limits import ResourceType
from cumulo.services.usage import events as usage

MIB = 1024 * 1024


@dataclass(frozen=True)
class Size:
    """The size a VM is asked to take: its offering and the resulting CPU and memory."""

    offering_id: int
    cpu_number: int
    cpu_speed: int
    memory: int

    @property
    def cpu_mhz(self) -> int:
        return self.cpu_number * self.cpu_speed


def _offering(session: Session, caller: Caller, vm_zone: int, uuid: str) -> ServiceOffering:
    offering = offerings.find_service_offering(session, uuid)
    if offering.state != "Active" or offering.removed is not None:
        raise ParamError(f"Unable to find service offering by id {uuid}")
    if not offerings.check_visible(session, caller, "service", offering.id):
        raise PermissionDenied(f"Service offering {uuid} is not available to this account")
    if not session.scalar(select(offerings.in_zone("service", offering.id, vm_zone))):
        raise ParamError(f"Service offering {offering.name} is not available in the VM's zone")
    return offering


def requested_size(
    session: Session,
    caller: Caller,
    vm_zone: int,
    offering_uuid: str,
    details: dict[str, str],
) -> Size:
    """The offering and size asked for; custom offerings take cpuNumber/cpuSpeed/memory."""
    offering = _offering(session, caller, vm_zone, offering_uuid)
    req = vms.DeployRequest(zone_uuid="", offering_uuid="", template_uuid="", details=details)
    cpus, speed, memory = vms.size_of(offering, req)
    return Size(offering.id, cpus, speed, memory)


def _unchanged(vm_size: Size, size: Size) -> bool:
    return vm_size == size


def current(vm: VirtualMachine) -> Size:
    return Size(vm.service_offering_id, vm.cpu_number, vm.cpu_speed, vm.memory)


def check_change(vm: VirtualMachine, size: Size, *, live: bool) -> None:
    """431 when the request cannot apply to this VM as it stands."""
    if _unchanged(current(vm), size):
        raise ParamError(
            f"Not scaling VM {vm.name}: it already has the requested service offering and size"
        )
    if not live:
        if vm.state != State.STOPPED:
            raise ParamError(
                f"Unable to upgrade VM {vm.name}: it is in state {vm.state}; stop it first"
            )
        return
    if vm.state == State.STOPPED:
        return
    if vm.state != State.RUNNING:
        raise ParamError(f"Unable to scale VM {vm.name}: it is in state {vm.state}")
    if not vm.dynamically_scalable:
        raise ParamError(
            f"Unable to scale VM {vm.name} while it runs: dynamic scaling is not enabled for it "
            "(its template and offering must allow it); stop it first"
        )
    old = current(vm)
    if (
        size.cpu_number < old.cpu_number
        or size.cpu_speed < old.cpu_speed
        or (size.memory < old.memory)
    ):
        raise ParamError(
            "Only scaling up a running VM is supported: the new offering "
            f"(cpu={size.cpu_number}, speed={size.cpu_speed}, memory={size.memory}) must have no "
            f"value below the current one (cpu={old.cpu_number}, speed={old.cpu_speed}, "
            f"memory={old.memory})"
        )


def lock(session: Session, vm: VirtualMachine) -> None:
    """Hold the VM's row for the rest of the transaction (PostgreSQL; SQLite serialises
    writers anyway): a concurrent stop or migration must not release capacity by the old size
    while the new one is being taken."""
    session.refresh(vm, with_for_update=True)


def _move_count(
    session: Session, account_id: int, rtype: ResourceType, delta: int, config: ConfigStore
) -> None:
    if delta > 0:
        limits.check_and_increment(session, account_id, rtype, delta, config=config)
    elif delta < 0:
        limits.decrement(session, account_id, rtype, -delta)


def apply(session: Session, vm: VirtualMachine, size: Size, config: ConfigStore) -> bool:
    """Give the VM its new size, moving counts (and host capacity when it runs) by the
    difference; False when it already has it (a re-run job). Raises 532/533 with nothing
    changed: the caller's transaction rolls back whatever was taken before the refusal."""
    old = current(vm)
    if _unchanged(old, size):
        return False
    counted = vm.state in vms.COUNTED_STATES
    if counted:
        _move_count(
            session, vm.account_id, ResourceType.cpu, size.cpu_number - old.cpu_number, config
        )
        _move_count(session, vm.account_id, ResourceType.memory, size.memory - old.memory, config)
    if vm.state == State.RUNNING and vm.host_id is not None:
        _grow_on_host(vm, session, size.cpu_mhz - old.cpu_mhz, (size.memory - old.memory) * MIB)
    offering = session.get(ServiceOffering, size.offering_id)
    vm.service_offering_id = size.offering_id
    vm.cpu_number, vm.cpu_speed, vm.memory = size.cpu_number, size.cpu_speed, size.memory
    if offering is not None:  # HA comes with the offering, as CloudStack's upgradeVmDb does
        vm.ha_enabled = offering.offer_ha
    session.flush()
    usage.record_vm(session, usage.VM_UPGRADE, vm)
    return True


def _grow_on_host(vm: VirtualMachine, session: Session, cpu_mhz: int, mem: int) -> None:
    assert vm.host_id is not None
    if cpu_mhz < 0 or mem < 0:
        raise ParamError("Only scaling up a running VM is supported")
    if not capacity.reserve(session, vm.host_id, cpu_mhz, mem):
        raise InsufficientCapacity(
            f"Unable to scale VM {vm.name}: its host does not have {cpu_mhz} MHz and "
            f"{mem // MIB} MiB free"
        )
