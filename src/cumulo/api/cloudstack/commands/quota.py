"""Chargeback: CloudStack's quota plugin commands (quotaTariffList/Create/Update/Delete,
quotaBalance, quotaStatement, quotaCredits, quotaSummary, quotaUpdate, quotaIsEnabled).

Responses use the plugin's field names (``usageType``, ``tariffValue``, ``effectiveDate`` …
are camelCase there). Money is exact ``Decimal`` inside and a JSON number on the wire:
balances and credits rounded to cents as CloudStack does, tariffs and statement amounts to
10⁻⁸.

Who sees what: a user its own account only; a domain admin the accounts of its domain
subtree; the root admin every account. Asking for another tenant's account gives 531 with a
text that names nothing of it, whether or not it exists.

CSV: ``quotaStatement`` takes a Cumulo parameter ``csv=true`` that adds the statement's lines
(one per usage record charged, full precision) as CSV text in the response's ``csv`` field.
A parameter, not a separate HTTP route, so the export is signed, scoped and throttled exactly
like the statement itself and any CloudStack client can fetch it. Usage records themselves
are flat: ``cumulo list usagerecords … --output csv`` already writes them as CSV.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any

from sqlalchemy import select

from cumulo.api.cloudstack.registry import Kind, Param, ResponseField, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx, Listing, Success
from cumulo.common.time import to_wire, utcnow
from cumulo.db.models import Account, Domain, User
from cumulo.db.models_quota import QuotaTariff
from cumulo.services.access import ROOT_ADMIN, Caller, ListScope, find_domain
from cumulo.services.errors import ParamError, PermissionDenied
from cumulo.services.usage import quota as svc
from cumulo.services.usage import quota_tariffs as qt
from cumulo.services.usage.types import USAGE_TYPES

# Response fields as the plugin documents them: name → (description, type).
FIELD_INFO: dict[str, tuple[str, str]] = {
    "usageType": ("usageType", "integer"),
    "usageName": ("usageName", "string"),
    "usageUnit": ("usageUnit", "string"),
    "usageDiscriminator": ("usageDiscriminator", "string"),
    "tariffValue": ("tariffValue", "bigdecimal"),
    "effectiveDate": ("the start date of the quota tariff", "date"),
    "usageTypeDescription": ("usage type description", "string"),
    "currency": ("currency", "string"),
    "endDate": ("the end date of the quota tariff", "date"),
    "activationRule": ("activation rule of the quota tariff", "string"),
    "name": ("name", "string"),
    "description": ("description", "string"),
    "uuid": ("uuid", "string"),
    "removed": ("when the quota tariff was removed", "date"),
    "position": ("position in the execution sequence for tariffs of the same type", "integer"),
    "accountid": ("ID of the Account", "string"),
    "account": ("Name of the Account", "string"),
    "domain": ("ID of the Domain (quotaSummary: its path)", "string"),
    "domainid": ("Domain's ID", "string"),
    "startquota": ("Quota started with", "bigdecimal"),
    "endquota": ("Quota by end of this period", "bigdecimal"),
    "credits": ("List of credits made during this period", "list"),
    "startdate": ("Start date", "date"),
    "enddate": ("End date", "date"),
    "quotausage": ("List of Quota usage under various types", "list"),
    "totalquota": ("Total Quota consumed during this period", "bigdecimal"),
    "csv": ("Cumulo: the statement's lines as CSV (with csv=true)", "string"),
    "updated_by": ("The user name of the admin who updated the credits", "string"),
    "updated_on": ("When the credits were updated / the run got over", "date"),
    "balance": ("Account's balance", "bigdecimal"),
    "state": ("Account's state", "string"),
    "domainremoved": ("If the domain is removed or not", "boolean"),
    "accountremoved": ("If the account is removed or not", "boolean"),
    "quota": ("Quota consumed between the startdate and enddate", "bigdecimal"),
    "quotaenabled": ("if the account has the quota config enabled", "boolean"),
    "isenabled": ("Is quota service enabled", "boolean"),
}


def described(*names: str) -> tuple[ResponseField, ...]:
    return tuple(ResponseField(n, *FIELD_INFO[n]) for n in names)


TARIFF_FIELDS = described(
    "usageType",
    "usageName",
    "usageUnit",
    "usageDiscriminator",
    "tariffValue",
    "effectiveDate",
    "usageTypeDescription",
    "currency",
    "endDate",
    "activationRule",
    "name",
    "description",
    "uuid",
    "removed",
    "position",
)

DATE_FORMATS = " Use yyyy-MM-dd or yyyy-MM-dd HH:mm:ss (UTC)."
RULE_HELP = (
    "Quota tariff's activation rule. CloudStack evaluates it as JavaScript; Cumulo stores it "
    "and evaluates constant rules only (empty: applied; true/false; a number: charged instead "
    "of the value); any other rule leaves the tariff unapplied."
)


def _end_of(value: datetime) -> datetime:
    """The first instant after an end date: a bare date means its whole day (CloudStack)."""
    if value.time() == time(0):
        return value + timedelta(days=1)
    return value + timedelta(seconds=1)


def _denied(caller: Caller) -> PermissionDenied:
    return PermissionDenied(
        f"Account {caller.account_name} does not have permission to access the quota of the "
        "requested account"
    )


def target_account(
    ctx: Ctx,
    account: str | None,
    domainid: str | None,
    accountid: str | None,
    projectid: str | None = None,
) -> Account:
    """The account a quota command is about: named, by id, or the caller's own."""
    session, caller = ctx.session, ctx.caller
    if projectid is not None:
        raise ParamError(f"Unable to find project by id {projectid}")
    found: Account | None
    if accountid is not None:
        found = session.scalar(select(Account).where(Account.uuid == accountid))
    elif account is not None:
        if domainid is not None:
            domain_id = session.scalar(select(Domain.id).where(Domain.uuid == domainid))
        else:
            domain_id = caller.domain_id
        found = session.scalar(
            select(Account)
            .where(Account.name == account, Account.domain_id == domain_id)
            .order_by(Account.removed.is_not(None), Account.id)
            .limit(1)
        )
    else:
        found = session.get(Account, caller.account_id)
    if found is None:
        if caller.is_root_admin or caller.is_domain_admin:
            raise ParamError("Unable to find account by the given name or id")
        raise _denied(caller)
    if found.id != caller.account_id and not caller.owns_domain(found.domain.path):
        raise _denied(caller)
    return found


def _money(value: Decimal) -> float:
    return qt.wire(value, qt.CENTS)


# --- tariffs ------------------------------------------------------------------------------


def tariff_response(t: QuotaTariff, currency: str) -> dict[str, Any]:
    name, text = USAGE_TYPES.get(t.usage_type, ("", ""))
    return {
        "usageType": t.usage_type,
        "usageName": name,
        "usageUnit": qt.QUOTA_UNITS.get(t.usage_type),
        "usageDiscriminator": "None",
        "tariffValue": qt.wire(qt.from_e8(t.value_e8)),
        "effectiveDate": to_wire(t.effective_on),
        "usageTypeDescription": text,
        "currency": currency,
        "endDate": to_wire(t.end_date),
        "activationRule": t.activation_rule,
        "name": t.name,
        "description": t.description,
        "uuid": t.uuid,
        "removed": to_wire(t.removed),
        "position": t.position,
    }


@command(
    "quotaTariffList",
    kind=Kind.LIST,
    description="Lists all quota tariff plans",
    response="quotatariff",
    fields=TARIFF_FIELDS,
    since="4.7.0",
)
def quota_tariff_list(
    ctx: Ctx,
    usagetype: Annotated[int | None, Param("Usage type of the resource")] = None,
    startdate: Annotated[
        datetime | None,
        Param("The start date of the quota tariff (tariffs in force from then)." + DATE_FORMATS),
    ] = None,
    enddate: Annotated[
        datetime | None,
        Param("The end date of the quota tariff." + DATE_FORMATS, since="4.18.0.0"),
    ] = None,
    name: Annotated[str | None, Param("The name of the quota tariff.", since="4.18.0.0")] = None,
    listall: Annotated[
        bool,
        Param(
            "False will list only not removed quota tariffs. If set to True, we will list all, "
            "including the removed ones. The default is false.",
            since="4.18.0.0",
        ),
    ] = False,
) -> Listing:
    if usagetype is not None:
        qt.check_usage_type(usagetype)
    if startdate is not None and enddate is not None and enddate < startdate:
        raise ParamError("The end date must not be before the start date")
    stmt = qt.list_stmt(
        usage_type=usagetype,
        start=startdate,
        end=_end_of(enddate) if enddate is not None else None,
        name=name,
        include_removed=listall,
    )
    rows, total = ctx.page(stmt)
    currency = svc.currency(ctx.session, ctx.runtime.config)
    return Listing([tariff_response(t, currency) for t in rows], total)


@command(
    "quotaTariffCreate",
    description="Creates a quota tariff for a resource.",
    response="quotatariff",
    roles=ROOT_ADMIN,
    event="QUOTA.TARIFF.CREATE",
    fields=TARIFF_FIELDS,
    since="4.18.0.0",
)
def quota_tariff_create(
    ctx: Ctx,
    name: Annotated[str, Param("Quota tariff's name", required=True)],
    usagetype: Annotated[
        int, Param("Integer value for the usage type of the resource.", required=True)
    ],
    value: Annotated[
        str,
        Param(
            "The quota tariff value of the resource as per the default unit (a decimal).",
            required=True,
        ),
    ],
    description: Annotated[str | None, Param("Quota tariff's description.")] = None,
    activationrule: Annotated[str | None, Param(RULE_HELP)] = None,
    startdate: Annotated[
        datetime | None,
        Param(
            "The effective start date on/after which the quota tariff is effective. Inform "
            "null to use the current date." + DATE_FORMATS
        ),
    ] = None,
    enddate: Annotated[
        datetime | None,
        Param(
            "The end date of the quota tariff (inclusive: a date means its whole day). If not "
            "informed, the tariff will be valid indefinitely." + DATE_FORMATS
        ),
    ] = None,
    position: Annotated[
        int | None,
        Param("Position in the execution sequence for tariffs of the same type", since="4.20"),
    ] = None,
) -> dict[str, Any]:
    tariff = qt.create(
        ctx.session,
        name=name,
        usage_type=usagetype,
        value=qt.parse_money(value, "quota tariff value"),
        user_id=ctx.caller.user_id,
        description=description,
        activation_rule=activationrule,
        start=startdate,
        end=_end_of(enddate) if enddate is not None else None,
        position=position,
    )
    ctx.event_resource = (tariff.uuid, tariff.name)
    return tariff_response(tariff, svc.currency(ctx.session, ctx.runtime.config))


@command(
    "quotaTariffUpdate",
    description="Update the tariff plan for a resource",
    response="quotatariff",
    roles=ROOT_ADMIN,
    event="QUOTA.TARIFF.UPDATE",
    fields=TARIFF_FIELDS,
    since="4.7.0",
)
def quota_tariff_update(
    ctx: Ctx,
    name: Annotated[str, Param("Quota tariff's name", required=True, since="4.18.0.0")],
    value: Annotated[
        str | None,
        Param("The quota tariff value of the resource as per the default unit (a decimal)."),
    ] = None,
    usagetype: Annotated[
        int | None,
        Param("DEPRECATED. Integer value for the usage type of the resource (must match)."),
    ] = None,
    startdate: Annotated[
        datetime | None,
        Param("DEPRECATED and ignored: the changed tariff is effective from now." + DATE_FORMATS),
    ] = None,
    enddate: Annotated[
        datetime | None,
        Param("The end date of the quota tariff." + DATE_FORMATS, since="4.18.0.0"),
    ] = None,
    description: Annotated[
        str | None,
        Param(
            "Quota tariff's description. Inform empty to remove the description.",
            since="4.18.0.0",
        ),
    ] = None,
    activationrule: Annotated[
        str | None,
        Param(RULE_HELP + " Inform empty to remove the activation rule.", since="4.18.0.0"),
    ] = None,
    position: Annotated[
        int | None,
        Param("Position in the execution sequence for tariffs of the same type", since="4.20"),
    ] = None,
) -> dict[str, Any]:
    current = qt.active_by_name(ctx.session, name)
    if current is not None and usagetype is not None and usagetype != current.usage_type:
        raise ParamError(f"The usage type of quota tariff [{name}] cannot be changed")
    change = qt.TariffChange(
        value=qt.parse_money(value, "quota tariff value") if value is not None else None,
        description=description,
        activation_rule=activationrule,
        end_date=_end_of(enddate) if enddate is not None else None,
        position=position,
    )
    tariff = qt.update(ctx.session, name, change, ctx.caller.user_id)
    ctx.event_resource = (tariff.uuid, tariff.name)
    return tariff_response(tariff, svc.currency(ctx.session, ctx.runtime.config))


@command(
    "quotaTariffDelete",
    description="Marks a quota tariff as removed.",
    roles=ROOT_ADMIN,
    event="QUOTA.TARIFF.DELETE",
    fields=("success", "displaytext"),
    since="4.18.0.0",
)
def quota_tariff_delete(
    ctx: Ctx, id: Annotated[UUIDStr, Param("ID of the quota tariff", required=True)]
) -> Success:
    tariff = qt.delete(ctx.session, id)
    ctx.event_resource = (tariff.uuid, tariff.name)
    return Success()


# --- balances, statements, credits ----------------------------------------------------------


@command(
    "quotaBalance",
    description="Create Quota balance statements for the provided Accounts or Projects.",
    response="balance",
    fields=described(
        "accountid",
        "account",
        "domain",
        "startquota",
        "endquota",
        "credits",
        "startdate",
        "enddate",
        "currency",
    ),
    since="4.7.0",
)
def quota_balance(
    ctx: Ctx,
    account: Annotated[
        str | None,
        Param("Name of the Account for which balance statements will be generated."),
    ] = None,
    domainid: Annotated[
        UUIDStr | None,
        Param("ID of the domain which the Account identified by 'account' belongs to."),
    ] = None,
    accountid: Annotated[
        UUIDStr | None,
        Param("ID of the Account for which balance statements will be generated."),
    ] = None,
    projectid: Annotated[
        UUIDStr | None, Param("ID of the Project for which balance statements will be generated.")
    ] = None,
    startdate: Annotated[
        datetime | None,
        Param("Date of the first Quota balance to be returned." + DATE_FORMATS),
    ] = None,
    enddate: Annotated[
        datetime | None,
        Param(
            "Date of the last Quota balance to be returned. Must be informed together with the "
            "startdate parameter, and can not be before startdate." + DATE_FORMATS
        ),
    ] = None,
) -> dict[str, Any]:
    if enddate is not None and startdate is None:
        raise ParamError("The startdate must be informed together with the enddate")
    if startdate is not None and enddate is not None and enddate < startdate:
        raise ParamError("The enddate can not be before the startdate")
    target = target_account(ctx, account, domainid, accountid, projectid)
    session = ctx.session
    now = utcnow()
    start = startdate if startdate is not None else now
    end = min(_end_of(enddate), now) if enddate is not None else now
    credits = svc.credits_between(session, target.id, start, end) if startdate else []
    return {
        "accountid": target.uuid,
        "account": target.name,
        "domain": target.domain.uuid,
        "startquota": _money(svc.balance_at(session, target.id, start)),
        "endquota": _money(svc.balance_at(session, target.id, end)),
        "credits": [
            {"credits": _money(qt.from_e8(c.amount_e8)), "updated_on": to_wire(c.created)}
            for c in credits
        ],
        "startdate": to_wire(start),
        "enddate": to_wire(end),
        "currency": svc.currency(session, ctx.runtime.config),
    }


@command(
    "quotaStatement",
    description="Create a quota statement",
    response="statement",
    fields=described(
        "accountid",
        "account",
        "domain",
        "quotausage",
        "totalquota",
        "startdate",
        "enddate",
        "currency",
        "csv",
    ),
    since="4.7.0",
)
def quota_statement(
    ctx: Ctx,
    account: Annotated[
        str, Param("Account name for which statement needs to be generated", required=True)
    ],
    domainid: Annotated[
        UUIDStr, Param("The domain of the account", required=True, entity="Domain")
    ],
    startdate: Annotated[
        datetime, Param("Start of the period of the Quota statement." + DATE_FORMATS, required=True)
    ],
    enddate: Annotated[
        datetime,
        Param(
            "End of the period of the Quota statement (a date means its whole day)." + DATE_FORMATS,
            required=True,
        ),
    ],
    type: Annotated[
        int | None, Param("List quota usage records for the specified usage type")
    ] = None,
    accountid: Annotated[
        UUIDStr | None,
        Param("List usage records for the specified account", entity="Account"),
    ] = None,
    csv: Annotated[
        bool,
        Param(
            "Cumulo: also return the statement's lines (one per usage record charged) as CSV "
            "text in the csv field."
        ),
    ] = False,
) -> dict[str, Any]:
    if enddate < startdate:
        raise ParamError("Incorrect Date Range. Start date: later than End date")
    if type is not None:
        qt.check_usage_type(type)
    target = target_account(ctx, account, domainid, accountid)
    end = _end_of(enddate)
    session = ctx.session
    lines = svc.statement(session, target.id, startdate, end, type)
    body: dict[str, Any] = {
        "accountid": target.uuid,
        "account": target.name,
        "domain": target.domain.uuid,
        "quotausage": [
            {
                "type": line.usage_type,
                "name": USAGE_TYPES.get(line.usage_type, ("", ""))[0],
                "unit": qt.QUOTA_UNITS.get(line.usage_type),
                "quota": qt.wire(line.quota),
            }
            for line in lines
        ],
        "totalquota": qt.wire(sum((line.quota for line in lines), Decimal(0))),
        "startdate": to_wire(startdate),
        "enddate": to_wire(end - timedelta(seconds=1)),
        "currency": svc.currency(session, ctx.runtime.config),
    }
    if csv:
        body["csv"] = svc.statement_csv(session, target, target.domain, startdate, end, type)
    return body


@command(
    "quotaCredits",
    description="Add +-credits to an Account",
    response="quotacredits",
    roles=ROOT_ADMIN,  # money: a domain admin must not credit its own account
    fields=(
        ResponseField("credits", "The credit deposited", "bigdecimal"),
        *described("updated_by", "updated_on", "currency"),
    ),
    since="4.7.0",
)
def quota_credits(
    ctx: Ctx,
    value: Annotated[
        str,
        Param(
            "Amount of credits to be added (in case of a positive value) or subtracted (in "
            "case of a negative value).",
            required=True,
        ),
    ],
    account: Annotated[
        str | None, Param("Name of the Account for which Quota credits will be added.")
    ] = None,
    domainid: Annotated[
        UUIDStr | None, Param("Domain of the Account specified by 'account'.", entity="Domain")
    ] = None,
    accountid: Annotated[
        UUIDStr | None,
        Param("ID of the Account for which Quota credits will be added.", entity="Account"),
    ] = None,
    projectid: Annotated[
        UUIDStr | None, Param("ID of the Project for which Quota credits will be added.")
    ] = None,
    min_balance: Annotated[
        str | None,
        Param(
            "An alert is raised for the Account when the Quota credits get below this threshold.",
            name="min_balance",
        ),
    ] = None,
    quota_enforce: Annotated[
        bool | None,
        Param(
            "Whether to lock the Account when Quota credits run out (needs "
            "quota.enable.enforcement).",
            name="quota_enforce",
        ),
    ] = None,
) -> dict[str, Any]:
    amount = qt.parse_money(value, "credit value", negative=True)
    floor = qt.parse_money(min_balance, "min_balance", negative=True) if min_balance else None
    if account is None and accountid is None:
        raise ParamError("Either accountid or account with domainid must be informed")
    target = target_account(ctx, account, domainid, accountid, projectid)
    if target.removed is not None:
        raise ParamError("Quota credits cannot be added to a removed account")
    change = svc.CreditChange(amount, floor, quota_enforce)
    credit, locks = svc.add_credit(ctx.session, ctx.caller, ctx.runtime.config, target, change)
    if locks:
        ctx.runtime.key_cache.forget_all()  # the account's keys verify (or not) from now on
    user = ctx.session.get(User, ctx.caller.user_id)
    return {
        "credits": _money(qt.from_e8(credit.amount_e8)),
        "updated_by": user.username if user is not None else None,
        "updated_on": to_wire(credit.created),
        "currency": svc.currency(ctx.session, ctx.runtime.config),
    }


# --- summary, update, enabled ---------------------------------------------------------------


@command(
    "quotaSummary",
    kind=Kind.LIST,
    description="Lists accounts' balance summary.",
    response="summary",
    fields=described(
        "accountid",
        "account",
        "domainid",
        "domain",
        "balance",
        "state",
        "domainremoved",
        "accountremoved",
        "quota",
        "startdate",
        "enddate",
        "currency",
        "quotaenabled",
    ),
    since="4.7.0",
)
def quota_summary(
    ctx: Ctx,
    account: Annotated[str | None, Param("Optional, Account for which summary is shown")] = None,
    domainid: Annotated[
        UUIDStr | None,
        Param("Optional, the domain of the account (with account), or of the accounts listed"),
    ] = None,
    listall: Annotated[
        bool,
        Param(
            "False (default) lists balance summary for account. True lists balance summary "
            "for accounts which the caller has access."
        ),
    ] = False,
    accountstatetoshow: Annotated[
        str | None,
        Param(
            "Possible values are [ALL, ACTIVE, REMOVED]. The default value is ACTIVE.",
            since="4.21.0",
        ),
    ] = None,
) -> Listing:
    caller, session = ctx.caller, ctx.session
    state = (accountstatetoshow or "ACTIVE").upper()
    if state not in ("ALL", "ACTIVE", "REMOVED"):
        raise ParamError("accountstatetoshow must be one of ALL, ACTIVE, REMOVED")
    stmt = select(Account, Domain).join(Domain, Account.domain_id == Domain.id)
    if account is not None or not listall or not (caller.is_root_admin or caller.is_domain_admin):
        only = target_account(ctx, account, domainid, None)
        stmt = stmt.where(Account.id == only.id)
    else:
        scope = ListScope()
        if domainid is not None:
            domain = find_domain(session, domainid)
            caller.check_domain(domain)
            scope = ListScope(domain_path=domain.path)
        elif not caller.is_root_admin:
            scope = ListScope(domain_path=caller.domain_path)
        stmt = stmt.where(scope.where(Account.id, Domain.path))
    if state == "ACTIVE":
        stmt = stmt.where(Account.removed.is_(None))
    elif state == "REMOVED":
        stmt = stmt.where(Account.removed.is_not(None))
    rows, total = ctx.page_rows(stmt.order_by(Account.id))
    config = ctx.runtime.config
    start, end = svc.statement_period(utcnow(), int(config.get(session, svc.STATEMENT_PERIOD)))
    used = svc.used_between(session, [r[0].id for r in rows], start, end)
    # Balances of the whole page from two grouped sums, not two queries per account.
    credited, charged = svc.credits_e8(session), svc.used_e8(session)
    enabled = bool(config.get(session, svc.ENABLE_SERVICE))
    currency = svc.currency(session, config)
    items = []
    for acct, domain in rows:
        items.append(
            {
                "accountid": acct.uuid,
                "account": acct.name,
                "domainid": domain.uuid,
                "domain": "ROOT" + domain.path.rstrip("/"),
                "balance": _money(qt.from_e8(credited.get(acct.id, 0) - charged.get(acct.id, 0))),
                "state": acct.state,
                "domainremoved": domain.removed is not None,
                "accountremoved": acct.removed is not None,
                "quota": qt.wire(used.get(acct.id, Decimal(0))),
                "startdate": to_wire(start),
                "enddate": to_wire(end - timedelta(seconds=1)),
                "currency": currency,
                "quotaenabled": enabled,
            }
        )
    return Listing(items, total)


@command(
    svc.JOB_COMMAND,  # "quotaUpdate": the usage thread's scheduled job runs it too
    description="Update quota calculations, alerts and statements",
    response="quotacredits",
    roles=ROOT_ADMIN,
    fields=described(
        "updated_on",
    ),
    since="4.7.0",
)
def quota_update(ctx: Ctx) -> dict[str, Any]:
    return _update(ctx)


@quota_update.runs
def run_quota_update(ctx: Ctx) -> dict[str, Any]:
    """The job body (``services.usage.scheduler``): idempotent, a re-run changes nothing."""
    return _update(ctx)


def _update(ctx: Ctx) -> dict[str, Any]:
    result = svc.calculate(ctx.session, ctx.caller, ctx.runtime.config)
    if result.locks:
        ctx.runtime.key_cache.forget_all()  # locked accounts' keys stop verifying at once
    return {"updated_on": to_wire(utcnow())}


@command(
    "quotaIsEnabled",
    description="Checks if the quota plugin is enabled",
    response="isenabled",
    fields=described(
        "isenabled",
    ),
    since="4.7.0",
)
def quota_is_enabled(ctx: Ctx) -> dict[str, Any]:
    return {"isenabled": bool(ctx.runtime.config.get(ctx.session, svc.ENABLE_SERVICE))}
