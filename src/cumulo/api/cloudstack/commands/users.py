"""User commands: list, create, update, delete, enable, disable, keys."""

from __future__ import annotations

from typing import Annotated, Any

from sqlalchemy import Select, or_, select

from cumulo.api.cloudstack.registry import Kind, Param, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx, Listing
from cumulo.common.time import to_wire
from cumulo.db.models import Account, Domain, Role, User
from cumulo.services.access import ADMINS, ListScope

USER_FIELDS = (
    "id",
    "username",
    "firstname",
    "lastname",
    "email",
    "created",
    "state",
    "account",
    "accounttype",
    "accountid",
    "roleid",
    "roletype",
    "rolename",
    "domainid",
    "domain",
    "timezone",
    "apikey",
    "isdefault",
    "usersource",
)


def user_response(user: User, account: Account, domain: Domain, role: Role) -> dict[str, Any]:
    return {
        "id": user.uuid,
        "username": user.username,
        "firstname": user.firstname,
        "lastname": user.lastname,
        "email": user.email,
        "created": to_wire(user.created),
        "state": user.state,
        "account": account.name,
        "accounttype": account.type,
        "accountid": account.uuid,
        "roleid": role.uuid,
        "roletype": role.type,
        "rolename": role.name,
        "domainid": domain.uuid,
        "domain": domain.name,
        "timezone": user.timezone,
        "apikey": user.api_key,
        "isdefault": user.is_default,
        "usersource": user.source.lower() if user.source != "UNKNOWN" else "native",
        "is2faenabled": False,
        "apikeyaccess": "INHERIT",
    }


def users_select() -> Select[User, Account, Domain, Role]:
    return (
        select(User, Account, Domain, Role)
        .join(Account, User.account_id == Account.id)
        .join(Domain, Account.domain_id == Domain.id)
        .join(Role, Account.role_id == Role.id)
        .where(User.removed.is_(None))
    )


def identity_scope(ctx: Ctx) -> ListScope:
    """Identity lists show an admin its own domain's level unless listall or a domain is named."""
    a = ctx.list_args
    if not (a["listall"] or a["domainid"] or a["account"]) and ctx.caller.role_type in ADMINS:
        return ListScope(domain_path=ctx.caller.domain_path, recursive=False)
    return ctx.scope


@command(
    "listUsers",
    kind=Kind.LIST,
    description="Lists user accounts",
    response="user",
    scoped=True,
    fields=USER_FIELDS,
    since="1.0",
)
def list_users(
    ctx: Ctx,
    id: Annotated[UUIDStr | None, Param("List user by ID.", entity="User")] = None,
    username: Annotated[str | None, Param("List user by the username")] = None,
    accounttype: Annotated[
        int | None,
        Param(
            "List users by account type. Valid types include "
            "admin, domain-admin, read-only-admin, or user."
        ),
    ] = None,
    state: Annotated[str | None, Param("List users by state of the user account.")] = None,
) -> Listing:
    scope = identity_scope(ctx)
    stmt = users_select().where(scope.where(User.account_id, Domain.path))
    if id is not None:
        stmt = stmt.where(User.uuid == id)
    if username is not None:
        stmt = stmt.where(User.username == username)
    if accounttype is not None:
        stmt = stmt.where(Account.type == accounttype)
    if state is not None:
        stmt = stmt.where(User.state == state.lower())
    if ctx.paging.keyword:
        like = f"%{ctx.paging.keyword}%"
        stmt = stmt.where(
            or_(
                User.username.ilike(like),
                User.firstname.ilike(like),
                User.lastname.ilike(like),
                User.email.ilike(like),
            )
        )
    rows, total = ctx.page_rows(stmt.order_by(User.id))
    return Listing([user_response(*r._tuple()) for r in rows], total)
