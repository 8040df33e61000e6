"""Taking the snapshots that policies say are due, and keeping only ``maxsnaps`` of each.

Every server runs ``run_due`` every few seconds. A due policy is claimed by moving its
``next_run`` to the following slot with a conditional UPDATE on the value read, so with several
servers exactly one of them takes each slot. The claim writes, in the same transaction, the
snapshot row and a ``createSnapshot`` job owned by the volume's owner: the export then runs
in the job engine like a manual one (leases, takeover, abandon clean-up), and ``prune``
deletes the policy's oldest snapshots beyond ``maxsnaps`` once the new one is backed up.
A slot missed while no server ran is taken once, not once per missed slot.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cumulo.common.time import utcnow
from cumulo.db.models import User
from cumulo.db.models_compute import Volume
from cumulo.db.models_storage import Snapshot, SnapshotPolicy
from cumulo.services.errors import CloudError
from cumulo.services.identity import auth
from cumulo.services.jobs import queue
from cumulo.services.runtime import Runtime
from cumulo.services.storage import snapshot_policies, snapshots

log = logging.getLogger(__name__)


def _claim(session: Session, policy: SnapshotPolicy, now: datetime) -> bool:
    following = snapshot_policies.next_run(
        policy.interval_type, policy.schedule, policy.timezone, now
    )
    done = session.execute(
        update(SnapshotPolicy)
        .where(SnapshotPolicy.id == policy.id, SnapshotPolicy.next_run == policy.next_run)
        .values(next_run=following)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    return bool(done)


def _submit(rt: Runtime, session: Session, policy: SnapshotPolicy) -> str | None:
    """The snapshot row and its job, as the volume's owner; None when it cannot be taken now."""
    volume = session.get(Volume, policy.volume_id)
    user_id = session.scalar(
        select(User.id)
        .where(User.account_id == policy.account_id, User.removed.is_(None))
        .order_by(User.id)
    )
    caller = auth.caller_by_user_id(session, user_id, allow_disabled=True) if user_id else None
    if volume is None or volume.removed is not None:
        policy.removed = utcnow()  # its volume is gone: the policy goes with it
        return None
    if caller is None:
        return None
    snap = snapshots.create(
        session, caller, volume, None, rt.config, interval=policy.interval_type, policy_id=policy.id
    )
    queue.submit(
        session,
        caller,
        "createSnapshot",
        {"id": snap.uuid},
        instance_type="Snapshot",
        instance_id=snap.uuid,
    )
    return snap.uuid


def run_due(rt: Runtime, now: datetime | None = None, batch: int = 50) -> int:
    """Claim and submit every due policy; how many snapshots were submitted."""
    now = now or utcnow()
    with rt.db.read() as session:
        due = list(
            session.scalars(
                select(SnapshotPolicy.id)
                .where(SnapshotPolicy.removed.is_(None), SnapshotPolicy.next_run <= now)
                .order_by(SnapshotPolicy.next_run)
                .limit(batch)
            )
        )
    submitted = 0
    for policy_id in due:
        with rt.db.write() as session:
            policy = session.get(SnapshotPolicy, policy_id)
            if policy is None or policy.next_run is None or not _claim(session, policy, now):
                continue
            try:
                with session.begin_nested():  # a refused snapshot must not undo the claim
                    submitted += _submit(rt, session, policy) is not None
            except CloudError as err:  # the volume is busy or its owner at a limit: skip
                log.warning(
                    "scheduled snapshot skipped", extra={"policy": policy_id, "err": err.text}
                )
    return submitted


def prune(rt: Runtime, snap_uuid: str) -> None:
    """Delete the policy's oldest backed-up snapshots beyond its ``maxsnaps``."""
    with rt.db.read() as session:
        snap = session.scalar(select(Snapshot).where(Snapshot.uuid == snap_uuid))
        policy = session.get(SnapshotPolicy, snap.policy_id) if snap and snap.policy_id else None
        if policy is None:
            return
        kept = list(
            session.scalars(
                select(Snapshot.uuid)
                .where(
                    Snapshot.policy_id == policy.id,
                    Snapshot.state == snapshots.State.BACKED_UP,
                    Snapshot.removed.is_(None),
                )
                .order_by(Snapshot.created.desc(), Snapshot.id.desc())
            )
        )
    for old in kept[policy.max_snaps :]:
        try:
            snapshots.delete(rt, old)
        except CloudError as err:
            log.warning("could not prune a snapshot", extra={"snapshot": old, "err": err.text})
