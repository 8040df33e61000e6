"""Chargeback (CloudStack's quota plugin): usage records → quota per account, balances,
credits, and what happens when credit runs out.

**Calculation** (``calculate``), run by ``quotaUpdate`` and by a job the usage thread submits
after aggregation: for every aggregated period (a ``usage_jobs`` row in state Done) whose
quota is missing or older than its records or than the last tariff change, the period's quota
rows are deleted and written anew from its usage records, in one transaction. A record is
charged with the tariffs in force at the start of its period (so a tariff change takes effect
from the first period starting at or after it; with daily periods, from that day):

- ``*Month`` time units (Compute, IP, Policy, Network, VPC): hours * tariff / hours of the
  record's month (CloudStack prorates a monthly tariff over the month's hours);
- ``GB*Month``: hours * size in GiB * tariff / hours of the month;
- ``GB``: bytes / GiB * tariff; ``IOPS`` and ``Bytes``: raw usage * tariff.

Each record's amount is rounded half-even to 10⁻⁸. Periods the aggregator cut and redid are
dropped with their quota. The result depends only on records and tariffs, so a re-run gives
the same figures and a period is never charged twice.

**Balance** = credits - quota used, per account, refreshed after each run and on each credit.
**When credit runs out** (balance ≤ 0 after some quota was charged): an alert event
(``ALERT.GENERATE``, WARN) and a log line, once per transition; below the account's minimum
balance a "low" alert likewise. The account is locked only when ``quota.enable.enforcement``
is true AND the account's ``quota_enforce`` flag is set (``quotaCredits``), as in CloudStack;
root-admin accounts are never locked. A credit that brings the balance above zero unlocks an
account the quota locked (and only those).
"""

from __future__ import annotations

import calendar
import csv
import io
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, cast

from sqlalchemy import Table, and_, delete, func, insert, select, true
from sqlalchemy.orm import Session

from cumulo.common.time import aware, utcnow
from cumulo.db.models import Account, AsyncJob, Domain
from cumulo.db.models_quota import QuotaAccount, QuotaCredit, QuotaPeriod, QuotaTariff, QuotaUsage
from cumulo.db.models_usage import UsageJob, UsageRecord
from cumulo.services import events
from cumulo.services.access import AccountType, Caller
from cumulo.services.config import ConfigKey, ConfigStore, define
from cumulo.services.identity import accounts
from cumulo.services.usage import quota_tariffs as qt
from cumulo.services.usage.aggregate import DONE
from cumulo.services.usage.types import USAGE_TYPES

log = logging.getLogger(__name__)
QUOTA_ROWS = cast(Table, QuotaUsage.__table__)
JOB_COMMAND = "quotaUpdate"

ENABLE_SERVICE = define(
    ConfigKey(
        "quota.enable.service",
        "Advanced",
        "Boolean",
        "false",
        "Indicates whether Quota plugin is enabled or not.",
        component="QuotaManager",
        group="Usage Server",
    )
)
ENABLE_ENFORCEMENT = define(
    ConfigKey(
        "quota.enable.enforcement",
        "Advanced",
        "Boolean",
        "false",
        "Enable the usage quota enforcement, i.e. on reaching zero balance the account will "
        "be locked.",
        component="QuotaManager",
        group="Usage Server",
    )
)
CURRENCY_SYMBOL = define(
    ConfigKey(
        "quota.currency.symbol",
        "Advanced",
        "String",
        "$",
        "The symbol for the currency in use to measure usage.",
        component="QuotaManager",
        group="Usage Server",
    )
)
STATEMENT_PERIOD = define(
    ConfigKey(
        "quota.statement.period",
        "Advanced",
        "Integer",
        "1",
        "The period at which statement is sent: 0 Bi-Monthly, 1 Monthly, 2 Quarterly, "
        "3 Half-Yearly, 4 Yearly (Cumulo: the period quotaSummary reports).",
        component="QuotaManager",
        group="Usage Server",
        min=0,
        max=4,
    )
)


def currency(session: Session, config: ConfigStore) -> str:
    return str(config.get(session, CURRENCY_SYMBOL))


# --- amounts ------------------------------------------------------------------------------


def hours_in_month(when: datetime) -> int:
    """Hours of the (UTC) calendar month holding ``when``."""
    t = aware(when).astimezone(UTC)
    return calendar.monthrange(t.year, t.month)[1] * 24


def amount(
    usage_type: int,
    seconds: int,
    raw_usage: float,
    size: int | None,
    tariff: Decimal,
    start: datetime,
) -> Decimal:
    """One record's quota, exactly (see the module docstring), rounded to 10⁻⁸."""
    unit = qt.QUOTA_UNITS.get(usage_type)
    hours = Decimal(seconds) / 3600
    month = Decimal(hours_in_month(start))
    if unit in qt.TIME_UNITS:
        value = hours * tariff / month
    elif unit == qt.GB_MONTH:
        value = hours * (Decimal(size or 0) / qt.GIB) * tariff / month
    elif unit == qt.GB:
        value = Decimal(repr(raw_usage)) / qt.GIB * tariff
    elif unit in (qt.IOPS, qt.BYTES):
        value = Decimal(repr(raw_usage)) * tariff
    else:
        value = Decimal(0)
    return value.quantize(qt.EIGHT, ROUND_HALF_EVEN)


# --- calculation --------------------------------------------------------------------------


@dataclass(frozen=True)
class RunResult:
    periods: int  # periods (re)computed
    rows: int  # quota rows written
    dropped: int  # stale periods removed
    locks: int = 0  # accounts locked or unlocked (the caller drops cached API keys)


def calculate(session: Session, caller: Caller, config: ConfigStore) -> RunResult:
    """Bring quota up to date with the aggregated periods, then balances and alerts."""
    done = {
        (aware(j.start_date), aware(j.end_date)): aware(j.finished or j.created)
        for j in session.scalars(select(UsageJob).where(UsageJob.state == DONE))
    }
    computed = {
        (aware(p.start_date), aware(p.end_date)): p for p in session.scalars(select(QuotaPeriod))
    }
    tariffs_changed = session.scalar(select(func.max(QuotaTariff.updated_on)))
    changed_at = aware(tariffs_changed) if tariffs_changed is not None else None
    dropped = 0
    for key, marker in computed.items():
        if key not in done:
            _delete_period(session, *key)
            session.delete(marker)
            dropped += 1
    book = qt.TariffBook.load(session)
    now = utcnow()
    periods = rows = 0
    for (start, end), finished in sorted(done.items()):
        found = computed.get((start, end))
        if found is not None:
            at = aware(found.computed)
            if at >= finished and (changed_at is None or at >= changed_at):
                continue
        written = _compute_period(session, book, start, end)
        rows += written
        marker = found or QuotaPeriod(start_date=start, end_date=end, computed=now)
        if found is None:
            session.add(marker)
        marker.computed, marker.records = now, written
        periods += 1
    session.flush()
    locks = refresh_balances(session, caller, config)
    return RunResult(periods, rows, dropped, locks)


def _delete_period(session: Session, start: datetime, end: datetime) -> None:
    session.execute(
        delete(QuotaUsage).where(and_(QuotaUsage.start_date == start, QuotaUsage.end_date == end))
    )


def _compute_period(session: Session, book: qt.TariffBook, start: datetime, end: datetime) -> int:
    _delete_period(session, start, end)
    records = session.scalars(
        select(UsageRecord)
        .where(UsageRecord.start_date == start, UsageRecord.end_date == end)
        .order_by(UsageRecord.id)
    ).all()
    out: list[dict[str, Any]] = []
    for r in records:
        tariff = book.value_at(r.usage_type, start)
        value = amount(r.usage_type, r.seconds, r.raw_usage, r.size, tariff, start)
        out.append(
            dict(
                account_id=r.account_id,
                domain_id=r.domain_id,
                usage_type=r.usage_type,
                usage_uuid=r.usage_uuid,
                description=r.description,
                seconds=r.seconds,
                size=r.size,
                tariff_e8=qt.to_e8(tariff),
                amount_e8=qt.to_e8(value),
                start_date=start,
                end_date=end,
            )
        )
    if out:
        session.connection().execute(insert(QUOTA_ROWS), out)
    return len(out)


def schedule_update(session: Session, caller: Caller, config: ConfigStore) -> bool:
    """Submit a quotaUpdate job when quota is enabled, some aggregated period is newer than
    its quota, and no such job is waiting (the usage thread calls this each tick)."""
    from cumulo.services.jobs import queue  # the job engine; imported where it is used

    if not config.get(session, ENABLE_SERVICE):
        return False
    if not _stale(session):
        return False
    pending = session.scalar(
        select(func.count(AsyncJob.id)).where(AsyncJob.cmd == JOB_COMMAND, AsyncJob.status == 0)
    )
    if pending:
        return False
    queue.submit(session, caller, JOB_COMMAND, {})
    return True


def _stale(session: Session) -> bool:
    newest_done = session.scalar(select(func.max(UsageJob.finished)).where(UsageJob.state == DONE))
    if newest_done is None:
        return False
    oldest_computed = session.scalar(select(func.min(QuotaPeriod.computed)))
    done_count = session.scalar(select(func.count()).where(UsageJob.state == DONE))
    period_count = session.scalar(select(func.count(QuotaPeriod.id)))
    if oldest_computed is None or done_count != period_count:
        return True
    return aware(newest_done) > aware(oldest_computed)


# --- balances, credits, enforcement ---------------------------------------------------------


def used_e8(
    session: Session, account_id: int | None = None, until: datetime | None = None
) -> dict[int, int]:
    stmt = select(QuotaUsage.account_id, func.sum(QuotaUsage.amount_e8)).group_by(
        QuotaUsage.account_id
    )
    if account_id is not None:
        stmt = stmt.where(QuotaUsage.account_id == account_id)
    if until is not None:
        stmt = stmt.where(QuotaUsage.end_date <= until)
    return {a: int(v or 0) for a, v in session.execute(stmt).all()}


def credits_e8(
    session: Session, account_id: int | None = None, until: datetime | None = None
) -> dict[int, int]:
    stmt = select(QuotaCredit.account_id, func.sum(QuotaCredit.amount_e8)).group_by(
        QuotaCredit.account_id
    )
    if account_id is not None:
        stmt = stmt.where(QuotaCredit.account_id == account_id)
    if until is not None:
        stmt = stmt.where(QuotaCredit.created <= until)
    return {a: int(v or 0) for a, v in session.execute(stmt).all()}


def balance_at(session: Session, account_id: int, until: datetime | None = None) -> Decimal:
    """Credits - quota used, counting credits made and periods ended by ``until``."""
    got = credits_e8(session, account_id, until).get(account_id, 0)
    used = used_e8(session, account_id, until).get(account_id, 0)
    return qt.from_e8(got - used)


def quota_account(session: Session, account_id: int) -> QuotaAccount:
    row = session.get(QuotaAccount, account_id)
    if row is None:
        row = QuotaAccount(
            account_id=account_id, min_balance_e8=0, enforce=False, balance_e8=0, locked=False
        )
        session.add(row)
        session.flush()
    return row


def refresh_balances(
    session: Session, caller: Caller, config: ConfigStore, account_id: int | None = None
) -> int:
    """Balances from scratch (credits - quota used), then alerts and locks; the number of
    accounts locked or unlocked."""
    used = used_e8(session, account_id)
    got = credits_e8(session, account_id)
    ids = set(used) | set(got)
    ids |= set(
        session.scalars(
            select(QuotaAccount.account_id).where(
                QuotaAccount.account_id == account_id if account_id is not None else true()
            )
        )
    )
    enforcement = bool(config.get(session, ENABLE_ENFORCEMENT))
    now = utcnow()
    changes = 0
    for acct in sorted(ids):
        row = quota_account(session, acct)
        row.balance_e8, row.balance_date = got.get(acct, 0) - used.get(acct, 0), now
        was = row.locked
        _check(session, caller, row, used.get(acct, 0) > 0, enforcement, now)
        changes += row.locked != was
    session.flush()
    return changes


def _check(
    session: Session,
    caller: Caller,
    row: QuotaAccount,
    charged: bool,
    enforcement: bool,
    now: datetime,
) -> None:
    """Alert once per transition; lock or unlock as the module docstring says."""
    account = session.get(Account, row.account_id)
    if account is None or account.removed is not None:
        return
    balance = qt.from_e8(row.balance_e8)
    shown = f"{balance.quantize(qt.CENTS, ROUND_HALF_EVEN)}"
    if charged and row.balance_e8 <= 0:
        if row.alert != "empty":
            _alert(session, caller, account, f"Quota credit exhausted: balance {shown}")
            row.alert, row.alert_date = "empty", now
        if enforcement and row.enforce and _lockable(account):
            accounts.set_state(session, account, accounts.LOCKED)
            row.locked = True
            events.record(
                session,
                caller,
                "ACCOUNT.DISABLE",
                f"Account {account.name} locked by quota enforcement: balance {shown}",
                level="WARN",
                resource_id=account.uuid,
                resource_type="Account",
                resource_name=account.name,
                account_id=account.id,
                domain_id=account.domain_id,
            )
            log.warning("quota: account locked", extra={"account": account.uuid})
        return
    if charged and row.balance_e8 < row.min_balance_e8:
        if row.alert != "low":
            _alert(session, caller, account, f"Quota credit low: balance {shown}")
            row.alert, row.alert_date = "low", now
    else:
        row.alert = None
    if row.locked and row.balance_e8 > 0:
        unlock(session, caller, account, row, shown)


def _lockable(account: Account) -> bool:
    return account.type != AccountType.ADMIN and account.state == accounts.ENABLED


def unlock(
    session: Session, caller: Caller, account: Account, row: QuotaAccount, shown: str
) -> None:
    if account.state == accounts.LOCKED:
        accounts.set_state(session, account, accounts.ENABLED)
        events.record(
            session,
            caller,
            "ACCOUNT.ENABLE",
            f"Account {account.name} unlocked: quota balance {shown}",
            resource_id=account.uuid,
            resource_type="Account",
            resource_name=account.name,
            account_id=account.id,
            domain_id=account.domain_id,
        )
    row.locked = False


def _alert(session: Session, caller: Caller, account: Account, text: str) -> None:
    """The alert hook: an event now; the event bus / alerts module can pick these up."""
    log.warning("quota alert", extra={"account": account.uuid, "text": text})
    events.record(
        session,
        caller,
        "ALERT.GENERATE",
        f"{text} (account {account.name})",
        level="WARN",
        resource_id=account.uuid,
        resource_type="Account",
        resource_name=account.name,
        account_id=account.id,
        domain_id=account.domain_id,
    )


@dataclass(frozen=True)
class CreditChange:
    value: Decimal
    min_balance: Decimal | None = None
    enforce: bool | None = None


def add_credit(
    session: Session, caller: Caller, config: ConfigStore, account: Account, change: CreditChange
) -> tuple[QuotaCredit, int]:
    """Record a credit (or debit) and refresh the account's balance; the credit and the
    number of lock changes (0 or 1)."""
    credit = QuotaCredit(
        account_id=account.id,
        domain_id=account.domain_id,
        amount_e8=qt.to_e8(change.value),
        created=utcnow(),
        updated_by=caller.user_id,
    )
    session.add(credit)
    row = quota_account(session, account.id)
    if change.min_balance is not None:
        row.min_balance_e8 = qt.to_e8(change.min_balance)
    if change.enforce is not None:
        row.enforce = change.enforce
    session.flush()
    return credit, refresh_balances(session, caller, config, account.id)


def credits_between(
    session: Session, account_id: int, start: datetime, end: datetime
) -> list[QuotaCredit]:
    return list(
        session.scalars(
            select(QuotaCredit)
            .where(
                QuotaCredit.account_id == account_id,
                QuotaCredit.created >= start,
                QuotaCredit.created < end,
            )
            .order_by(QuotaCredit.created.desc(), QuotaCredit.id.desc())
        )
    )


# --- statements ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StatementLine:
    usage_type: int
    quota: Decimal


def statement(
    session: Session, account_id: int, start: datetime, end: datetime, usage_type: int | None
) -> list[StatementLine]:
    """Quota per usage type for the periods inside ``[start, end)``."""
    stmt = (
        select(QuotaUsage.usage_type, func.sum(QuotaUsage.amount_e8))
        .where(
            QuotaUsage.account_id == account_id,
            QuotaUsage.start_date >= start,
            QuotaUsage.end_date <= end,
        )
        .group_by(QuotaUsage.usage_type)
        .order_by(QuotaUsage.usage_type)
    )
    if usage_type is not None:
        stmt = stmt.where(QuotaUsage.usage_type == usage_type)
    return [StatementLine(t, qt.from_e8(int(v or 0))) for t, v in session.execute(stmt).all()]


def used_between(
    session: Session, account_ids: Iterable[int], start: datetime, end: datetime
) -> dict[int, Decimal]:
    ids = list(account_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(QuotaUsage.account_id, func.sum(QuotaUsage.amount_e8))
        .where(
            QuotaUsage.account_id.in_(ids),
            QuotaUsage.start_date >= start,
            QuotaUsage.end_date <= end,
        )
        .group_by(QuotaUsage.account_id)
    ).all()
    return {a: qt.from_e8(int(v or 0)) for a, v in rows}


CSV_HEADER = (
    "account",
    "accountid",
    "domain",
    "usagetype",
    "usagename",
    "unit",
    "usageid",
    "description",
    "startdate",
    "enddate",
    "hours",
    "size",
    "tariff",
    "quota",
)


def statement_csv(
    session: Session,
    account: Account,
    domain: Domain,
    start: datetime,
    end: datetime,
    usage_type: int | None,
) -> str:
    """The statement's lines as CSV: one row per usage record charged, then a total row.
    Amounts at full precision (10⁻⁸), hours exact to the second."""
    stmt = (
        select(QuotaUsage)
        .where(
            QuotaUsage.account_id == account.id,
            QuotaUsage.start_date >= start,
            QuotaUsage.end_date <= end,
        )
        .order_by(QuotaUsage.start_date, QuotaUsage.usage_type, QuotaUsage.id)
    )
    if usage_type is not None:
        stmt = stmt.where(QuotaUsage.usage_type == usage_type)
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(CSV_HEADER)
    total = Decimal(0)
    fmt = "%Y-%m-%d %H:%M:%S"
    for q in session.scalars(stmt):
        value = qt.from_e8(q.amount_e8)
        total += value
        hours = (Decimal(q.seconds) / 3600).quantize(Decimal("0.000001"), ROUND_HALF_EVEN)
        out.writerow(
            (
                account.name,
                account.uuid,
                domain.uuid,
                q.usage_type,
                USAGE_TYPES.get(q.usage_type, ("", ""))[0],
                qt.QUOTA_UNITS.get(q.usage_type, ""),
                q.usage_uuid or "",
                q.description,
                aware(q.start_date).strftime(fmt),
                (aware(q.end_date) - timedelta(seconds=1)).strftime(fmt),
                f"{hours.normalize():f}",
                q.size if q.size is not None else "",
                f"{qt.from_e8(q.tariff_e8)}",
                f"{value}",
            )
        )
    out.writerow(
        ("TOTAL", account.uuid, domain.uuid, "", "", "", "", "", "", "", "", "", "", f"{total}")
    )
    return buf.getvalue()


# --- statement periods ----------------------------------------------------------------------


def statement_period(now: datetime, kind: int) -> tuple[datetime, datetime]:
    """The statement period holding ``now`` (quota.statement.period), in UTC."""
    t = aware(now).astimezone(UTC)
    first = t.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if kind == 0:  # bi-monthly: the 1st-15th, the 16th-end
        if t.day <= 15:
            return first, first.replace(day=16)
        return first.replace(day=16), _add_months(first, 1)
    months = {1: 1, 2: 3, 3: 6, 4: 12}.get(kind, 1)
    index = (t.month - 1) // months * months
    start = first.replace(month=index + 1)
    return start, _add_months(start, months)


def _add_months(t: datetime, months: int) -> datetime:
    total = t.month - 1 + months
    return t.replace(year=t.year + total // 12, month=total % 12 + 1)
