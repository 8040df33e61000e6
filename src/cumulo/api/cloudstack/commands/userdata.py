"""Registered user data: registerUserData, listUserData, deleteUserData."""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any

from sqlalchemy import Select, select

from cumulo.api.cloudstack.registry import Kind, Param, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx, Listing, Success
from cumulo.db.models import Account, Domain
from cumulo.db.models_catalog import UserData
from cumulo.services import config
from cumulo.services.catalog import userdata as svc
from cumulo.services.catalog.owners import resolve_owner

USERDATA_FIELDS = (
    "id",
    "name",
    "userdata",
    "params",
    "account",
    "accountid",
    "domain",
    "domainid",
)
OwnerProject = Annotated[
    UUIDStr | None, Param("an optional project for the userdata", entity="Project")
]


def userdata_response(row: Any) -> dict[str, Any]:
    return {
        "id": row.uuid,
        "name": row.name,
        "userdata": row.user_data,
        "params": row.params,
        "account": row.account,
        "accountid": row.accountid,
        "domain": row.domain,
        "domainid": row.domainid,
        "hasannotations": False,
    }


@cache
def userdata_select() -> Select[*tuple[Any, ...]]:
    return (
        select(
            UserData.id,
            UserData.uuid,
            UserData.name,
            UserData.user_data,
            UserData.params,
            Account.name.label("account"),
            Account.uuid.label("accountid"),
            Domain.name.label("domain"),
            Domain.uuid.label("domainid"),
        )
        .join(Account, Account.id == UserData.account_id)
        .join(Domain, Domain.id == UserData.domain_id)
    )


@command(
    "registerUserData",
    description="Register a new userdata.",
    response="userdata",
    event="REGISTER.USER.DATA",
    entity="UserData",
    fields=USERDATA_FIELDS,
    since="4.18",
)
def register_user_data(
    ctx: Ctx,
    name: Annotated[str, Param("Name of the userdata", required=True)],
    userdata: Annotated[
        str,
        Param(
            "Base64 encoded userdata content. Using HTTP GET (via querystring), you can send up "
            "to 4KB of data after base64 encoding. Using HTTP POST (via POST body), you can send "
            "up to 1MB of data after base64 encoding. You also need to change "
            "vm.userdata.max.length value",
            required=True,
            length=1048576,
        ),
    ],
    params: Annotated[
        list[str] | None,
        Param("comma separated list of variables declared in userdata content"),
    ] = None,
    account: Annotated[
        str | None,
        Param("an optional account for the userdata. Must be used with domainId."),
    ] = None,
    domainid: Annotated[
        UUIDStr | None,
        Param(
            "an optional domainId for the userdata. If the account parameter is used, "
            "domainId must also be used.",
            entity="Domain",
        ),
    ] = None,
    projectid: OwnerProject = None,
) -> dict[str, Any]:
    owner = resolve_owner(ctx.session, ctx.caller, account, domainid, projectid)
    limit = ctx.runtime.config.get(ctx.session, config.USERDATA_MAX_LENGTH)
    entry = svc.register(ctx.session, owner, name, userdata, params, limit)
    ctx.session.flush()
    return userdata_response(
        ctx.session.execute(userdata_select().where(UserData.id == entry.id)).one()
    )


@command(
    "listUserData",
    kind=Kind.LIST,
    description="List registered userdatas",
    response="userdata",
    scoped=True,
    fields=USERDATA_FIELDS,
    since="4.18",
)
def list_user_data(
    ctx: Ctx,
    id: Annotated[UUIDStr | None, Param("the ID of the Userdata")] = None,
    name: Annotated[str | None, Param("Userdata name to look for")] = None,
    projectid: OwnerProject = None,
) -> Listing:
    if projectid is not None:
        return Listing([], 0)  # no projects exist, so none of them owns user data
    stmt = userdata_select().where(ctx.scope.where(UserData.account_id, Domain.path))
    if id is not None:
        stmt = stmt.where(UserData.uuid == id)
    if name is not None:
        stmt = stmt.where(UserData.name == name)
    if ctx.paging.keyword:
        stmt = stmt.where(UserData.name.ilike(f"%{ctx.paging.keyword}%"))
    rows, total = ctx.page_records(stmt.order_by(UserData.id))
    return Listing([userdata_response(r) for r in rows], total)


@command(
    "deleteUserData",
    description="Deletes a userdata",
    entity="UserData",
    since="4.18",
)
def delete_user_data(
    ctx: Ctx,
    id: Annotated[UUIDStr, Param("the ID of the Userdata", required=True)],
    account: Annotated[
        str | None,
        Param("an optional account for the userdata. Must be used with domainId."),
    ] = None,
    domainid: Annotated[
        UUIDStr | None,
        Param(
            "an optional domainId for the userdata. If the account parameter is used, "
            "domainId must also be used.",
            entity="Domain",
        ),
    ] = None,
    projectid: OwnerProject = None,
) -> Success:
    """account/domainid only narrow whose entry is meant; access is checked on the entry."""
    if account is not None or domainid is not None or projectid is not None:
        resolve_owner(ctx.session, ctx.caller, account, domainid, projectid)
    entry = svc.find(ctx.session, ctx.caller, id)
    ctx.session.delete(entry)
    return Success()
