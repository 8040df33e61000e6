"""User commands: list, create, update, delete, enable, disable, keys."""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any

from sqlalchemy import Select, or_, select

from cumulo.api.cloudstack.commands._params import PASSWORD_TEXT, ExternalUserId, Timezone, Username
from cumulo.api.cloudstack.registry import Kind, Param, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx, Listing, Submit, Success
from cumulo.common.time import to_wire
from cumulo.db.models import Account, Domain, Role, User
from cumulo.services.access import ADMINS, ListScope, find_domain
from cumulo.services.errors import ParamError
from cumulo.services.identity import keys as key_service
from cumulo.services.identity import users as user_service
from cumulo.services.identity.accounts import find_account_by_name
from cumulo.services.identity.users import UserChanges

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


def user_response(row: Any) -> dict[str, Any]:
    """Render one row of ``users_select()`` (columns, not entities: the list hot path)."""
    return {
        "id": row.uuid,
        "username": row.username,
        "firstname": row.firstname,
        "lastname": row.lastname,
        "email": row.email,
        "created": to_wire(row.created),
        "state": row.state,
        "account": row.account,
        "accounttype": row.accounttype,
        "accountid": row.accountid,
        "roleid": row.roleid,
        "roletype": row.roletype,
        "rolename": row.rolename,
        "domainid": row.domainid,
        "domain": row.domain,
        "timezone": row.timezone,
        "apikey": row.api_key,
        "isdefault": row.is_default,
        "usersource": row.source.lower() if row.source != "UNKNOWN" else "native",
        "is2faenabled": False,
        "apikeyaccess": "INHERIT",
    }


@cache
def users_select() -> Select[*tuple[Any, ...]]:
    """Built once (statements are immutable, and building one costs more than running it);
    plain columns, because loading four ORM entities per row doubled a listUsers call."""
    return (
        select(
            User.uuid,
            User.username,
            User.firstname,
            User.lastname,
            User.email,
            User.created,
            User.state,
            User.timezone,
            User.api_key,
            User.is_default,
            User.source,
            User.account_id,
            Account.name.label("account"),
            Account.type.label("accounttype"),
            Account.uuid.label("accountid"),
            Role.uuid.label("roleid"),
            Role.type.label("roletype"),
            Role.name.label("rolename"),
            Domain.uuid.label("domainid"),
            Domain.name.label("domain"),
        )
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
    rows, total = ctx.page_records(stmt.order_by(User.id))
    return Listing([user_response(r) for r in rows], total)


def render(ctx: Ctx, user: User) -> dict[str, Any]:
    ctx.session.flush()
    return user_response(ctx.session.execute(users_select().where(User.id == user.id)).one())


def _forget_keys(ctx: Ctx) -> None:
    """Keys and user states are cached per process for a moment; this server reacts now."""
    ctx.runtime.key_cache.forget_all()


def _target(ctx: Ctx, id: str) -> User:
    """The user a command acts on, after checking the caller may act on it (531 otherwise)."""
    user = user_service.find_user(ctx.session, id)
    user_service.check_user_access(ctx.caller, user)
    return user


@command(
    "createUser",
    description="Creates a user for an account that already exists",
    response="user",
    roles=ADMINS,
    event="USER.CREATE",
    entity="User",
    fields=USER_FIELDS,
    since="1.0",
)
def create_user(
    ctx: Ctx,
    account: Annotated[
        str,
        Param(
            "Creates the user under the specified account. If no account is specified, "
            "the username will be used as the account name.",
            required=True,
        ),
    ],
    username: Username,
    password: Annotated[str, Param(PASSWORD_TEXT, required=True)],
    firstname: Annotated[str, Param("firstname", required=True)],
    lastname: Annotated[str, Param("lastname", required=True)],
    email: Annotated[str, Param("email", required=True)],
    domainid: Annotated[
        UUIDStr | None,
        Param(
            "Creates the user under the specified domain. Has to be accompanied with the "
            "account parameter",
            entity="Domain",
        ),
    ] = None,
    timezone: Timezone = None,
    userid: ExternalUserId = None,
) -> dict[str, Any]:
    domain = find_domain(ctx.session, domainid or ctx.caller.domain_uuid)
    ctx.caller.check_domain(domain)
    owner = find_account_by_name(ctx.session, account, domain)
    user_service.check_account_admin(ctx.caller, owner)
    user = user_service.create_user(
        ctx.session,
        owner,
        username=username,
        password=password,
        firstname=firstname,
        lastname=lastname,
        email=email,
        timezone=timezone,
        uuid=userid,
    )
    return render(ctx, user)


@command(
    "updateUser",
    description="Updates a user account",
    response="user",
    event="USER.UPDATE",
    entity="User",
    fields=USER_FIELDS,
    since="1.0",
)
def update_user(
    ctx: Ctx,
    id: Annotated[UUIDStr, Param("User uuid", required=True, entity="User")],
    username: Annotated[str | None, Param("Unique username")] = None,
    firstname: Annotated[str | None, Param("first name")] = None,
    lastname: Annotated[str | None, Param("last name")] = None,
    email: Annotated[str | None, Param("email")] = None,
    timezone: Timezone = None,
    password: Annotated[
        str | None,
        Param(
            "Clear text password (default hashed to SHA256SALT). If you wish to use any other "
            "hashing algorithm, you would need to write a custom authentication adapter. Can't "
            "be passed when updating a user that is also the caller; the current password "
            "(currentpassword) must be given then.",
            length=1024,
        ),
    ] = None,
    currentpassword: Annotated[
        str | None,
        Param(
            "Current password that was being used by the user. You must inform the current "
            "password when updating the password.",
            length=1024,
            since="4.15",
        ),
    ] = None,
    userapikey: Annotated[
        str | None, Param("The API key for the user. Must be specified with userSecretKey")
    ] = None,
    usersecretkey: Annotated[
        str | None, Param("The secret key for the user. Must be specified with userApiKey")
    ] = None,
) -> dict[str, Any]:
    user = _target(ctx, id)
    user_service.update_profile(
        ctx.session, user, UserChanges(username, firstname, lastname, email, timezone)
    )
    if password is not None:
        user_service.change_password(ctx.caller, user, password, currentpassword)
    if (userapikey is None) != (usersecretkey is None):
        raise ParamError("Please provide a userApiKey/userSecretKey pair")
    if userapikey is not None and usersecretkey is not None:
        key_service.set_keys(ctx.session, ctx.runtime.box, user, userapikey, usersecretkey)
        _forget_keys(ctx)
    return render(ctx, user)


@command(
    "deleteUser",
    description="Deletes a user for an account",
    roles=ADMINS,
    event="USER.DELETE",
    entity="User",
    since="1.0",
)
def delete_user(
    ctx: Ctx, id: Annotated[UUIDStr, Param("id of the user to be deleted", required=True)]
) -> Success:
    user = _target(ctx, id)
    user_service.delete_user(ctx.session, ctx.caller, user)
    _forget_keys(ctx)
    ctx.event_resource = (user.uuid, user.username)
    return Success()


def _set_state(ctx: Ctx, id: str, state: str) -> dict[str, Any]:
    user = _target(ctx, id)
    user_service.set_state(ctx.session, ctx.caller, user, state)
    _forget_keys(ctx)
    return render(ctx, user)


@command(
    "enableUser",
    description="Enables a user account",
    response="user",
    roles=ADMINS,
    event="USER.ENABLE",
    entity="User",
    fields=USER_FIELDS,
    since="1.0",
)
def enable_user(
    ctx: Ctx, id: Annotated[UUIDStr, Param("Enables user by user ID.", required=True)]
) -> dict[str, Any]:
    return _set_state(ctx, id, user_service.ENABLED)


@command(
    "lockUser",
    description="Locks a user account",
    response="user",
    roles=ADMINS,
    event="USER.LOCK",
    entity="User",
    fields=USER_FIELDS,
    since="1.0",
)
def lock_user(
    ctx: Ctx, id: Annotated[UUIDStr, Param("Locks user by user ID.", required=True)]
) -> dict[str, Any]:
    return _set_state(ctx, id, user_service.LOCKED)


@command(
    "disableUser",
    kind=Kind.ASYNC,
    description="Disables a user account",
    response="user",
    roles=ADMINS,
    event="USER.DISABLE",
    entity="User",
    fields=USER_FIELDS,
    since="1.0",
)
def disable_user(
    ctx: Ctx, id: Annotated[UUIDStr, Param("Disables user by user ID.", required=True)]
) -> Submit:
    """Checks run now so a refusal is immediate; the job only applies the state."""
    user = _target(ctx, id)
    if user.id == ctx.caller.user_id:
        raise ParamError("A user cannot disable or lock themself")
    return Submit(
        params={"id": user.uuid},
        instance_type="User",
        instance_id=user.uuid,
        resource_name=user.username,
    )


@disable_user.runs
def run_disable_user(ctx: Ctx, id: str) -> dict[str, Any]:
    """Idempotent: disabling a disabled user changes nothing and answers the same."""
    return _set_state(ctx, id, user_service.DISABLED)


def keys_response(api_key: str | None, secret: str | None) -> dict[str, Any]:
    return {"apikey": api_key, "secretkey": secret}


@command(
    "registerUserKeys",
    description="This command allows a user to register for the developer API, returning a "
    "secret key and an API key. This request is made through the integration API port, so it "
    "is a privileged command and must be made on behalf of a user. It is up to the implementer "
    "just how the username and password are entered, and then how that translates to an "
    "integration API request. Both secret key and API key should be returned to the user",
    response="userkeys",
    event="REGISTER.USER.KEY",
    entity="User",
    fields=("apikey", "secretkey"),
    since="1.0",
)
def register_user_keys(
    ctx: Ctx, id: Annotated[UUIDStr, Param("User id", required=True, entity="User")]
) -> dict[str, Any]:
    user = _target(ctx, id)
    api_key, secret = key_service.register_keys(ctx.session, ctx.runtime.box, user)
    _forget_keys(ctx)
    ctx.event_resource = (user.uuid, user.username)
    return keys_response(api_key, secret)


@command(
    "getUserKeys",
    description="This command allows the user to query the seceret and API keys for the account",
    response="userkeys",
    fields=("apikey", "secretkey", "apikeyaccess"),
    since="4.10.0",
)
def get_user_keys(
    ctx: Ctx, id: Annotated[UUIDStr, Param("ID of the user whose keys are required", required=True)]
) -> dict[str, Any]:
    user = _target(ctx, id)
    api_key, secret = key_service.user_keys(ctx.runtime.box, user)
    return {**keys_response(api_key, secret), "apikeyaccess": True}
