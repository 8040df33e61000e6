"""Usage: listUsageRecords, generateUsageRecords, listUsageTypes, removeRawUsageRecords
(reference §7.1).

Admins only, as in CloudStack: the root admin sees every account's records, a domain admin
those of its domain subtree. Records cover whole aggregation periods; a query selects the
records whose period lies inside ``[startdate, enddate]`` (a date without a time means the
whole of that day, as CloudStack reads it).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Annotated, Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from cumulo.api.cloudstack.registry import Kind, Param, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx, Listing, Success
from cumulo.common.time import aware, to_wire, utcnow
from cumulo.db.models import Account, Domain
from cumulo.db.models_infra import Zone
from cumulo.db.models_usage import UsageRecord
from cumulo.services.access import ADMINS, ROOT_ADMIN, Caller, ListScope, find_domain
from cumulo.services.errors import ParamError
from cumulo.services.usage import aggregate, scheduler
from cumulo.services.usage.types import USAGE_TYPES

RECORD_FIELDS = (
    "account",
    "accountid",
    "domainid",
    "domain",
    "domainpath",
    "zoneid",
    "description",
    "usage",
    "usagetype",
    "rawusage",
    "virtualmachineid",
    "name",
    "offeringid",
    "templateid",
    "usageid",
    "type",
    "size",
    "virtualsize",
    "cpunumber",
    "cpuspeed",
    "memory",
    "startdate",
    "enddate",
)
DATE_HELP = ' (use format "yyyy-MM-dd" or the new format "yyyy-MM-dd HH:mm:ss")'
OLD_FORMAT = "%Y-%m-%d %H:%M:%S"


def decimal(value: float) -> str:
    """Java's DecimalFormat("#.######"), which CloudStack formats usage with."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return text or "0"


def inclusive_end(enddate: datetime) -> datetime:
    """The first instant after the query: a bare date (midnight) means its whole day."""
    if enddate.time() == time(0):
        return enddate + timedelta(days=1)
    return enddate + timedelta(seconds=1)


def usage_scope(
    session: Session,
    caller: Caller,
    account: str | None,
    accountid: str | None,
    domainid: str | None,
    isrecursive: bool,
) -> ListScope:
    """CloudStack's listUsageRecords: a named account, a domain, or all the caller manages."""
    if accountid is not None:
        return ListScope(account_id=_account(session, caller, Account.uuid == accountid).id)
    domain = find_domain(session, domainid) if domainid is not None else None
    if domain is not None:
        caller.check_domain(domain)
    if account is not None:
        in_domain = domain.id if domain is not None else caller.domain_id
        found = _account(session, caller, Account.name == account, Account.domain_id == in_domain)
        return ListScope(account_id=found.id)
    if domain is not None:
        return ListScope(domain_path=domain.path, recursive=isrecursive)
    if caller.is_root_admin:
        return ListScope()
    return ListScope(domain_path=caller.domain_path, recursive=True)


def _account(session: Session, caller: Caller, *where: Any) -> Account:
    found = session.scalar(select(Account).where(Account.removed.is_(None), *where))
    if found is None:
        raise ParamError("Unable to find account by the given name or id")
    caller.check_account(found)
    return found


def select_records(
    scope: ListScope, start: datetime, end: datetime, usage_type: int | None, usage_id: str | None
) -> Select[UsageRecord, Account, Domain, str]:
    stmt = (
        select(UsageRecord, Account, Domain, Zone.uuid)
        .join(Account, UsageRecord.account_id == Account.id)
        .join(Domain, UsageRecord.domain_id == Domain.id)
        .outerjoin(Zone, UsageRecord.zone_id == Zone.id)
        .where(scope.where(UsageRecord.account_id, Domain.path))
        .where(UsageRecord.start_date >= start, UsageRecord.end_date <= end)
    )
    if usage_type is not None:
        stmt = stmt.where(UsageRecord.usage_type == usage_type)
    if usage_id is not None:
        stmt = stmt.where(UsageRecord.usage_uuid == usage_id)
    return stmt.order_by(UsageRecord.start_date, UsageRecord.usage_type, UsageRecord.id)


def _date(value: datetime, old: bool) -> str | None:
    return aware(value).strftime(OLD_FORMAT) if old else to_wire(value)


def record_response(
    r: UsageRecord, account: Account, domain: Domain, zone: str | None, old: bool
) -> dict[str, Any]:
    hours = decimal(r.raw_usage)
    return {
        "account": account.name,
        "accountid": account.uuid,
        "domainid": domain.uuid,
        "domain": domain.name,
        "domainpath": "ROOT" + domain.path.rstrip("/"),
        "zoneid": zone,
        "description": r.description,
        "usage": f"{hours} Hrs",
        "usagetype": r.usage_type,
        "rawusage": hours,
        "virtualmachineid": r.vm_uuid,
        "name": r.vm_name,
        "offeringid": r.offering_uuid,
        "templateid": r.template_uuid,
        "usageid": r.usage_uuid,
        "type": r.resource_type,
        "size": r.size,
        "virtualsize": r.virtual_size,
        "cpunumber": r.cpu_number,
        "cpuspeed": r.cpu_speed,
        "memory": r.memory,
        "startdate": _date(r.start_date, old),
        # CloudStack's periods end at the last second inside them (…T23:59:59).
        "enddate": _date(aware(r.end_date) - timedelta(seconds=1), old),
    }


@command(
    "listUsageRecords",
    kind=Kind.LIST,
    description="Lists usage records for accounts",
    response="usagerecord",
    roles=ADMINS,
    fields=RECORD_FIELDS,
    since="2.2.0",
)
def list_usage_records(
    ctx: Ctx,
    startdate: Annotated[
        datetime, Param("Start date range for usage record query" + DATE_HELP, required=True)
    ],
    enddate: Annotated[
        datetime, Param("End date range for usage record query" + DATE_HELP, required=True)
    ],
    type: Annotated[int | None, Param("List usage records for the specified usage type")] = None,
    usageid: Annotated[
        str | None,
        Param(
            "List usage records for the specified usage UUID. Can be used only "
            "together with TYPE parameter."
        ),
    ] = None,
    account: Annotated[str | None, Param("List usage records for the specified user.")] = None,
    accountid: Annotated[
        UUIDStr | None, Param("List usage records for the specified account", entity="Account")
    ] = None,
    domainid: Annotated[
        UUIDStr | None, Param("List usage records for the specified domain.", entity="Domain")
    ] = None,
    projectid: Annotated[
        UUIDStr | None, Param("List usage records for specified project", entity="Project")
    ] = None,
    includetags: Annotated[
        bool, Param("Flag to enable display of Tags for a resource", since="4.8.0")
    ] = False,
    oldformat: Annotated[
        bool,
        Param(
            "Flag to enable description rendered in old format which uses internal "
            "database IDs instead of UUIDs. False by default.",
            since="4.13",
        ),
    ] = False,
    isrecursive: Annotated[
        bool,
        Param("Specify if usage records should be fetched recursively per domain.", since="4.15"),
    ] = False,
) -> Listing:
    if startdate > enddate:
        raise ParamError("Incorrect Date Range. Start date: later than End date")
    if usageid is not None and type is None:
        raise ParamError("Usage Type must be specified with usageid")
    if type is not None and type not in USAGE_TYPES:
        raise ParamError(f"Unknown usage type {type}")
    if projectid is not None:
        raise ParamError(f"Unable to find project by id {projectid}")
    scope = usage_scope(ctx.session, ctx.caller, account, accountid, domainid, isrecursive)
    stmt = select_records(scope, startdate, inclusive_end(enddate), type, usageid)
    rows, total = ctx.page_rows(stmt)
    return Listing([record_response(r[0], r[1], r[2], r[3], oldformat) for r in rows], total)


@command(
    scheduler.JOB_COMMAND,  # "generateUsageRecords": the scheduled job runs it too
    description="Generates usage records. This will generate records only if there are any "
    "records to be generated, i.e. if the scheduled usage job was not run or failed",
    roles=ROOT_ADMIN,
    fields=("success", "displaytext"),
    since="2.2.0",
)
def generate_usage_records(
    ctx: Ctx,
    startdate: Annotated[
        datetime, Param("Start date range for usage record query" + DATE_HELP, required=True)
    ],
    enddate: Annotated[
        datetime, Param("End date range for usage record query" + DATE_HELP, required=True)
    ],
    domainid: Annotated[
        UUIDStr | None,
        Param(
            "List events for the specified domain (accepted; a period is aggregated for "
            "every domain, so that periods never overlap).",
            entity="Domain",
        ),
    ] = None,
) -> Success:
    """Aggregate ``[startdate, enddate)`` now, in this request's transaction."""
    if domainid is not None:
        ctx.caller.check_domain(find_domain(ctx.session, domainid))
    aggregate.run(ctx.session, startdate, enddate)
    return Success()


@generate_usage_records.runs
def run_scheduled_period(ctx: Ctx, period_start: str, period_end: str) -> Success:
    """The scheduler's job body (``services.usage.scheduler``): one period, idempotent."""
    start, end = datetime.fromisoformat(period_start), datetime.fromisoformat(period_end)
    aggregate.run(ctx.session, start, end, job_uuid=ctx.job_id)
    return Success()


@command(
    "listUsageTypes",
    description="List Usage Types",
    response="usagetype",
    roles=ADMINS,
    fields=("usagetypeid", "name", "description"),
    since="2.2.0",
)
def list_usage_types(ctx: Ctx) -> Listing:
    items = [
        {"usagetypeid": tid, "name": name, "description": text}
        for tid, (name, text) in sorted(USAGE_TYPES.items())
    ]
    return Listing(items, len(items))


@command(
    "removeRawUsageRecords",
    description="Safely removes raw records from cloud_usage table",
    roles=ROOT_ADMIN,
    event="USAGE.REMOVE.USAGE.RECORDS",
    fields=("success", "displaytext"),
    since="4.6.0",
)
def remove_raw_usage_records(
    ctx: Ctx,
    interval: Annotated[
        int,
        Param(
            "Specify interval (in days) in which the raw usage records older than this "
            "will be removed",
            required=True,
        ),
    ],
) -> Success:
    if interval <= 0:
        raise ParamError("Interval should be greater than 0")
    aggregate.remove_raw(ctx.session, utcnow() - timedelta(days=interval))
    return Success()
