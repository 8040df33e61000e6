"""Chargeback through the real server and the `cs` client: a scripted month of usage, its
records and statement equal to hand-computed amounts, re-runs that change nothing, who may see
whose quota, bad input refused with nothing written, and enforcement locking an account at
zero balance until a credit unlocks it.

The controlled clock: the usage events of the month are written into the server's ledger
(``usage_events``) with chosen times, for accounts created through the API and resources with
ids no real resource has. Everything after that (aggregation, tariffs, quota calculation,
statements, credits, the lock) goes through the API. Each scenario uses its own past calendar
month and tariffs that end with it, so the shared server's other usage is charged nothing.
"""

from __future__ import annotations

import calendar
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from cs import CloudStack
from sqlalchemy import select

from cumulo.db.engine import Database
from cumulo.db.models import Account
from cumulo.services.usage import events as ev
from tests.integration.tenants import Tenant, client, error, make_domain, make_tenant, uniq
from tests.support.cloud import Cloud

GIB = 1024**3
DAY = timedelta(days=1)
FORMAT = "%Y-%m-%d %H:%M:%S"
DATE = "%Y-%m-%d"


def month_start(months_back: int) -> datetime:
    """The first instant of the calendar month ``months_back`` months before this one."""
    now = datetime.now(UTC)
    index = now.year * 12 + now.month - 1 - months_back
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def days_in(month: datetime) -> int:
    return calendar.monthrange(month.year, month.month)[1]


@dataclass
class Ledger:
    """Writes usage events into the running server's database at chosen times."""

    db: Database

    def event(
        self,
        account_uuid: str,
        type: str,
        when: datetime,
        rtype: str,
        rid: int,
        size: int | None = None,
    ) -> None:
        with self.db.write() as session:
            account = session.scalar(select(Account).where(Account.uuid == account_uuid))
            assert account is not None
            ev.record(
                session,
                type,
                account_id=account.id,
                domain_id=account.domain_id,
                zone_id=None,
                resource_type=rtype,
                resource_id=rid,
                resource_uuid=str(uuid.UUID(int=rid)),
                resource_name=f"{rtype.lower()}-{rid}",
                size=size,
                at=when,
            )


@pytest.fixture(scope="module")
def ledger(cloud: Cloud) -> Iterator[Ledger]:
    url = cloud.env.get("CUMULO_DATABASE__URL") or f"sqlite:///{cloud.data_dir / 'cumulo.db'}"
    db = Database(url)
    yield Ledger(db)
    db.dispose()


def fresh_id() -> int:
    """A resource id no real row has (real ids count up from 1)."""
    return 1_500_000_000 + random.randrange(100_000_000)


def generate_days(admin: CloudStack, month: datetime, days: int) -> None:
    for day in range(days):
        start = month + day * DAY
        admin.generateUsageRecords(
            startdate=start.strftime(FORMAT), enddate=(start + DAY).strftime(FORMAT)
        )


def tariff(
    admin: CloudStack, usage_type: int, value: Decimal, start: datetime, last_day: datetime
) -> dict[str, Any]:
    """A tariff in force from ``start`` through the whole of ``last_day``."""
    body: dict[str, Any] = admin.quotaTariffCreate(
        name=uniq("tariff"),
        usagetype=usage_type,
        value=str(value),
        startdate=start.strftime(FORMAT),
        enddate=last_day.strftime(DATE),
    )["quotatariff"]
    return body


def decimal(value: Any) -> Decimal:
    return Decimal(str(value))


def statement(cs: CloudStack, tenant: Tenant, month: datetime) -> dict[str, Any]:
    last = month + (days_in(month) - 1) * DAY
    body: dict[str, Any] = cs.quotaStatement(
        account=tenant.name,
        domainid=tenant.domain_id,
        startdate=month.strftime(DATE),
        enddate=last.strftime(DATE),
    )["statement"]
    return body


def by_type(body: dict[str, Any]) -> dict[int, Decimal]:
    return {int(i["type"]): decimal(i["quota"]) for i in body.get("quotausage", [])}


# --- the scripted month -----------------------------------------------------------------------

# Hand-computed (rates per hour: running 1 up to the 15th, 2 from the 16th; allocated 0.01;
# volume 0.01 per GiB-hour; IP 0.005): running 10 h x 1 + 12 h x 2 = 34; allocated 600 h x
# 0.01 = 6; volume 240 h x 10 GiB + 240 h x 20 GiB at 0.01 = 72; IP 360 h x 0.005 = 1.8.
EXPECTED = {1: Decimal(34), 2: Decimal(6), 3: Decimal("1.8"), 6: Decimal(72)}
TOTAL = Decimal("113.8")


@dataclass
class Month:
    start: datetime
    tenant: Tenant
    vm: str
    volume: str
    ip: str


@pytest.fixture(scope="module")
def month(cloud: Cloud, ledger: Ledger) -> Month:
    m = month_start(1)
    hours = Decimal(days_in(m) * 24)
    tenant = make_tenant(cloud, make_domain(cloud)["id"])
    vm, vol, ip = fresh_id(), fresh_id(), fresh_id()

    def at(day: int, hour: int = 0) -> datetime:
        return m + (day - 1) * DAY + timedelta(hours=hour)

    for type, when in (
        (ev.VM_CREATE, at(1)),
        (ev.VM_START, at(1, 8)),
        (ev.VM_STOP, at(1, 18)),
        (ev.VM_START, at(20)),
        (ev.VM_STOP, at(20, 12)),
        (ev.VM_DESTROY, at(26)),
    ):
        ledger.event(tenant.account_id, type, when, "VirtualMachine", vm)
    ledger.event(tenant.account_id, ev.VOLUME_CREATE, at(1), "Volume", vol, 10 * GIB)
    ledger.event(tenant.account_id, ev.VOLUME_RESIZE, at(11), "Volume", vol, 20 * GIB)
    ledger.event(tenant.account_id, ev.VOLUME_DELETE, at(21), "Volume", vol, 20 * GIB)
    ledger.event(tenant.account_id, ev.IP_ASSIGN, at(1), "PublicIpAddress", ip)
    ledger.event(tenant.account_id, ev.IP_RELEASE, at(16), "PublicIpAddress", ip)

    admin = client(cloud, cloud.admin)
    last = at(days_in(m))
    # Monthly tariffs that are round per hour in this month (hours x rate); the running-VM
    # tariff doubles on the 16th.
    tariff(admin, 1, hours, m, at(15))
    tariff(admin, 1, hours * 2, at(16), last)
    tariff(admin, 2, hours * Decimal("0.01"), m, last)
    tariff(admin, 6, hours * Decimal("0.01"), m, last)
    tariff(admin, 3, hours * Decimal("0.005"), m, last)
    generate_days(admin, m, days_in(m))
    admin.quotaUpdate()
    return Month(m, tenant, str(uuid.UUID(int=vm)), str(uuid.UUID(int=vol)), str(uuid.UUID(int=ip)))


def test_usage_records_equal_the_scripted_hours(cloud: Cloud, month: Month) -> None:
    admin = client(cloud, cloud.admin)
    last = month.start + (days_in(month.start) - 1) * DAY
    records = admin.listUsageRecords(
        startdate=month.start.strftime(DATE),
        enddate=last.strftime(DATE),
        accountid=month.tenant.account_id,
        fetch_list=True,
    )

    def hours(usage_type: int, usage_id: str) -> list[tuple[int, Decimal]]:
        return sorted(
            (int(r["startdate"][8:10]), decimal(r["rawusage"]))
            for r in records
            if r["usagetype"] == usage_type and r["usageid"] == usage_id
        )

    assert hours(1, month.vm) == [(1, Decimal(10)), (20, Decimal(12))]
    assert sum(h for _, h in hours(2, month.vm)) == 600
    assert len(hours(2, month.vm)) == 25  # one record per day allocated
    volume = [(int(r["size"]), decimal(r["rawusage"])) for r in records if r["usagetype"] == 6]
    assert sum(h for s, h in volume if s == 10 * GIB) == 240
    assert sum(h for s, h in volume if s == 20 * GIB) == 240
    assert sum(h for _, h in hours(3, month.ip)) == 360


def test_statement_equals_the_hand_computed_amounts(cloud: Cloud, month: Month) -> None:
    body = statement(month.tenant.cs, month.tenant, month.start)
    assert by_type(body) == EXPECTED
    assert decimal(body["totalquota"]) == TOTAL
    assert body["accountid"] == month.tenant.account_id
    assert body["domain"] == month.tenant.domain_id and body["currency"] == "$"
    units = {int(i["type"]): i["unit"] for i in body["quotausage"]}
    assert units == {1: "Compute*Month", 2: "Compute*Month", 3: "IP*Month", 6: "GB*Month"}
    # The balance: no credit yet, so minus what was used.
    balance = month.tenant.cs.quotaBalance()["balance"]
    assert decimal(balance["endquota"]) == -TOTAL
    assert balance["accountid"] == month.tenant.account_id


def test_rerunning_the_calculation_changes_nothing(cloud: Cloud, month: Month) -> None:
    admin = client(cloud, cloud.admin)
    before = statement(admin, month.tenant, month.start)
    admin.quotaUpdate()
    assert statement(admin, month.tenant, month.start) == before
    # A day aggregated again (new record rows) and quota run again: still charged once.
    generate_days(admin, month.start + 19 * DAY, 1)
    admin.quotaUpdate()
    again = statement(admin, month.tenant, month.start)
    assert by_type(again) == EXPECTED and decimal(again["totalquota"]) == TOTAL


def test_statement_csv_lists_every_charged_record(cloud: Cloud, month: Month) -> None:
    last = month.start + (days_in(month.start) - 1) * DAY
    body = month.tenant.cs.quotaStatement(
        account=month.tenant.name,
        domainid=month.tenant.domain_id,
        startdate=month.start.strftime(DATE),
        enddate=last.strftime(DATE),
        csv="true",
    )["statement"]
    lines = body["csv"].strip().split("\n")
    assert lines[0].startswith("account,accountid,domain,usagetype")
    rows = [line.split(",") for line in lines[1:-1]]
    assert sum(Decimal(r[-1]) for r in rows) == TOTAL
    assert {r[1] for r in rows} == {month.tenant.account_id}
    assert lines[-1].split(",")[0] == "TOTAL" and Decimal(lines[-1].split(",")[-1]) == TOTAL


def test_credits_raise_the_balance_and_show_in_quota_balance(cloud: Cloud, month: Month) -> None:
    admin = client(cloud, cloud.admin)
    today = datetime.now(UTC).strftime(DATE)
    got = admin.quotaCredits(accountid=month.tenant.account_id, value="150.25")["quotacredits"]
    assert decimal(got["credits"]) == Decimal("150.25") and got["currency"] == "$"
    balance = admin.quotaBalance(accountid=month.tenant.account_id, startdate=today, enddate=today)[
        "balance"
    ]
    assert decimal(balance["endquota"]) == Decimal("150.25") - TOTAL
    assert [decimal(c["credits"]) for c in balance["credits"]] == [Decimal("150.25")]
    summary = month.tenant.cs.quotaSummary()["summary"]
    assert [(s["accountid"], decimal(s["balance"])) for s in summary] == [
        (month.tenant.account_id, Decimal("36.45"))
    ]


# --- who sees what ----------------------------------------------------------------------------


def test_a_user_cannot_read_another_accounts_quota(cloud: Cloud, month: Month) -> None:
    other_domain = make_domain(cloud)["id"]
    stranger = make_tenant(cloud, other_domain)
    other_admin = make_tenant(cloud, other_domain, account_type=2)
    last = month.start + DAY
    statement_params = {
        "account": month.tenant.name,
        "domainid": month.tenant.domain_id,
        "startdate": month.start.strftime(DATE),
        "enddate": last.strftime(DATE),
    }
    attempts: list[tuple[Tenant, str, dict[str, str]]] = [
        (stranger, "quotaStatement", statement_params),
        (stranger, "quotaBalance", {"accountid": month.tenant.account_id}),
        (
            stranger,
            "quotaSummary",
            {"account": month.tenant.name, "domainid": month.tenant.domain_id},
        ),
        (other_admin, "quotaStatement", statement_params),
        (other_admin, "quotaBalance", {"accountid": month.tenant.account_id}),
    ]
    for who, command, params in attempts:
        status, body = error(who.raw(command, **params), command)
        assert status == 531, (command, body)
        text = str(body)
        assert month.tenant.name not in text and month.tenant.account_id not in text
    # A made-up account id gives the same answer: existence is not revealed.
    status, _ = error(stranger.raw("quotaBalance", accountid=str(uuid.uuid4())), "quotaBalance")
    assert status == 531
    for command in ("quotaCredits", "quotaTariffCreate", "quotaUpdate"):
        params = {"value": "1", "accountid": stranger.account_id, "name": "x", "usagetype": "1"}
        status, _ = error(stranger.raw(command, **params), command)
        assert status == 432, command


def test_summary_scopes(cloud: Cloud, month: Month) -> None:
    admin = client(cloud, cloud.admin)
    everyone = {s["accountid"] for s in admin.quotaSummary(listall=True, fetch_list=True)}
    assert month.tenant.account_id in everyone
    da = make_tenant(cloud, month.tenant.domain_id, account_type=2)
    mine = {s["accountid"] for s in da.cs.quotaSummary(listall=True, fetch_list=True)}
    assert mine == {month.tenant.account_id, da.account_id}
    # Money is the root admin's: a domain admin cannot credit even its own account.
    status, _ = error(da.raw("quotaCredits", accountid=da.account_id, value="5"), "quotaCredits")
    assert status == 432
    assert decimal(da.cs.quotaBalance()["balance"]["endquota"]) == 0
    assert [s["accountid"] for s in month.tenant.cs.quotaSummary(listall=True)["summary"]] == [
        month.tenant.account_id
    ]


# --- bad input --------------------------------------------------------------------------------


def test_bad_input_is_refused_and_nothing_is_written(cloud: Cloud, month: Month) -> None:
    admin = client(cloud, cloud.admin)
    name = uniq("bad")
    base = {"name": name, "usagetype": "1", "value": "1"}
    for change in (
        {"usagetype": "999"},  # no such usage type
        {"usagetype": "119"},  # reserved for object storage, not metered yet
        {"value": "-1"},
        {"value": "one"},
        {"startdate": "2026-03-10", "enddate": "2026-03-09"},
    ):
        status, body = error(
            cloud.signed("quotaTariffCreate", cloud.admin, **{**base, **change}),
            "quotaTariffCreate",
        )
        assert status == 431, (change, body)
    assert admin.quotaTariffList(name=name, listall=True) == {}
    before = decimal(admin.quotaBalance(accountid=month.tenant.account_id)["balance"]["endquota"])
    status, _ = error(
        cloud.signed("quotaCredits", cloud.admin, accountid=month.tenant.account_id, value="1e99x"),
        "quotaCredits",
    )
    assert status == 431
    after = decimal(admin.quotaBalance(accountid=month.tenant.account_id)["balance"]["endquota"])
    assert after == before
    status, _ = error(
        month.tenant.raw(
            "quotaStatement",
            account=month.tenant.name,
            domainid=month.tenant.domain_id,
            startdate="2026-03-10",
            enddate="2026-03-09",
        ),
        "quotaStatement",
    )
    assert status == 431


# --- enforcement ------------------------------------------------------------------------------


def account_state(cloud: Cloud, tenant: Tenant) -> str:
    found = client(cloud, cloud.admin).listAccounts(id=tenant.account_id, listall=True)
    state: str = found["account"][0]["state"]
    return state


def test_enforcement_locks_at_zero_balance_and_credit_unlocks(cloud: Cloud, ledger: Ledger) -> None:
    m = month_start(2)  # its own month and tariff: nothing else is charged
    hours = Decimal(days_in(m) * 24)
    tenant = make_tenant(cloud, make_domain(cloud)["id"])
    da = make_tenant(cloud, tenant.domain_id, account_type=2)
    admin = client(cloud, cloud.admin)
    vm = fresh_id()
    ledger.event(tenant.account_id, ev.VM_CREATE, m + DAY, "VirtualMachine", vm)
    ledger.event(tenant.account_id, ev.VM_START, m + DAY, "VirtualMachine", vm)
    ledger.event(tenant.account_id, ev.VM_STOP, m + DAY + timedelta(hours=5), "VirtualMachine", vm)
    ledger.event(tenant.account_id, ev.VM_DESTROY, m + 2 * DAY, "VirtualMachine", vm)
    tariff(admin, 1, hours, m, m + (days_in(m) - 1) * DAY)  # 1 per running hour: 5 in all
    admin.quotaCredits(accountid=tenant.account_id, value="5", quota_enforce="true")
    admin.updateConfiguration(name="quota.enable.enforcement", value="true")
    try:
        generate_days(admin, m, 3)
        admin.quotaUpdate()  # 5 credit - 5 used = 0: credit has run out
        assert account_state(cloud, tenant) == "locked"
        balance = admin.quotaBalance(accountid=tenant.account_id)["balance"]
        assert decimal(balance["endquota"]) == 0
        # A locked account cannot deploy: its own keys no longer verify, and an admin of its
        # domain deploying for it is refused.
        resp = tenant.raw("listVirtualMachines")
        assert resp.status_code == 401
        status, body = error(
            da.raw(
                "deployVirtualMachine",
                account=tenant.name,
                domainid=tenant.domain_id,
                zoneid=str(uuid.uuid4()),
                serviceofferingid=str(uuid.uuid4()),
                templateid=str(uuid.uuid4()),
            ),
            "deployVirtualMachine",
        )
        assert status == 531 and tenant.name in body["errortext"], body
        alerts = admin.listEvents(type="ACCOUNT.DISABLE", listall=True, fetch_list=True)
        assert any(
            e["description"].startswith(f"Account {tenant.name} locked by quota") for e in alerts
        )
        # Credit brings the balance above zero: unlocked, the keys work again.
        admin.quotaCredits(accountid=tenant.account_id, value="0.01")
        assert account_state(cloud, tenant) == "enabled"
        assert tenant.raw("listVirtualMachines").status_code == 200
    finally:
        admin.updateConfiguration(name="quota.enable.enforcement", value="false")


def test_quota_is_enabled_reports_the_setting(cloud: Cloud) -> None:
    user = make_tenant(cloud)
    assert user.cs.quotaIsEnabled()["isenabled"] == {"isenabled": False}


def test_tariff_update_adds_a_version_and_delete_ends_it(cloud: Cloud) -> None:
    admin = client(cloud, cloud.admin)
    name = uniq("future")
    # In force from 2099 only: charges nothing this session.
    first = admin.quotaTariffCreate(
        name=name, usagetype=9, value="1.5", startdate="2099-01-01", description="snapshots"
    )["quotatariff"]
    assert (first["usageType"], first["usageName"], first["usageUnit"]) == (
        9,
        "SNAPSHOT",
        "GB*Month",
    )
    assert decimal(first["tariffValue"]) == Decimal("1.5") and first["name"] == name
    assert first["effectiveDate"].startswith("2099-01-01T00:00:00")
    second = admin.quotaTariffUpdate(name=name, value="2.25")["quotatariff"]
    assert decimal(second["tariffValue"]) == Decimal("2.25") and second["uuid"] != first["uuid"]
    assert second["effectiveDate"] == first["effectiveDate"]  # its start was still to come
    assert second["description"] == "snapshots"
    active = admin.quotaTariffList(name=name)["quotatariff"]
    assert [t["uuid"] for t in active] == [second["uuid"]]
    versions = admin.quotaTariffList(name=name, listall=True)["quotatariff"]
    assert {t["uuid"]: "removed" in t for t in versions} == {
        first["uuid"]: True,
        second["uuid"]: False,
    }
    assert admin.quotaTariffDelete(id=second["uuid"])["success"] in (True, "true")
    assert admin.quotaTariffList(name=name) == {}
    status, _ = error(
        cloud.signed("quotaTariffDelete", cloud.admin, id=second["uuid"]), "quotaTariffDelete"
    )
    assert status == 431
    created = admin.listEvents(type="QUOTA.TARIFF.CREATE", listall=True, fetch_list=True)
    assert any(e.get("resourcename") == name or name in e["description"] for e in created)
