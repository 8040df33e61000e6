"""Chargeback with a controlled clock: a scripted month of usage events, aggregated per day,
charged with tariffs (one changing mid-month), compared with hand-computed Decimal amounts.

March 2026 has 31 days = 744 hours, so a monthly tariff of 744 costs exactly 1 per hour.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cumulo.api.cloudstack.jobs import JobRunner
from cumulo.common.settings import load_settings
from cumulo.db.models import Account, AsyncJob, Event, ManagementServer, Role, User
from cumulo.db.models_quota import QuotaTariff, QuotaUsage
from cumulo.db.models_usage import UsageRecord
from cumulo.services.access import Caller
from cumulo.services.config import ConfigStore
from cumulo.services.errors import ParamError
from cumulo.services.identity import auth
from cumulo.services.jobs import queue
from cumulo.services.runtime import Runtime, open_runtime
from cumulo.services.usage import aggregate, quota, scheduler
from cumulo.services.usage import events as ev
from cumulo.services.usage import quota_tariffs as qt

M = datetime(2026, 3, 1, tzinfo=UTC)
DAY = timedelta(days=1)
GIB = 1024**3


def at(day: int, hour: float = 0) -> datetime:
    """Day ``day`` of March 2026 (1-based), ``hour`` o'clock, UTC."""
    return M + (day - 1) * DAY + timedelta(hours=hour)


def root_caller(session: Session) -> Caller:
    user_id = session.scalar(select(User.id).order_by(User.id))
    assert user_id is not None
    caller = auth.caller_by_user_id(session, user_id)
    assert caller is not None
    return caller


def user_account(session: Session, name: str = "tenant") -> Account:
    """A plain user account (type 0) in the root domain, with a user so it can be locked."""
    admin = session.scalar(select(Account).order_by(Account.id))
    assert admin is not None
    role = session.scalar(select(Role).where(Role.type == "User").order_by(Role.id))
    assert role is not None
    account = Account(name=name, domain_id=admin.domain_id, type=0, role_id=role.id)
    session.add(account)
    session.flush()
    session.add(User(username=f"{name}-user", account_id=account.id))
    session.flush()
    return account


def script_month(session: Session, account: Account, rid: int = 1) -> None:
    """The month: a VM that runs 10 h on the 1st and 12 h on the 20th and is allocated 30
    days; a 10 GiB volume grown to 20 GiB on the 11th and deleted on the 21st; an IP held
    15 days."""

    def vm(type: str, when: datetime) -> None:
        ev.record(
            session,
            type,
            account_id=account.id,
            domain_id=account.domain_id,
            zone_id=1,
            resource_type="VirtualMachine",
            resource_id=rid,
            resource_uuid=f"00000000-0000-0000-0000-{rid:012d}",
            resource_name=f"vm-{rid}",
            offering_id=7,
            template_id=3,
            at=when,
        )

    def volume(type: str, when: datetime, size: int) -> None:
        ev.record(
            session,
            type,
            account_id=account.id,
            domain_id=account.domain_id,
            zone_id=1,
            resource_type="Volume",
            resource_id=rid,
            resource_uuid=f"10000000-0000-0000-0000-{rid:012d}",
            resource_name=f"DATA-{rid}",
            size=size,
            at=when,
        )

    def ip(type: str, when: datetime) -> None:
        ev.record(
            session,
            type,
            account_id=account.id,
            domain_id=account.domain_id,
            zone_id=1,
            resource_type="PublicIpAddress",
            resource_id=rid,
            resource_uuid=f"20000000-0000-0000-0000-{rid:012d}",
            resource_name=f"10.0.0.{rid}",
            at=when,
        )

    vm(ev.VM_CREATE, at(1))
    vm(ev.VM_START, at(1, 8))
    vm(ev.VM_STOP, at(1, 18))
    vm(ev.VM_START, at(20))
    vm(ev.VM_STOP, at(20, 12))
    vm(ev.VM_DESTROY, at(31))
    volume(ev.VOLUME_CREATE, at(1), 10 * GIB)
    volume(ev.VOLUME_RESIZE, at(11), 20 * GIB)
    volume(ev.VOLUME_DELETE, at(21), 20 * GIB)
    ip(ev.IP_ASSIGN, at(1))
    ip(ev.IP_RELEASE, at(16))


def aggregate_month(session: Session) -> None:
    for day in range(1, 32):
        aggregate.run(session, at(day), at(day) + DAY)


def tariffs(session: Session) -> None:
    """Running VM: 744/month (1 per hour) up to the 15th, 1488 (2 per hour) from the 16th;
    allocated VM 7.44 (0.01/h); volume 7.44 per GB-month (0.01 per GiB-hour); IP 3.72
    (0.005/h)."""
    qt.create(
        session,
        name="run-a",
        usage_type=1,
        value=Decimal("744"),
        user_id=None,
        start=at(1),
        end=at(16),
    )
    qt.create(
        session, name="run-b", usage_type=1, value=Decimal("1488"), user_id=None, start=at(16)
    )
    qt.create(session, name="alloc", usage_type=2, value=Decimal("7.44"), user_id=None, start=M)
    qt.create(session, name="vol", usage_type=6, value=Decimal("7.44"), user_id=None, start=M)
    qt.create(session, name="ip", usage_type=3, value=Decimal("3.72"), user_id=None, start=M)


# Hand-computed: running 10 h x 1 + 12 h x 2 = 34; allocated 720 h x 0.01 = 7.20;
# volume (240 h x 10 GiB + 240 h x 20 GiB) x 0.01 = 72; IP 360 h x 0.005 = 1.80.
EXPECTED = {1: Decimal("34"), 2: Decimal("7.2"), 3: Decimal("1.8"), 6: Decimal("72")}
TOTAL = Decimal("115")


def statement(session: Session, account: Account) -> dict[int, Decimal]:
    return {
        line.usage_type: line.quota
        for line in quota.statement(session, account.id, M, M + 31 * DAY, None)
    }


def quota_rows(session: Session) -> list[tuple[object, ...]]:
    return [
        (q.account_id, q.usage_type, q.usage_uuid, q.seconds, q.amount_e8, q.start_date)
        for q in session.scalars(select(QuotaUsage).order_by(QuotaUsage.start_date, QuotaUsage.id))
    ]


@pytest.fixture
def month(session: Session) -> tuple[Session, Account, Caller]:
    account = user_account(session)
    script_month(session, account)
    aggregate_month(session)
    tariffs(session)
    return session, account, root_caller(session)


def test_amounts_per_unit_are_exact_decimals() -> None:
    start = at(5)
    # 10 h at 744 per Compute*Month in a 744-hour month: 10.
    assert quota.amount(1, 36000, 10.0, None, Decimal("744"), start) == Decimal("10.00000000")
    # 24 h of 5 GiB at 7.44 per GB*Month: 24 x 5 x 0.01 = 1.2.
    vol = quota.amount(6, 86400, 24.0, 5 * GIB, Decimal("7.44"), start)
    assert vol == Decimal("1.20000000")
    # February 2026 has 672 hours: 1 h at 1 per month is 1/672, rounded half-even to 1e-8.
    feb = quota.amount(3, 3600, 1.0, None, Decimal(1), datetime(2026, 2, 3, tzinfo=UTC))
    assert feb == Decimal("0.00148810")
    assert isinstance(vol, Decimal)


def test_scripted_month_statement_equals_hand_computed(
    month: tuple[Session, Account, Caller],
) -> None:
    session, account, caller = month
    result = quota.calculate(session, caller, ConfigStore())
    assert result.periods == 31
    assert statement(session, account) == EXPECTED
    assert sum(statement(session, account).values()) == TOTAL
    # The tariff change on the 16th: the 1st is charged at 1/h, the 20th at 2/h.
    running = session.execute(
        select(QuotaUsage.start_date, QuotaUsage.amount_e8, QuotaUsage.tariff_e8).where(
            QuotaUsage.account_id == account.id, QuotaUsage.usage_type == 1
        )
    ).all()
    by_day = sorted((r[0].day, qt.from_e8(r[1]), qt.from_e8(r[2])) for r in running)
    assert by_day == [(1, Decimal(10), Decimal(744)), (20, Decimal(24), Decimal(1488))]
    assert quota.balance_at(session, account.id) == -TOTAL


def test_rerun_changes_nothing_and_a_reaggregated_day_is_not_charged_twice(
    month: tuple[Session, Account, Caller],
) -> None:
    session, account, caller = month
    config = ConfigStore()
    quota.calculate(session, caller, config)
    before = quota_rows(session)
    again = quota.calculate(session, caller, config)
    assert (again.periods, again.rows, again.dropped) == (0, 0, 0)
    assert quota_rows(session) == before
    # The 20th aggregated again (new record rows), then an ad-hoc run over its afternoon,
    # which cuts the day in two periods: the quota follows, the total stays the same.
    aggregate.run(session, at(20), at(21))
    aggregate.run(session, at(20, 12), at(21))
    redo = quota.calculate(session, caller, config)
    assert redo.dropped == 1 and redo.periods == 2
    assert statement(session, account) == EXPECTED
    assert (session.scalar(select(func.count(UsageRecord.id))) or 0) > 0


def test_credits_and_balance(month: tuple[Session, Account, Caller]) -> None:
    session, account, caller = month
    config = ConfigStore()
    quota.calculate(session, caller, config)
    quota.add_credit(session, caller, config, account, quota.CreditChange(Decimal("100.25")))
    quota.add_credit(session, caller, config, account, quota.CreditChange(Decimal("-0.25")))
    assert quota.balance_at(session, account.id) == Decimal("100") - TOTAL
    row = quota.quota_account(session, account.id)
    assert qt.from_e8(row.balance_e8) == Decimal("-15")
    # The balance at the middle of the month counts only the periods ended by then, and no
    # credit (credits are dated now).
    # Up to the 16th: running 10, allocated 360 h x 0.01, IP 1.80, volume 240 h x 10 GiB +
    # 120 h x 20 GiB at 0.01.
    mid = quota.balance_at(session, account.id, at(16))
    assert mid == -(Decimal(10) + Decimal("3.6") + Decimal("1.8") + Decimal(24 + 24))


def test_alert_only_by_default_then_enforcement_locks_and_credit_unlocks(
    month: tuple[Session, Account, Caller],
) -> None:
    session, account, caller = month
    config = ConfigStore()
    quota.add_credit(
        session, caller, config, account, quota.CreditChange(Decimal("10"), enforce=True)
    )
    quota.calculate(session, caller, config)
    assert account.state == "enabled"  # enforcement is off by default: alert only
    alerts = session.scalars(
        select(Event.description).where(
            Event.type == "ALERT.GENERATE", Event.account_id == account.id
        )
    ).all()
    assert len(alerts) == 1 and "exhausted" in alerts[0] and "-105.00" in alerts[0]
    quota.calculate(session, caller, config)  # the same state: no second alert
    assert (
        session.scalar(
            select(func.count(Event.id)).where(
                Event.type == "ALERT.GENERATE", Event.account_id == account.id
            )
        )
        == 1
    )
    config.set(session, quota.ENABLE_ENFORCEMENT, "true", "global", 0)
    assert quota.refresh_balances(session, caller, config) == 1
    assert account.state == "locked"
    assert quota.quota_account(session, account.id).locked
    quota.add_credit(session, caller, config, account, quota.CreditChange(Decimal("105")))
    assert account.state == "locked"  # balance exactly zero: still out of credit
    _, locks = quota.add_credit(
        session, caller, config, account, quota.CreditChange(Decimal("0.01"))
    )
    assert locks == 1 and account.state == "enabled"
    assert not quota.quota_account(session, account.id).locked


def test_enforcement_needs_the_accounts_flag_and_spares_root_admins(
    month: tuple[Session, Account, Caller],
) -> None:
    session, account, caller = month
    config = ConfigStore()
    config.set(session, quota.ENABLE_ENFORCEMENT, "true", "global", 0)
    quota.calculate(session, caller, config)
    assert account.state == "enabled"  # quota_enforce never set for it
    admin = session.get(Account, caller.account_id)
    assert admin is not None
    script_month(session, admin, rid=2)
    aggregate_month(session)
    quota.add_credit(session, caller, config, admin, quota.CreditChange(Decimal(0), enforce=True))
    quota.calculate(session, caller, config)
    assert admin.state == "enabled"


def test_tariff_update_is_a_new_version_and_old_periods_keep_their_charge(
    month: tuple[Session, Account, Caller],
) -> None:
    session, account, caller = month
    config = ConfigStore()
    quota.calculate(session, caller, config)
    new = qt.update(session, "alloc", qt.TariffChange(value=Decimal("100")), None)
    assert qt.from_e8(new.value_e8) == Decimal(100) and new.removed is None
    old = session.scalars(
        select(QuotaTariff).where(QuotaTariff.name == "alloc", QuotaTariff.id != new.id)
    ).one()
    assert old.removed is not None
    redo = quota.calculate(session, caller, config)
    assert redo.periods == 31  # a tariff changed: every period is checked again
    assert statement(session, account) == EXPECTED  # March was before the change
    qt.delete(session, new.uuid)
    with pytest.raises(ParamError):
        qt.delete(session, new.uuid)


def test_activation_rules_constant_only() -> None:
    def tariff(rule: str | None) -> QuotaTariff:
        return QuotaTariff(uuid="t", name="t", value_e8=qt.to_e8(Decimal(5)), activation_rule=rule)

    assert qt.rule_value(tariff(None)) == Decimal(5)
    assert qt.rule_value(tariff(" true ")) == Decimal(5)
    assert qt.rule_value(tariff("false")) is None
    assert qt.rule_value(tariff("2.5")) == Decimal("2.5")
    assert qt.rule_value(tariff("if (value.host.tags.includes('a')) { 1 } else { 0 }")) is None


def test_bad_input_writes_nothing(session: Session) -> None:
    def count() -> int:
        return int(session.scalar(select(func.count(QuotaTariff.id))) or 0)

    for bad in (
        dict(usage_type=999, value=Decimal(1)),
        dict(usage_type=119, value=Decimal(1)),  # reserved for object storage, not metered yet
        dict(usage_type=1, value=Decimal(-1)),
        dict(usage_type=1, value=Decimal(1), start=at(10), end=at(9)),
    ):
        with pytest.raises(ParamError):
            qt.create(session, name="bad", user_id=None, **bad)  # type: ignore[arg-type]
    assert count() == 0
    for text in ("-1", "abc", "NaN", "Infinity", "1e12"):
        with pytest.raises(ParamError):
            qt.parse_money(text, "value")
    assert qt.parse_money("-2.5", "credit", negative=True) == Decimal("-2.5")
    qt.create(session, name="dup", usage_type=1, value=Decimal(1), user_id=None)
    with pytest.raises(ParamError):
        qt.create(session, name="dup", usage_type=2, value=Decimal(1), user_id=None)
    assert count() == 1


def test_statement_csv_lines_add_up(month: tuple[Session, Account, Caller]) -> None:
    session, account, caller = month
    quota.calculate(session, caller, ConfigStore())
    text = quota.statement_csv(session, account, account.domain, M, M + 31 * DAY, None)
    lines = text.strip().split("\n")
    assert lines[0].split(",") == list(quota.CSV_HEADER)
    amounts = [Decimal(line.rsplit(",", 1)[1]) for line in lines[1:-1]]
    assert sum(amounts) == TOTAL and lines[-1].endswith(f",{TOTAL:.8f}")


def test_statement_periods() -> None:
    now = datetime(2026, 5, 20, 10, tzinfo=UTC)
    assert quota.statement_period(now, 1) == (
        datetime(2026, 5, 1, tzinfo=UTC),
        datetime(2026, 6, 1, tzinfo=UTC),
    )
    assert quota.statement_period(now, 0)[0] == datetime(2026, 5, 16, tzinfo=UTC)
    assert quota.statement_period(now, 2) == (
        datetime(2026, 4, 1, tzinfo=UTC),
        datetime(2026, 7, 1, tzinfo=UTC),
    )
    dec = datetime(2026, 12, 3, tzinfo=UTC)
    assert quota.statement_period(dec, 4) == (
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )


def test_a_quota_job_follows_aggregation_when_quota_is_enabled(session: Session) -> None:
    caller = root_caller(session)
    config = ConfigStore()
    account = user_account(session)
    script_month(session, account)
    aggregate.run(session, at(1), at(2))
    assert not quota.schedule_update(session, caller, config)  # quota.enable.service is off
    config.set(session, quota.ENABLE_SERVICE, "true", "global", 0)
    assert quota.schedule_update(session, caller, config)
    jobs = session.scalars(select(AsyncJob).where(AsyncJob.cmd == "quotaUpdate")).all()
    assert len(jobs) == 1
    assert not quota.schedule_update(session, caller, config)  # one is already waiting
    jobs[0].status = 1
    quota.calculate(session, caller, config)
    assert not quota.schedule_update(session, caller, config)  # nothing newer than quota
    aggregate.run(session, at(2), at(3))
    assert quota.schedule_update(session, caller, config)


# --- through the job engine: aggregation jobs, then the quota job the usage thread submits ----


@pytest.fixture
def rt(db_url: str, tmp_path: Path) -> Iterator[Runtime]:
    runtime = open_runtime(load_settings(data_dir=tmp_path, database={"url": db_url}))
    yield runtime
    runtime.db.dispose()


def _run_jobs(rt: Runtime) -> list[tuple[str, int]]:
    with rt.db.write() as session:
        row = ManagementServer(name=f"test-{uuid.uuid4().hex[:6]}", pid=1, version="test")
        session.add(row)
        session.flush()
        server = rt.server_id = row.id
    runner = JobRunner(rt)
    while (claimed := queue.claim(rt.db, server, 30, 3)) is not None:
        runner(claimed)
    with rt.db.read() as session:
        return [(j.cmd, j.status) for j in session.scalars(select(AsyncJob).order_by(AsyncJob.id))]


def test_the_usage_thread_runs_quota_after_aggregation(rt: Runtime) -> None:
    import cumulo.api.cloudstack.commands.quota
    import cumulo.api.cloudstack.commands.usage

    assert cumulo.api.cloudstack.commands.quota.quota_update.runner is not None
    with rt.db.write() as session:
        account = user_account(session)
        script_month(session, account)
        tariffs(session)
        rt.config.set(session, quota.ENABLE_SERVICE, "true", "global", 0)
    assert not scheduler.schedule_quota(rt)  # nothing aggregated yet
    assert len(scheduler.schedule(rt, M + 31 * DAY + timedelta(hours=1))) == 31
    assert {s for _, s in _run_jobs(rt)} == {queue.SUCCEEDED}
    assert scheduler.schedule_quota(rt)
    assert not scheduler.schedule_quota(rt)  # one is waiting
    assert _run_jobs(rt)[-1] == ("quotaUpdate", queue.SUCCEEDED)
    assert not scheduler.schedule_quota(rt)  # up to date
    with rt.db.read() as session:
        assert statement(session, account) == EXPECTED
