"""The one state machine for volumes: every state change of a volume goes through ``transition``.

A volume is Allocated (a row, counted against limits, on no pool) until it first needs a
file: attaching it places it on a pool the VM's host reaches and moves it through Creating to
Ready. Each host operation has its own transient state, entered before the host is asked and
left by the answer; a failure returns the volume to the state it came from:

    Allocated --create--> Creating --created--> Ready     (create-failed: back to Allocated)
    Ready --discard--> Allocated   (the first attach failed after the file was made)
    UploadOp --uploaded--> Uploaded --create--> Creating     (uploadVolume, then first attach)
    UploadOp --upload-failed--> UploadError --destroy--> Destroy
    NotUploaded --upload-start--> UploadInProgress --uploaded/upload-failed--> Uploaded/UploadError
    NotUploaded --upload-abandon--> UploadAbandoned   (browser upload link expired unused)
    Ready --attach--> Attaching --attached/attach-failed--> Ready
    Ready --detach--> Detaching --detached/detach-failed--> Ready
    Ready --resize--> Resizing --resized/resize-failed--> Ready
    Ready --migrate--> Migrating --migrated/migrate-failed--> Ready
    Ready --snapshot--> Snapshotting --snapshotted/snapshot-failed--> Ready
    Ready --revert--> Reverting --reverted/revert-failed--> Ready
    Allocated|Ready|Uploaded --destroy--> Destroy --expunge--> Expunging --expunged--> Expunged

A volume made by uploadVolume goes back to Uploaded, not Allocated, when its first create
fails (``create-failed-uploaded``): its file is still in the image store.
Like the VM table, a transition is a conditional
UPDATE on the state we read, so two servers cannot both move the same volume: the loser gets
IllegalState (431) and nothing changed.
"""

from __future__ import annotations

import enum

from sqlalchemy import update
from sqlalchemy.orm import Session

from cumulo.common.time import utcnow
from cumulo.db.models_compute import Volume
from cumulo.services.errors import ParamError


class State(enum.StrEnum):
    ALLOCATED = "Allocated"
    CREATING = "Creating"
    READY = "Ready"
    ATTACHING = "Attaching"
    DETACHING = "Detaching"
    RESIZING = "Resizing"
    MIGRATING = "Migrating"
    SNAPSHOTTING = "Snapshotting"
    REVERTING = "Reverting"
    UPLOAD_OP = "UploadOp"
    NOT_UPLOADED = "NotUploaded"  # getUploadParamsForVolume: waiting for the browser's POST
    UPLOAD_IN_PROGRESS = "UploadInProgress"
    UPLOAD_ABANDONED = "UploadAbandoned"
    UPLOADED = "Uploaded"
    UPLOAD_ERROR = "UploadError"
    DESTROY = "Destroy"
    EXPUNGING = "Expunging"
    EXPUNGED = "Expunged"


class Event(enum.StrEnum):
    CREATE = "create"
    CREATED = "created"
    CREATE_FAILED = "create-failed"
    ATTACH = "attach"
    ATTACHED = "attached"
    ATTACH_FAILED = "attach-failed"
    DETACH = "detach"
    DETACHED = "detached"
    DETACH_FAILED = "detach-failed"
    RESIZE = "resize"
    RESIZED = "resized"
    RESIZE_FAILED = "resize-failed"
    MIGRATE = "migrate"
    MIGRATED = "migrated"
    MIGRATE_FAILED = "migrate-failed"
    SNAPSHOT = "snapshot"
    SNAPSHOTTED = "snapshotted"
    SNAPSHOT_FAILED = "snapshot-failed"
    REVERT = "revert"
    REVERTED = "reverted"
    REVERT_FAILED = "revert-failed"
    DESTROY = "destroy"
    EXPUNGE = "expunge"
    EXPUNGED = "expunged"
    DISCARD = "discard"  # a first attach failed after the file was made: file removed again
    UPLOADED = "uploaded"
    UPLOAD_FAILED = "upload-failed"
    CREATE_FAILED_UPLOADED = "create-failed-uploaded"
    UPLOAD_START = "upload-start"
    UPLOAD_ABANDON = "upload-abandon"


S, E = State, Event
# (transient state, entering event, success event, failure event)
_OPERATIONS = (
    (S.ATTACHING, E.ATTACH, E.ATTACHED, E.ATTACH_FAILED),
    (S.DETACHING, E.DETACH, E.DETACHED, E.DETACH_FAILED),
    (S.RESIZING, E.RESIZE, E.RESIZED, E.RESIZE_FAILED),
    (S.MIGRATING, E.MIGRATE, E.MIGRATED, E.MIGRATE_FAILED),
    (S.SNAPSHOTTING, E.SNAPSHOT, E.SNAPSHOTTED, E.SNAPSHOT_FAILED),
    (S.REVERTING, E.REVERT, E.REVERTED, E.REVERT_FAILED),
)
TRANSITIONS: dict[tuple[State, Event], State] = {
    (S.ALLOCATED, E.CREATE): S.CREATING,
    (S.CREATING, E.CREATED): S.READY,
    (S.CREATING, E.CREATE_FAILED): S.ALLOCATED,
    (S.READY, E.DISCARD): S.ALLOCATED,
    (S.UPLOAD_OP, E.UPLOADED): S.UPLOADED,
    (S.UPLOAD_OP, E.UPLOAD_FAILED): S.UPLOAD_ERROR,
    (S.UPLOADED, E.CREATE): S.CREATING,
    (S.NOT_UPLOADED, E.UPLOAD_START): S.UPLOAD_IN_PROGRESS,
    (S.UPLOAD_IN_PROGRESS, E.UPLOADED): S.UPLOADED,
    (S.UPLOAD_IN_PROGRESS, E.UPLOAD_FAILED): S.UPLOAD_ERROR,
    (S.NOT_UPLOADED, E.UPLOAD_ABANDON): S.UPLOAD_ABANDONED,
    (S.NOT_UPLOADED, E.DESTROY): S.DESTROY,
    (S.CREATING, E.CREATE_FAILED_UPLOADED): S.UPLOADED,
    (S.UPLOAD_ERROR, E.DESTROY): S.DESTROY,
    (S.ALLOCATED, E.DESTROY): S.DESTROY,
    (S.READY, E.DESTROY): S.DESTROY,
    (S.UPLOADED, E.DESTROY): S.DESTROY,
    (S.DESTROY, E.EXPUNGE): S.EXPUNGING,
    (S.EXPUNGING, E.EXPUNGE): S.EXPUNGING,  # resumed after a crash
    (S.EXPUNGING, E.EXPUNGED): S.EXPUNGED,
}
for _busy, _enter, _done, _failed in _OPERATIONS:
    TRANSITIONS[(S.READY, _enter)] = _busy
    TRANSITIONS[(_busy, _done)] = S.READY
    TRANSITIONS[(_busy, _failed)] = S.READY
TRANSIENT = frozenset({S.CREATING, S.EXPUNGING, *(op[0] for op in _OPERATIONS)})


class IllegalState(ParamError):
    """The volume is not in a state that allows the request (CloudStack answers 431)."""


def next_state(current: str, event: Event) -> State:
    try:
        return TRANSITIONS[(State(current), event)]
    except (KeyError, ValueError):
        raise IllegalState(
            f"Unable to {event.value.replace('-', ' ')} the volume: it is in state {current}"
        ) from None


def transition(session: Session, volume: Volume, event: Event, **changes: object) -> State:
    """Move ``volume`` by ``event`` if it is still in the state we read, with ``changes``."""
    current = volume.state
    target = next_state(current, event)
    values = {"state": target.value, "state_changed": utcnow(), **changes}
    done = session.execute(
        update(Volume)
        .where(Volume.id == volume.id, Volume.state == current)
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    if not done:
        session.refresh(volume)
        raise IllegalState(
            f"Unable to {event.value.replace('-', ' ')} the volume: it is now in state "
            f"{volume.state}"
        )
    for key, value in values.items():
        setattr(volume, key, value)
    return target
