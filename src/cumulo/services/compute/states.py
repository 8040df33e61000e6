"""The one state machine for VMs: every state change in the code goes through ``transition``.

A transition is a conditional UPDATE (``WHERE state = <from>``), so two servers racing on the
same VM cannot both move it: the loser sees ``IllegalState`` and nothing changed. Illegal
requests (stopping a stopped VM, starting a destroyed one) are refused with the VM's current
state in the text, as CloudStack's ``InvalidParameterValueException`` does.
"""

from __future__ import annotations

import enum
import functools
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from cumulo.common.time import utcnow
from cumulo.db.models_compute import VirtualMachine
from cumulo.services.errors import ParamError
from cumulo.services.eventbus import outbox
from cumulo.services.usage import events as usage


class State(enum.StrEnum):
    STOPPED = "Stopped"
    STARTING = "Starting"
    RUNNING = "Running"
    STOPPING = "Stopping"
    MIGRATING = "Migrating"
    DESTROYED = "Destroyed"
    EXPUNGING = "Expunging"
    EXPUNGED = "Expunged"
    ERROR = "Error"


class Event(enum.StrEnum):
    START = "start"
    STARTED = "started"
    START_FAILED = "start-failed"
    STOP = "stop"
    STOPPED = "stopped"
    STOP_FAILED = "stop-failed"
    MIGRATE = "migrate"
    MIGRATED = "migrated"
    MIGRATE_FAILED = "migrate-failed"
    DESTROY = "destroy"
    RECOVER = "recover"
    EXPUNGE = "expunge"
    EXPUNGED = "expunged"
    LOST = "lost"  # the host reports the VM gone, or the outcome cannot be known
    FOUND_RUNNING = "found-running"  # a host reports it running out of band
    DEPLOY_FAILED = "deploy-failed"  # a new VM that could not start: Error, nothing held


S, E = State, Event
TRANSITIONS: dict[tuple[State, Event], State] = {
    (S.STOPPED, E.START): S.STARTING,
    (S.STARTING, E.STARTED): S.RUNNING,
    (S.STARTING, E.START_FAILED): S.STOPPED,
    (S.STARTING, E.LOST): S.ERROR,
    (S.RUNNING, E.STOP): S.STOPPING,
    (S.STOPPING, E.STOPPED): S.STOPPED,
    (S.STOPPING, E.STOP_FAILED): S.RUNNING,
    (S.STOPPING, E.LOST): S.ERROR,
    (S.RUNNING, E.LOST): S.STOPPED,
    (S.RUNNING, E.MIGRATE): S.MIGRATING,
    (S.MIGRATING, E.MIGRATED): S.RUNNING,
    (S.MIGRATING, E.MIGRATE_FAILED): S.RUNNING,
    (S.MIGRATING, E.LOST): S.ERROR,
    (S.STOPPED, E.DEPLOY_FAILED): S.ERROR,
    (S.STARTING, E.DEPLOY_FAILED): S.ERROR,
    (S.STOPPED, E.FOUND_RUNNING): S.RUNNING,
    (S.ERROR, E.FOUND_RUNNING): S.RUNNING,
    (S.ERROR, E.STOPPED): S.STOPPED,
    (S.STOPPED, E.DESTROY): S.DESTROYED,
    (S.ERROR, E.DESTROY): S.DESTROYED,
    (S.DESTROYED, E.RECOVER): S.STOPPED,
    (S.DESTROYED, E.EXPUNGE): S.EXPUNGING,
    (S.ERROR, E.EXPUNGE): S.EXPUNGING,
    (S.EXPUNGING, E.EXPUNGE): S.EXPUNGING,  # a resumed expunge after a crash
    (S.EXPUNGING, E.EXPUNGED): S.EXPUNGED,
}


class IllegalState(ParamError):
    """The VM is not in a state that allows the request (CloudStack answers 431)."""


def next_state(current: str, event: Event) -> State:
    """The state ``event`` leads to from ``current``; IllegalState when it is not allowed."""
    try:
        return TRANSITIONS[(State(current), event)]
    except (KeyError, ValueError):
        raise IllegalState(
            f"Unable to {event.value.replace('-', ' ')} the VM: it is in state {current}"
        ) from None


@functools.lru_cache(maxsize=128)
def _guarded_update(columns: tuple[str, ...]) -> Any:
    """``UPDATE vm_instances SET <columns> WHERE id = ? AND state = ?``, built once per set of
    columns (transitions run on every lifecycle step; building the statement cost more than
    running it)."""
    return (
        update(VirtualMachine)
        .where(
            VirtualMachine.id == bindparam("p_where_id"),
            VirtualMachine.state == bindparam("p_where_state"),
        )
        .values({column: bindparam(f"p_{column}") for column in columns})
        .execution_options(synchronize_session=False)
    )


def transition(session: Session, vm: VirtualMachine, event: Event, **changes: object) -> State:
    """Move ``vm`` by ``event`` if it is still in the state we read, with ``changes``.

    The row is updated with a guard on the state we read, and ``vm`` is refreshed to match.
    Raises IllegalState when the move is not allowed or another server moved it first.
    """
    current = vm.state
    target = next_state(current, event)
    values = {"state": target.value, "state_changed": utcnow(), **changes}
    params = {f"p_{key}": value for key, value in values.items()}
    params.update(p_where_id=vm.id, p_where_state=current)
    done = session.execute(_guarded_update(tuple(values)), params).rowcount  # type: ignore[attr-defined]
    if not done:
        session.refresh(vm)
        raise IllegalState(
            f"Unable to {event.value.replace('-', ' ')} the VM: it is now in state {vm.state}"
        )
    # The row already holds these values: set them as loaded, so the flush does not write
    # the row a second time, and publish the state change the flush hook would have seen.
    for key, value in values.items():
        set_committed_value(vm, key, value)
    outbox.state_changed(session, vm, "VirtualMachine", current, target.value)
    # Usage events (VM.START, VM.STOP, VM.DESTROY …) commit with the change: every path
    # through the state machine (jobs, reconciler, HA) is metered, none twice.
    usage.vm_transition(session, vm, event.value, current, target.value)
    return target
