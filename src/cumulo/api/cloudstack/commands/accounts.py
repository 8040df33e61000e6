"""Account commands: list, create, update, delete, disable, enable, lock."""

from __future__ import annotations

from typing import Annotated, Any

from sqlalchemy import Select, select

from cumulo.api.cloudstack.commands._params import PASSWORD_TEXT, ExternalUserId, Timezone, Username
from cumulo.api.cloudstack.commands.domains import wire_path
from cumulo.api.cloudstack.commands.users import identity_scope, user_response, users_select
from cumulo.api.cloudstack.registry import Kind, Param, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx, Listing, Submit, Success
from cumulo.common.time import to_wire
from cumulo.db.models import Account, Domain, Role, User
from cumulo.services import limits
from cumulo.services.access import ADMINS, ListScope, find_domain, resolve_scope
from cumulo.services.errors import ParamError
from cumulo.services.identity import accounts as svc

ACCOUNT_FIELDS = (
    "id",
    "name",
    "accounttype",
    "roleid",
    "roletype",
    "rolename",
    "domainid",
    "domain",
    "domainpath",
    "state",
    "networkdomain",
    "created",
    "user",
    "isdefault",
)


def account_response(
    account: Account, domain: Domain, role: Role, users: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "id": account.uuid,
        "name": account.name,
        "accounttype": account.type,
        "roleid": role.uuid,
        "roletype": role.type,
        "rolename": role.name,
        "domainid": domain.uuid,
        "domain": domain.name,
        "domainpath": wire_path(domain.path),
        "state": account.state,
        "networkdomain": account.network_domain,
        "created": to_wire(account.created),
        "user": users,
        "isdefault": any(u["isdefault"] for u in users),
    }


def accounts_select() -> Select[Account, Domain, Role]:
    return (
        select(Account, Domain, Role)
        .join(Domain, Account.domain_id == Domain.id)
        .join(Role, Account.role_id == Role.id)
        .where(Account.removed.is_(None))
    )


def users_by_account(ctx: Ctx, account_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """One query for the users of a whole page of accounts."""
    found: dict[int, list[dict[str, Any]]] = {i: [] for i in account_ids}
    if account_ids:
        stmt = users_select().where(User.account_id.in_(account_ids)).order_by(User.id)
        for row in ctx.session.execute(stmt):
            found[row.account_id].append(user_response(row))
    return found


def render_accounts(ctx: Ctx, rows: list[tuple[Account, Domain, Role]]) -> list[dict[str, Any]]:
    users = users_by_account(ctx, [r[0].id for r in rows])
    totals = limits.account_totals(ctx.session, [r[0] for r in rows], ctx.runtime.config)
    return [{**account_response(a, d, r, users[a.id]), **totals[a.id]} for a, d, r in rows]


def render_account(ctx: Ctx, account: Account) -> dict[str, Any]:
    ctx.session.flush()
    row = ctx.session.execute(accounts_select().where(Account.id == account.id)).one()
    return render_accounts(ctx, [row._tuple()])[0]


def target_account(ctx: Ctx, id: str | None, account: str | None, domainid: str | None) -> Account:
    """The account a command names: ``id``, or ``account`` together with ``domainid``."""
    if id is not None:
        return svc.find_account(ctx.session, id)
    if account is None or domainid is None:
        raise ParamError("Either id or account and domainid must be specified")
    return svc.find_account_by_name(ctx.session, account, find_domain(ctx.session, domainid))


def forget_keys(ctx: Ctx) -> None:
    """Signed calls cache the key owner (or its absence) briefly; a state change must show
    at once in this process (other servers see it when their short cache expires)."""
    ctx.runtime.key_cache.forget_all()


def _scope_for_id(ctx: Ctx, id: str) -> ListScope:
    """Asking for one account by id searches all the caller may see, and says 531 when the
    account exists outside it (CloudStack checks access on the named account)."""
    a = ctx.list_args
    if a["domainid"] or a["account"]:
        return ctx.scope
    found = ctx.session.scalar(select(Account).where(Account.uuid == id, Account.removed.is_(None)))
    if found is not None:
        ctx.caller.check_account(found)
    return resolve_scope(ctx.session, ctx.caller, listall=True)


@command(
    "listAccounts",
    kind=Kind.LIST,
    description="Lists accounts and provides detailed account information for listed accounts",
    response="account",
    scoped=True,
    fields=ACCOUNT_FIELDS,
    since="1.0",
)
def list_accounts(
    ctx: Ctx,
    id: Annotated[UUIDStr | None, Param("List account by account ID", entity="Account")] = None,
    name: Annotated[str | None, Param("List account by account name")] = None,
    accounttype: Annotated[
        int | None,
        Param(
            "List accounts by account type. Valid account types are 1 (admin), 2 "
            "(domain-admin), and 0 (user).",
            min=0,
            max=2,
        ),
    ] = None,
    state: Annotated[
        str | None, Param("List accounts by state. Valid states are enabled, disabled, and locked.")
    ] = None,
    iscleanuprequired: Annotated[
        bool | None, Param("list accounts by cleanuprequired attribute (values are true or false)")
    ] = None,
) -> Listing:
    scope = identity_scope(ctx) if id is None else _scope_for_id(ctx, id)
    stmt = accounts_select().where(scope.where(Account.id, Domain.path))
    if id is not None:
        stmt = stmt.where(Account.uuid == id)
    if name is not None:
        stmt = stmt.where(Account.name == name)
    if accounttype is not None:
        stmt = stmt.where(Account.type == accounttype)
    if state is not None:
        stmt = stmt.where(Account.state == state.lower())
    if ctx.paging.keyword:
        stmt = stmt.where(Account.name.ilike(f"%{ctx.paging.keyword}%"))
    rows, total = ctx.page_rows(stmt.order_by(Account.id))
    return Listing(render_accounts(ctx, rows), total)


@command(
    "createAccount",
    description="Creates an account",
    response="account",
    roles=ADMINS,
    event="ACCOUNT.CREATE",
    entity="Account",
    fields=ACCOUNT_FIELDS,
    since="1.0",
)
def create_account(
    ctx: Ctx,
    username: Username,
    password: Annotated[str, Param(PASSWORD_TEXT, required=True, length=1024)],
    firstname: Annotated[str, Param("Firstname", required=True)],
    lastname: Annotated[str, Param("Lastname", required=True)],
    email: Annotated[str, Param("Email", required=True)],
    accounttype: Annotated[
        int | None,
        Param("Type of the account.  Specify 0 for user, 1 for root admin, and 2 for domain admin"),
    ] = None,
    roleid: Annotated[
        UUIDStr | None, Param("Creates the account under the specified role.", entity="Role")
    ] = None,
    account: Annotated[
        str | None,
        Param(
            "Name of the account to be created. The user will be added to this newly created "
            "account. If no account is specified, the username will be used as the account "
            "name."
        ),
    ] = None,
    domainid: Annotated[
        UUIDStr | None, Param("Creates the user under the specified domain.", entity="Domain")
    ] = None,
    timezone: Timezone = None,
    networkdomain: Annotated[
        str | None,
        Param("Network domain for the account's networks"),
    ] = None,
    accountid: Annotated[
        str | None,
        Param("Account UUID, required for adding account from external provisioning system"),
    ] = None,
    userid: ExternalUserId = None,
) -> dict[str, Any]:
    domain = find_domain(ctx.session, domainid) if domainid else _caller_domain(ctx)
    new = svc.NewAccount(
        username=username,
        password=password,
        firstname=firstname,
        lastname=lastname,
        email=email,
        name=account,
        account_type=accounttype,
        role_uuid=roleid,
        timezone=timezone,
        network_domain=networkdomain,
        account_uuid=accountid,
        user_uuid=userid,
    )
    return render_account(ctx, svc.create_account(ctx.session, ctx.caller, domain, new))


def _caller_domain(ctx: Ctx) -> Domain:
    domain = ctx.session.get(Domain, ctx.caller.domain_id)
    assert domain is not None
    return domain


@command(
    "deleteAccount",
    kind=Kind.ASYNC,
    description="Deletes a account, and all users associated with this account",
    roles=ADMINS,
    event="ACCOUNT.DELETE",
    entity="Account",
    since="1.0",
)
def delete_account(
    ctx: Ctx,
    id: Annotated[UUIDStr, Param("Account id", required=True, entity="Account")],
) -> Submit:
    account = svc.find_account(ctx.session, id)
    svc.check_may_delete(ctx.session, ctx.caller, account)
    return Submit(
        params={"id": id},
        instance_type="Account",
        instance_id=account.uuid,
        resource_name=account.name,
    )


@delete_account.runs
def run_delete_account(ctx: Ctx, id: str) -> Success:
    """Checked again in the job: the account may have changed since the request."""
    account = ctx.session.scalar(select(Account).where(Account.uuid == id))
    if account is None:
        raise ParamError(f"Unable to find account by id {id}")
    if account.removed is None:
        svc.check_may_delete(ctx.session, ctx.caller, account)
        svc.delete_account(ctx.session, account)
        forget_keys(ctx)
    return Success()


@command(
    "updateAccount",
    description="Updates account information for the authenticated user",
    response="account",
    roles=ADMINS,
    event="ACCOUNT.UPDATE",
    entity="Account",
    fields=ACCOUNT_FIELDS,
    since="1.0",
)
def update_account(
    ctx: Ctx,
    id: Annotated[UUIDStr | None, Param("Account UUID", entity="Account")] = None,
    account: Annotated[str | None, Param("Current account name")] = None,
    domainid: Annotated[
        UUIDStr | None,
        Param("The UUID of the domain where the account exists", entity="Domain"),
    ] = None,
    newname: Annotated[str | None, Param("New name for the account")] = None,
    networkdomain: Annotated[str | None, Param("Network domain for the account's networks")] = None,
    roleid: Annotated[
        UUIDStr | None, Param("The UUID of the dynamic role to set for the account", entity="Role")
    ] = None,
) -> dict[str, Any]:
    target = target_account(ctx, id, account, domainid)
    svc.check_may_manage(ctx.caller, target)
    if newname is not None:
        svc.rename_account(ctx.session, target, newname)
    if networkdomain is not None:
        target.network_domain = svc.check_network_domain(networkdomain)
    if roleid is not None:
        svc.check_may_change_state(ctx.caller, target)
        svc.change_role(ctx.session, target, roleid)
        forget_keys(ctx)
    return render_account(ctx, target)


def _state_target(ctx: Ctx, id: str | None, account: str | None, domainid: str | None) -> Account:
    target = target_account(ctx, id, account, domainid)
    svc.check_may_change_state(ctx.caller, target)
    return target


@command(
    "disableAccount",
    kind=Kind.ASYNC,
    description="Disables an account",
    response="account",
    roles=ADMINS,
    event="ACCOUNT.DISABLE",
    entity="Account",
    fields=ACCOUNT_FIELDS,
    since="1.0",
)
def disable_account(
    ctx: Ctx,
    lock: Annotated[
        bool,
        Param(
            "If true, only lock the account; else disable the account",
            required=True,
        ),
    ],
    id: Annotated[UUIDStr | None, Param("Account UUID", entity="Account")] = None,
    account: Annotated[str | None, Param("Disables specified account.")] = None,
    domainid: Annotated[
        UUIDStr | None, Param("Disables specified account in this domain.", entity="Domain")
    ] = None,
) -> Submit:
    target = _state_target(ctx, id, account, domainid)
    svc.check_not_last_admin(ctx.session, target, enabled_only=True)
    return Submit(
        params={"id": target.uuid, "lock": lock},
        instance_type="Account",
        instance_id=target.uuid,
        resource_name=target.name,
    )


@disable_account.runs
def run_disable_account(ctx: Ctx, id: str, lock: bool) -> dict[str, Any]:
    """Re-running it finds the state already set and changes nothing."""
    target = svc.find_account(ctx.session, id)
    svc.check_may_change_state(ctx.caller, target)
    svc.set_state(ctx.session, target, svc.LOCKED if lock else svc.DISABLED)
    forget_keys(ctx)
    return render_account(ctx, target)


@command(
    "enableAccount",
    description="Enables an account",
    response="account",
    roles=ADMINS,
    event="ACCOUNT.ENABLE",
    entity="Account",
    fields=ACCOUNT_FIELDS,
    since="1.0",
)
def enable_account(
    ctx: Ctx,
    id: Annotated[UUIDStr | None, Param("Account id", entity="Account")] = None,
    account: Annotated[str | None, Param("Enables specified account.")] = None,
    domainid: Annotated[
        UUIDStr | None, Param("Enables specified account in this domain.", entity="Domain")
    ] = None,
) -> dict[str, Any]:
    target = _state_target(ctx, id, account, domainid)
    svc.set_state(ctx.session, target, svc.ENABLED)
    forget_keys(ctx)
    return render_account(ctx, target)


@command(
    "lockAccount",
    description="This deprecated function used to locks an account. Look for the API "
    "DisableAccount instead",
    response="account",
    roles=ADMINS,
    event="ACCOUNT.DISABLE",
    entity="Account",
    fields=ACCOUNT_FIELDS,
    since="1.0",
)
def lock_account(
    ctx: Ctx,
    account: Annotated[str, Param("Locks the specified account.", required=True)],
    domainid: Annotated[
        UUIDStr,
        Param("Locks the specified account on this domain.", required=True, entity="Domain"),
    ],
) -> dict[str, Any]:
    target = _state_target(ctx, None, account, domainid)
    svc.set_state(ctx.session, target, svc.LOCKED)
    forget_keys(ctx)
    return render_account(ctx, target)
