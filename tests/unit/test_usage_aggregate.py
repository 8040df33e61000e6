"""Usage aggregation with a controlled clock: usage events written at chosen times into a
migrated database, records compared with hand-computed seconds, exactly."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cumulo.api.cloudstack.jobs import JobRunner
from cumulo.common.settings import load_settings
from cumulo.db.engine import Database
from cumulo.db.migrate import upgrade
from cumulo.db.models import Account, AsyncJob, ManagementServer
from cumulo.db.models_usage import UsageEvent, UsageJob, UsageRecord
from cumulo.services.errors import ParamError
from cumulo.services.jobs import queue
from cumulo.services.runtime import Runtime, open_runtime
from cumulo.services.usage import aggregate, scheduler
from cumulo.services.usage import events as ev
from cumulo.services.usage.events import _vm_usage_types

D = datetime(2026, 3, 10, tzinfo=UTC)  # a day in the past: every period here has ended
H = timedelta(hours=1)
DAY = timedelta(days=1)
GIB = 1024**3


def at(hours: float, day: datetime = D) -> datetime:
    return day + timedelta(hours=hours)


def admin(session: Session) -> Account:
    account = session.scalar(select(Account).order_by(Account.id))
    assert account is not None
    return account


def vm_event(session: Session, type: str, when: datetime, vm: int = 1, offering: int = 7) -> None:
    acct = admin(session)
    ev.record(
        session,
        type,
        account_id=acct.id,
        domain_id=acct.domain_id,
        zone_id=1,
        resource_type="VirtualMachine",
        resource_id=vm,
        resource_uuid=f"00000000-0000-0000-0000-{vm:012d}",
        resource_name=f"vm-{vm}",
        offering_id=offering,
        template_id=3,
        at=when,
    )


def volume_event(session: Session, type: str, when: datetime, size: int, vol: int = 1) -> None:
    acct = admin(session)
    ev.record(
        session,
        type,
        account_id=acct.id,
        domain_id=acct.domain_id,
        zone_id=1,
        resource_type="Volume",
        resource_id=vol,
        resource_uuid=f"10000000-0000-0000-0000-{vol:012d}",
        resource_name=f"DATA-{vol}",
        size=size,
        at=when,
    )


def records(session: Session, start: datetime, end: datetime) -> list[tuple[Any, ...]]:
    """What a period's records say, without their row ids (those change on a re-run)."""
    rows = session.scalars(
        select(UsageRecord)
        .where(UsageRecord.start_date == start, UsageRecord.end_date == end)
        .order_by(UsageRecord.usage_type, UsageRecord.usage_uuid, UsageRecord.size)
    )
    return [
        (r.usage_type, r.usage_uuid, r.seconds, r.raw_usage, r.size, r.description) for r in rows
    ]


def seconds(session: Session, usage_type: int, start: datetime, end: datetime) -> list[int]:
    return [r[2] for r in records(session, start, end) if r[0] == usage_type]


def test_vm_started_and_stopped_twice_in_a_day_created_the_day_before(session: Session) -> None:
    vm_event(session, ev.VM_CREATE, at(7, D - DAY))
    vm_event(session, ev.VM_START, at(8))
    vm_event(session, ev.VM_STOP, at(10.5))
    vm_event(session, ev.VM_START, at(14))
    vm_event(session, ev.VM_STOP, at(15.25))
    assert aggregate.run(session, D, D + DAY) == 2
    assert seconds(session, 1, D, D + DAY) == [int(3.75 * 3600)]
    assert seconds(session, 2, D, D + DAY) == [24 * 3600]
    rows = records(session, D, D + DAY)
    assert [r[3] for r in rows] == [3.75, 24.0]
    assert rows[0][5] == "vm-1 running time"


def test_an_interval_crossing_the_period_boundary_is_split(session: Session) -> None:
    vm_event(session, ev.VM_CREATE, at(21))
    vm_event(session, ev.VM_START, at(22))
    vm_event(session, ev.VM_STOP, at(26))  # 02:00 the next day
    aggregate.run(session, D, D + DAY)
    aggregate.run(session, D + DAY, D + 2 * DAY)
    assert seconds(session, 1, D, D + DAY) == [2 * 3600]
    assert seconds(session, 1, D + DAY, D + 2 * DAY) == [2 * 3600]
    assert seconds(session, 2, D, D + DAY) == [3 * 3600]
    assert seconds(session, 2, D + DAY, D + 2 * DAY) == [24 * 3600]


def test_a_destroyed_vm_stops_counting_at_its_destruction(session: Session) -> None:
    vm_event(session, ev.VM_CREATE, at(6))
    vm_event(session, ev.VM_START, at(6))
    vm_event(session, ev.VM_STOP, at(11.5))
    vm_event(session, ev.VM_DESTROY, at(12))
    aggregate.run(session, D, D + DAY)
    aggregate.run(session, D + DAY, D + 2 * DAY)
    assert seconds(session, 1, D, D + DAY) == [int(5.5 * 3600)]
    assert seconds(session, 2, D, D + DAY) == [6 * 3600]
    assert records(session, D + DAY, D + 2 * DAY) == []


def test_a_still_running_vm_is_clipped_to_the_period(session: Session) -> None:
    vm_event(session, ev.VM_CREATE, at(-30))
    vm_event(session, ev.VM_START, at(-30))
    aggregate.run(session, at(3), at(4.5))
    assert seconds(session, 1, at(3), at(4.5)) == [5400]
    assert records(session, at(3), at(4.5))[0][3] == 1.5


def test_a_re_run_of_the_same_period_gives_identical_rows(session: Session) -> None:
    vm_event(session, ev.VM_CREATE, at(1))
    vm_event(session, ev.VM_START, at(2), vm=1)
    vm_event(session, ev.VM_CREATE, at(3), vm=2)
    vm_event(session, ev.VM_START, at(3), vm=2)
    vm_event(session, ev.VM_DESTROY, at(20), vm=2)
    volume_event(session, ev.VOLUME_CREATE, at(0), 10 * GIB)
    aggregate.run(session, D, D + DAY)
    first = records(session, D, D + DAY)
    aggregate.run(session, D, D + DAY)
    assert records(session, D, D + DAY) == first
    assert session.scalar(select(func.count()).select_from(UsageRecord)) == len(first) == 5
    job = session.scalar(select(UsageJob))
    assert job is not None and job.state == "Done" and job.records == 5


def test_duplicated_events_count_once(session: Session) -> None:
    vm_event(session, ev.VM_START, at(1))
    vm_event(session, ev.VM_START, at(2))  # a resent start: still the interval from 01:00
    vm_event(session, ev.VM_STOP, at(3))
    vm_event(session, ev.VM_STOP, at(4))
    aggregate.run(session, D, D + DAY)
    assert seconds(session, 1, D, D + DAY) == [2 * 3600]


def test_an_upgrade_splits_the_vm_by_offering(session: Session) -> None:
    vm_event(session, ev.VM_CREATE, at(0), offering=7)
    vm_event(session, ev.VM_START, at(0), offering=7)
    vm_event(session, ev.VM_UPGRADE, at(6), offering=8)
    vm_event(session, ev.VM_STOP, at(10), offering=8)
    aggregate.run(session, D, D + DAY)
    assert sorted(seconds(session, 1, D, D + DAY)) == [4 * 3600, 6 * 3600]
    assert sorted(seconds(session, 2, D, D + DAY)) == [6 * 3600, 18 * 3600]


def test_a_resized_volume_is_billed_per_size(session: Session) -> None:
    volume_event(session, ev.VOLUME_CREATE, at(0), 10 * GIB)
    volume_event(session, ev.VOLUME_RESIZE, at(12), 20 * GIB)
    volume_event(session, ev.VOLUME_DELETE, at(18), 20 * GIB)
    aggregate.run(session, D, D + DAY)
    rows = [(r[2], r[4]) for r in records(session, D, D + DAY) if r[0] == 6]
    assert rows == [(12 * 3600, 10 * GIB), (6 * 3600, 20 * GIB)]


def test_an_overlapping_run_cuts_periods_without_gap_or_duplicate(session: Session) -> None:
    vm_event(session, ev.VM_START, at(0))
    aggregate.run(session, D, D + DAY)
    aggregate.run(session, at(10), at(11))  # an operator's ad-hoc hour inside the day
    periods = [
        (j.start_date.replace(tzinfo=UTC), j.end_date.replace(tzinfo=UTC))
        for j in session.scalars(select(UsageJob).order_by(UsageJob.start_date))
    ]
    assert periods == [(D, at(10)), (at(10), at(11)), (at(11), D + DAY)]
    total = session.scalar(select(func.sum(UsageRecord.seconds)).where(UsageRecord.usage_type == 1))
    assert total == 24 * 3600


def test_periods_must_have_ended_and_be_well_formed(session: Session) -> None:
    with pytest.raises(ParamError):
        aggregate.run(session, D + DAY, D)
    with pytest.raises(ParamError):
        aggregate.run(session, D, datetime.now(UTC) + H)
    assert session.scalar(select(func.count()).select_from(UsageJob)) == 0


def test_raw_events_of_finished_resources_are_removed_and_open_ones_kept(
    session: Session,
) -> None:
    vm_event(session, ev.VM_START, at(1), vm=1)
    vm_event(session, ev.VM_STOP, at(2), vm=1)
    vm_event(session, ev.VM_START, at(1), vm=2)  # still running: its start is still needed
    aggregate.run(session, D, D + DAY)
    assert aggregate.remove_raw(session, D + 2 * DAY) == 2
    left = session.scalars(select(UsageEvent.resource_id)).all()
    assert left == [2]
    aggregate.run(session, D + DAY, D + 2 * DAY)
    assert seconds(session, 1, D + DAY, D + 2 * DAY) == [24 * 3600]


@pytest.mark.parametrize(
    ("event", "old", "new", "types"),
    [
        ("started", "Starting", "Running", ["VM.START"]),
        ("found-running", "Stopped", "Running", ["VM.START"]),
        ("stop", "Running", "Stopping", []),
        ("stopped", "Stopping", "Stopped", ["VM.STOP"]),
        ("stop-failed", "Stopping", "Running", []),
        ("lost", "Running", "Stopped", ["VM.STOP"]),
        ("lost", "Starting", "Error", []),
        ("migrate", "Running", "Migrating", []),
        ("migrated", "Migrating", "Running", []),
        ("destroy", "Stopped", "Destroyed", ["VM.DESTROY"]),
        ("deploy-failed", "Starting", "Error", ["VM.DESTROY"]),
        ("recover", "Destroyed", "Stopped", ["VM.CREATE"]),
        ("expunge", "Destroyed", "Expunging", []),
        ("expunge", "Error", "Expunging", ["VM.DESTROY"]),
    ],
)
def test_vm_state_changes_map_to_usage_events(
    event: str, old: str, new: str, types: list[str]
) -> None:
    assert _vm_usage_types(event, old, new) == types


def test_scheduler_periods_follow_the_grid_and_fill_gaps(session: Session) -> None:
    vm_event(session, ev.VM_START, at(5))
    now = at(2.5, D + 2 * DAY)
    due = scheduler.due_periods(session, now, range_minutes=1440, tz="GMT", offset_minutes=15)
    assert due == [(D, D + DAY), (D + DAY, D + 2 * DAY)]
    aggregate.run(session, at(10, D + DAY), at(11, D + DAY))
    due = scheduler.due_periods(session, now, range_minutes=1440, tz="GMT", offset_minutes=15)
    assert due == [(D, D + DAY), (D + DAY, at(10, D + DAY)), (at(11, D + DAY), D + 2 * DAY)]
    hourly = scheduler.due_periods(
        session, at(0.5, D + DAY), range_minutes=360, tz="GMT", offset_minutes=15
    )
    assert hourly == [(D, at(6)), (at(6), at(12)), (at(12), at(18)), (at(18), D + DAY)]


# --- the scheduled job, end to end through the job engine ---------------------------------


@pytest.fixture
def rt(db_url: str, tmp_path: Path) -> Iterator[Runtime]:
    runtime = open_runtime(load_settings(data_dir=tmp_path, database={"url": db_url}))
    yield runtime
    runtime.db.dispose()


def _server(rt: Runtime) -> int:
    with rt.db.write() as session:
        row = ManagementServer(name=f"test-{uuid.uuid4().hex[:6]}", pid=1, version="test")
        session.add(row)
        session.flush()
        return row.id


def _all_records(rt: Runtime) -> list[tuple[Any, ...]]:
    with rt.db.read() as session:
        rows = session.scalars(select(UsageRecord).order_by(UsageRecord.id))
        return [(r.start_date, r.usage_type, r.usage_uuid, r.seconds) for r in rows]


def test_scheduled_periods_run_once_as_jobs_and_a_killed_run_reruns_identically(
    rt: Runtime,
) -> None:
    import cumulo.api.cloudstack.commands.usage  # noqa: F401  (the job body)

    with rt.db.write() as session:
        vm_event(session, ev.VM_CREATE, at(6))
        vm_event(session, ev.VM_START, at(6))
        vm_event(session, ev.VM_STOP, at(30))
    now = at(1, D + 2 * DAY)
    assert scheduler.schedule(rt, now) == [(D, D + DAY), (D + DAY, D + 2 * DAY)]
    assert scheduler.schedule(rt, now) == []  # a second server finds them taken
    server = rt.server_id = _server(rt)
    runner = JobRunner(rt)
    while (claimed := queue.claim(rt.db, server, 30, 3)) is not None:
        runner(claimed)
    with rt.db.read() as session:
        jobs = session.scalars(select(AsyncJob).where(AsyncJob.cmd == "generateUsageRecords"))
        assert [j.status for j in jobs] == [queue.SUCCEEDED, queue.SUCCEEDED]
        assert {j.state for j in session.scalars(select(UsageJob))} == {"Done"}
    done = _all_records(rt)
    assert [r[3] for r in done] == [18 * 3600, 18 * 3600, 6 * 3600, 24 * 3600]
    with pytest.raises(RuntimeError), rt.db.write() as session:
        aggregate.run(session, D, D + DAY)
        raise RuntimeError("the server died before the commit")
    assert _all_records(rt) == done
    with rt.db.write() as session:
        aggregate.run(session, D, D + DAY)
    assert sorted(r[1:] for r in _all_records(rt)) == sorted(r[1:] for r in done)


# --- the upgrade: what exists is metered from then on -------------------------------------


def _insert(conn: sqlite3.Connection, table: str, **values: Any) -> None:
    names = ", ".join(values)
    marks = ", ".join("?" for _ in values)
    conn.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", tuple(values.values()))


def _vm(conn: sqlite3.Connection, id: int, state: str, removed: str | None = None) -> None:
    _insert(
        conn, "vm_instances", id=id, uuid=f"vm-{id}", name=f"vm-{id}", display_name="v",
        instance_name="i", state=state, state_changed="2026-01-01 00:00:00.000000",
        account_id=1, domain_id=1, user_id=1, zone_id=1, service_offering_id=5, template_id=6,
        cpu_number=1, cpu_speed=500, memory=512, ha_enabled=0, display_vm=1,
        dynamically_scalable=0, keypairs="[]", details="{}",
        created="2026-01-01 00:00:00.000000", removed=removed,
    )  # fmt: skip


def test_the_upgrade_opens_usage_for_what_exists(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    upgrade(f"sqlite:///{path}", "0011")
    conn = sqlite3.connect(path)  # foreign keys off: only the rows the backfill reads
    _vm(conn, 1, "Running")
    _vm(conn, 2, "Stopped")
    _vm(conn, 3, "Destroyed")
    _vm(conn, 4, "Stopped", removed="2026-01-02 00:00:00.000000")
    _insert(
        conn, "volumes", id=7, uuid="vol-7", name="DATA-7", account_id=1, domain_id=1,
        zone_id=1, volume_type="DATADISK", state="Ready", size=GIB, format="QCOW2",
        created="2026-01-01 00:00:00.000000", display_volume=1,
    )  # fmt: skip
    _insert(
        conn, "public_ip_addresses", id=9, uuid="ip-9", zone_id=1, vlan_range_id=1,
        address="203.0.113.9", account_id=1, domain_id=1, state="Allocated", is_source_nat=1,
        for_display=1, allocated="2026-01-01 00:00:00.000000",
    )  # fmt: skip
    conn.commit()
    conn.close()
    before = datetime.now(UTC)
    upgrade(f"sqlite:///{path}")
    db = Database(f"sqlite:///{path}")
    try:
        with db.read() as session:
            rows = session.execute(
                select(
                    UsageEvent.type, UsageEvent.resource_uuid, UsageEvent.size, UsageEvent.created
                ).order_by(UsageEvent.id)
            ).all()
    finally:
        db.dispose()
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("VM.CREATE", "vm-1", None),
        ("VM.CREATE", "vm-2", None),
        ("VM.START", "vm-1", None),
        ("VOLUME.CREATE", "vol-7", GIB),
        ("NET.IPASSIGN", "ip-9", None),
    ]
    assert all(r[3].replace(tzinfo=UTC) >= before - timedelta(seconds=1) for r in rows)


@pytest.mark.parametrize(
    ("usage_type", "resource_type", "opens", "closes"),
    [
        (3, "PublicIpAddress", ev.IP_ASSIGN, ev.IP_RELEASE),
        (7, "Template", ev.TEMPLATE_CREATE, ev.TEMPLATE_DELETE),
        (8, "Iso", ev.ISO_CREATE, ev.ISO_DELETE),
        (9, "Snapshot", ev.SNAPSHOT_CREATE, ev.SNAPSHOT_DELETE),
    ],
)
def test_ips_templates_isos_and_snapshots_are_billed_while_they_exist(
    session: Session, usage_type: int, resource_type: str, opens: str, closes: str
) -> None:
    acct = admin(session)
    for type_, when in ((opens, at(-3)), (closes, at(7.5))):
        ev.record(
            session, type_, account_id=acct.id, domain_id=acct.domain_id, zone_id=1,
            resource_type=resource_type, resource_id=5,
            resource_uuid="20000000-0000-0000-0000-000000000005", size=GIB, at=when,
        )  # fmt: skip
    aggregate.run(session, D, D + DAY)
    rows = records(session, D, D + DAY)
    assert [(r[0], r[2], r[4]) for r in rows] == [(usage_type, int(7.5 * 3600), GIB)]
