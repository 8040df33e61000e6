"""Reconciling VM rows with what hosts report: a host's word about power is never ignored.

Agents report power-state changes (and a full list on connect). The database says what a
VM should be; a report that disagrees is an out-of-band change, handled here in the same
transaction that stores the report:

- a VM the database has Running on that host is reported Stopped or Missing (QEMU died, the
  guest powered itself off): it goes Stopped and gives its host capacity back; when its
  offering is HA-enabled a start job is queued, so it runs again (on any host);
- a VM the database has Stopped, or in Error (a start whose outcome was unknown), is
  reported Running on a host: it is Running there now (CloudStack's power-on report
  handling), holding that host's capacity and counted against its owner again;
- a VM in Error reported Stopped or Missing is settled to Stopped;
- transient states (Starting, Stopping, Migrating) belong to the job driving them: skipped;
- a running VM the cloud does not know, or one Destroyed, is logged with an event for the
  operator, and left alone (it may not be ours to kill).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from cumulo.agentrpc.messages import PowerState, VmStatus
from cumulo.db.models_compute import VirtualMachine
from cumulo.db.models_infra import Host
from cumulo.services import events
from cumulo.services.access import Caller
from cumulo.services.compute import vms
from cumulo.services.compute.lifecycle import OFF
from cumulo.services.compute.states import Event, State, transition
from cumulo.services.identity import auth
from cumulo.services.infra import capacity
from cumulo.services.jobs import queue

log = logging.getLogger(__name__)
MIB = 1024 * 1024


def _owner(session: Session, vm: VirtualMachine) -> Caller | None:
    """The VM's owner as the caller of follow-up jobs and events (CloudStack uses system)."""
    return auth.caller_by_user_id(session, vm.user_id, allow_disabled=True)


def _event(session: Session, vm: VirtualMachine, kind: str, text: str) -> None:
    caller = _owner(session, vm)
    if caller is not None:
        events.record(
            session,
            caller,
            kind,
            text,
            resource_id=vm.uuid,
            resource_type="VirtualMachine",
            account_id=vm.account_id,
            domain_id=vm.domain_id,
        )


def _stopped_out_of_band(session: Session, vm: VirtualMachine, host: Host) -> None:
    capacity.release(session, host.id, vm.cpu_number * vm.cpu_speed, vm.memory * MIB)
    transition(session, vm, Event.LOST, host_id=None, error=None)
    _event(session, vm, "VM.STOP", f"VM {vm.name} stopped out of band on host {host.name}")
    if vm.ha_enabled:
        caller = _owner(session, vm)
        if caller is not None:
            queue.submit(
                session,
                caller,
                "startVirtualMachine",
                {"id": vm.uuid, "hostid": None},
                instance_type="VirtualMachine",
                instance_id=vm.uuid,
            )
            _event(session, vm, "HA.VM.START", f"HA restart of VM {vm.name} queued")


def _running_out_of_band(session: Session, vm: VirtualMachine, host: Host) -> None:
    was = vm.state
    cpu, memory = vm.cpu_number * vm.cpu_speed, vm.memory * MIB
    if vm.host_id is None:
        # Take the host's capacity even past its limit: the VM runs there, whatever fits.
        if not capacity.reserve(session, host.id, cpu, memory):
            capacity.force_reserve(session, host.id, cpu, memory)
    elif vm.host_id != host.id:
        capacity.release(session, vm.host_id, cpu, memory)
        capacity.force_reserve(session, host.id, cpu, memory)
    transition(session, vm, Event.FOUND_RUNNING, host_id=host.id, last_host_id=host.id, error=None)
    if was == State.ERROR:  # Error VMs hold no counts; a Stopped one still does
        vms.count_vm_anyway(session, vm)
    _event(session, vm, "VM.START", f"VM {vm.name} found running out of band on host {host.name}")


def on_reports(session: Session, host: Host, reports: Sequence[VmStatus]) -> int:
    """Apply a host's power reports to the VMs they name; how many VMs changed."""
    names = [r.name for r in reports]
    if not names:
        return 0
    rows = {
        vm.instance_name: vm
        for vm in session.scalars(
            select(VirtualMachine).where(
                VirtualMachine.instance_name.in_(names), VirtualMachine.removed.is_(None)
            )
        )
    }
    changed = 0
    for report in reports:
        vm = rows.get(report.name)
        if vm is None:
            if report.power == PowerState.RUNNING:
                log.warning("host runs a VM the cloud does not know", extra={"vm": report.name})
            continue
        changed += _apply(session, vm, host, report.power)
    return changed


def _apply(session: Session, vm: VirtualMachine, host: Host, power: PowerState) -> int:
    state = vm.state
    if state == State.RUNNING and vm.host_id == host.id and power in OFF:
        _stopped_out_of_band(session, vm, host)
        return 1
    if state in (State.STOPPED, State.ERROR) and power == PowerState.RUNNING:
        _running_out_of_band(session, vm, host)
        return 1
    if state == State.ERROR and power in OFF and vm.host_id == host.id:
        capacity.release(session, host.id, vm.cpu_number * vm.cpu_speed, vm.memory * MIB)
        transition(session, vm, Event.STOPPED, host_id=None, error=None)
        return 1
    if state in (State.DESTROYED, State.EXPUNGING) and power == PowerState.RUNNING:
        log.warning("a destroyed VM still runs on a host", extra={"vm": vm.uuid})
    return 0
