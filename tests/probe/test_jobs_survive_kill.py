"""``kill -9`` of the server with jobs in flight, then restart: every job ends, none stays 0.

Each job sleeps before its body (a testing-only setting), so when the server is killed some
jobs are finished, some claimed and mid-flight, some not yet claimed. After a restart on the
same data the in-flight jobs must be taken over once their lease lapses, run exactly once to
completion, and their effects must agree with what the jobs report. Jobs on one resource must
still run one after another across the crash; jobs on different resources side by side.

The job table is read directly (read-only) to see claims the API does not show: which server
owns a job, how often it was claimed, and sub-second completion times.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.pool import NullPool

from cumulo.common.time import aware
from cumulo.db.models import Account, AsyncJob, Event, ManagementServer
from tests.support.cloud import Cloud, make_cloud

pytestmark = pytest.mark.slow

BACKENDS = [pytest.param("sqlite", id="sqlite"), pytest.param("pg", id="pg", marks=pytest.mark.pg)]
DELAY = 2.0  # CUMULO_JOBS__INJECT_DELAY_SECONDS: each job sleeps this long before its body
LEASE = 3.0
RECOVERY_BOUND = 60.0


@dataclass(frozen=True)
class JobRow:
    uuid: str
    status: int
    owner_id: int | None
    attempts: int
    completed: datetime | None
    created: datetime


@dataclass
class Probe:
    """The cloud under test and a read-only view of its database."""

    cloud: Cloud
    engine: Engine

    def jobs(self) -> dict[str, JobRow]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    AsyncJob.uuid,
                    AsyncJob.status,
                    AsyncJob.owner_id,
                    AsyncJob.attempts,
                    AsyncJob.completed,
                    AsyncJob.created,
                )
            ).all()
        return {
            r.uuid: JobRow(
                r.uuid,
                r.status,
                r.owner_id,
                r.attempts,
                aware(r.completed) if r.completed else None,
                aware(r.created),
            )
            for r in rows
        }

    def newest_server(self) -> int:
        with self.engine.connect() as conn:
            newest = conn.scalar(select(func.max(ManagementServer.id)))
        assert newest is not None
        return int(newest)

    def removed(self, account_id: str) -> bool:
        with self.engine.connect() as conn:
            row = conn.execute(select(Account.removed).where(Account.uuid == account_id)).one()
        return row.removed is not None

    def completions(self, job_id: str) -> list[tuple[int, str]]:
        """The Completed events a job wrote, as (event id, type)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(Event.id, Event.type).where(
                    Event.job_id == job_id, Event.state == "Completed"
                )
            ).all()
        return [(r.id, r.type) for r in rows]


@pytest.fixture(params=BACKENDS)
def probe(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Probe]:
    """A cloud of its own (the test kills it), with slow jobs and short leases."""
    data_dir = tmp_path / "cloud"
    if request.param == "sqlite":
        url, db_url = "", f"sqlite:///{data_dir / 'cumulo.db'}"
    else:
        from tests.support.postgres import database_url_for

        url = db_url = database_url_for(request, f"probe_{uuid.uuid4().hex[:12]}")
    cloud = make_cloud(
        data_dir,
        url,
        CUMULO_JOBS__LEASE_SECONDS=str(LEASE),
        CUMULO_JOBS__HEARTBEAT_SECONDS="1",
        CUMULO_JOBS__INJECT_DELAY_SECONDS=str(DELAY),
        CUMULO_JOBS__WORKERS="2",
    )
    engine = create_engine(db_url, poolclass=NullPool)
    cloud.start()
    try:
        yield Probe(cloud, engine)
    finally:
        cloud.stop()
        engine.dispose()


def _account(cloud: Cloud) -> str:
    name = f"probe-{uuid.uuid4().hex[:10]}"
    account = cloud.call(
        "createAccount",
        username=name,
        password="s3cret-Pw",
        firstname="Probe",
        lastname="Victim",
        email="probe@example.org",
        accounttype=0,
    )["account"]
    return str(account["id"])


def _submit(cloud: Cloud, command: str, **params: Any) -> str:
    return str(cloud.call(command, **params)["jobid"])


def _wait_until(what: str, check: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting until {what}")
        time.sleep(0.05)


def _wait_all(cloud: Cloud, job_ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
    """Poll queryAsyncJobResult until every job has left status 0, or fail naming those left."""
    deadline = time.monotonic() + timeout
    done: dict[str, dict[str, Any]] = {}
    while len(done) < len(job_ids):
        for job_id in job_ids:
            if job_id not in done:
                job = cloud.call("queryAsyncJobResult", jobid=job_id)
                if job["jobstatus"] != 0:
                    done[job_id] = job
        if len(done) < len(job_ids):
            pending = [j for j in job_ids if j not in done]
            assert time.monotonic() < deadline, f"still in progress after {timeout} s: {pending}"
            time.sleep(0.2)
    return done


def test_jobs_in_flight_survive_kill_9(probe: Probe) -> None:
    cloud = probe.cloud
    independent = [_account(cloud) for _ in range(8)]
    shared = _account(cloud)

    # Two workers, two-second jobs: jobs 1-2 run first, then 3-4, so the kill below (as
    # soon as job 3 is claimed) lands with 1-2 finished, 3-4 in flight, 5-10 waiting. Job 5
    # acts on the same account as job 3 and must wait for it, even across the crash.
    deletes = {a: "" for a in independent}
    deletes[independent[0]] = _submit(cloud, "deleteAccount", id=independent[0])
    deletes[independent[1]] = _submit(cloud, "deleteAccount", id=independent[1])
    disable = _submit(cloud, "disableAccount", id=shared, lock="false")
    deletes[independent[2]] = _submit(cloud, "deleteAccount", id=independent[2])
    deletes[shared] = _submit(cloud, "deleteAccount", id=shared)
    for account in independent[3:]:
        deletes[account] = _submit(cloud, "deleteAccount", id=account)
    all_jobs = [disable, *deletes.values()]
    assert len(set(all_jobs)) == 10

    def disable_in_flight() -> bool:
        row = probe.jobs()[disable]
        return row.status == 0 and row.owner_id is not None

    _wait_until("the disable job is claimed", disable_in_flight, timeout=20)
    cloud.kill9()
    killed_at = time.monotonic()
    before = probe.jobs()
    old_server = before[disable].owner_id
    in_flight = {j for j, r in before.items() if r.status == 0 and r.owner_id is not None}
    finished_before = {j for j, r in before.items() if r.status != 0}
    assert disable in in_flight
    assert finished_before, "no job had finished before the kill: the probe proves less"

    cloud.start()
    results = _wait_all(cloud, all_jobs, RECOVERY_BOUND)
    recovered_in = time.monotonic() - killed_at
    after = probe.jobs()
    new_server = probe.newest_server()
    assert new_server != old_server

    # Every job ended, and ended well: deleteAccount and disableAccount may be re-run.
    outcomes = {j: (results[j]["jobstatus"], results[j].get("jobresult")) for j in all_jobs}
    assert {status for status, _ in outcomes.values()} <= {1, 2}, outcomes
    assert all(status == 1 for status, _ in outcomes.values()), outcomes

    # The jobs in flight were taken over by the new server and claimed exactly once more;
    # the finished ones were not run again.
    for job in in_flight:
        assert after[job].owner_id == new_server and after[job].attempts == 2, after[job]
    for job in finished_before:
        assert after[job] == before[job], "a finished job was touched by the new server"

    # Effects agree with the jobs: an account is gone exactly when its delete succeeded.
    for account, job in deletes.items():
        assert probe.removed(account) == (results[job]["jobstatus"] == 1), account
        listed = cloud.call("listAccounts", id=account, listall="true")
        assert ("account" in listed) == (results[job]["jobstatus"] != 1)

    # Each job wrote exactly one completion event, even those run twice.
    for job in all_jobs:
        assert len(probe.completions(job)) == 1, (job, probe.completions(job))

    # Same account: the delete began only after the disable ended (its body waits DELAY first).
    disabled_at, deleted_at = after[disable].completed, after[deletes[shared]].completed
    assert disabled_at is not None and deleted_at is not None
    assert (deleted_at - disabled_at).total_seconds() >= DELAY - 0.05
    [(disable_event, _)] = probe.completions(disable)
    [(delete_event, _)] = probe.completions(deletes[shared])
    assert disable_event < delete_event

    print(f"\n[probe] recovered all 10 jobs {recovered_in:.1f} s after kill -9")


def test_independent_jobs_run_side_by_side(probe: Probe) -> None:
    """Four jobs on four accounts with two workers take two rounds, not four."""
    cloud = probe.cloud
    accounts = [_account(cloud) for _ in range(4)]
    started = time.monotonic()
    jobs = [_submit(cloud, "deleteAccount", id=a) for a in accounts]
    results = _wait_all(cloud, jobs, 30)
    elapsed = time.monotonic() - started
    assert all(results[j]["jobstatus"] == 1 for j in jobs)
    rows = probe.jobs()
    completed = sorted(t for j in jobs if (t := rows[j].completed) is not None)
    assert len(completed) == 4
    # From the first submission to the last completion, as the server's clock saw it: one
    # job at a time would take at least 4 * DELAY, two at a time about 2 * DELAY.
    span = (completed[-1] - min(rows[j].created for j in jobs)).total_seconds()
    print(
        f"\n[probe] 4 independent jobs: {span:.2f} s in the server, {elapsed:.2f} s for the client"
    )
    assert span < 3 * DELAY, f"4 independent jobs took {span:.1f} s: not run concurrently"
    # Two at a time: the first pair finish together, the second pair DELAY later.
    assert (completed[1] - completed[0]).total_seconds() < DELAY / 2
    assert (completed[2] - completed[1]).total_seconds() >= DELAY / 2
