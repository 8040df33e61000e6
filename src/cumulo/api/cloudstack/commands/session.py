"""login and logout: session authentication as CloudStack's ApiServlet does it (§1.2)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cumulo.api.cloudstack.dispatch import KEY_COOKIE, SESSION_COOKIE
from cumulo.api.cloudstack.endpoint import LOGIN_POST_ONLY
from cumulo.api.cloudstack.registry import Param, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx, Flat
from cumulo.db.models import User
from cumulo.services import events
from cumulo.services.errors import MethodNotAllowed
from cumulo.services.identity import auth


def timezone_offset(name: str | None) -> str | None:
    """Hours east of UTC now, as Java's Float.toString prints them ("5.5", "-7.0").

    CloudStack sends it only for users with a time zone, and treats an unknown zone as GMT.
    """
    if not name:
        return None
    try:
        zone: tzinfo = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        zone = UTC
    offset = datetime.now(zone).utcoffset() or timedelta(0)
    return str(offset.total_seconds() / 3600)


@command(
    "login",
    description="Logs a user into the CloudStack. A successful login attempt "
    "will generate a JSESSIONID cookie value that can be passed in subsequent Query "
    'command calls until the "logout" command has been issued or the session has '
    "expired.",
    public=True,
    since="1.0",
)
def login(
    ctx: Ctx,
    username: Annotated[str, Param("Username", required=True)],
    password: Annotated[str, Param("Plain text password", required=True, length=1024)],
    domain: Annotated[
        str | None,
        Param(
            "Path of the domain that the user belongs to. "
            "Example: domain=/com/cloud/internal. If no domain is "
            "passed in, the ROOT (/) domain is assumed."
        ),
    ] = None,
    domainid: Annotated[
        UUIDStr | None,
        Param(
            "The id of the domain that the user belongs to. "
            "If both domain and domainId are passed in, "
            '"domainId" parameter takes precedence.',
            name="domainId",
        ),
    ] = None,
) -> Flat:
    if ctx.request.method != "POST":
        raise MethodNotAllowed(LOGIN_POST_ONLY)
    caller = auth.password_login(ctx.session, username, password, domain, domainid)
    timeout = ctx.runtime.settings.api.session_timeout
    # As ApiServlet: a login ends the session the client came with (no session fixation).
    auth.close_session(ctx.session, ctx.request.cookies.get(SESSION_COOKIE))
    new = auth.open_session(ctx.session, caller, timeout)
    user = ctx.session.get(User, caller.user_id)
    assert user is not None
    events.record(
        ctx.session,
        caller,
        "USER.LOGIN",
        f"user has logged in from {username}",
        resource_id=caller.user_uuid,
        resource_type="User",
        resource_name=username,
    )
    cookie = {"httponly": True, "samesite": "lax", "path": "/"}
    ctx.reply.cookies += [(SESSION_COOKIE, new.cookie, cookie), (KEY_COOKIE, new.key, cookie)]
    return Flat(
        {
            "username": caller.username,
            "userid": caller.user_uuid,
            "domainid": caller.domain_uuid,
            "timeout": timeout,
            "account": caller.account_name,
            "firstname": user.firstname,
            "lastname": user.lastname,
            # LoginCmdResponse.type is a String ("1"), unlike listUsers' accounttype.
            "type": str(caller.account_type),
            "timezone": user.timezone,
            "timezoneoffset": timezone_offset(user.timezone),
            "registered": "false",
            "sessionkey": new.key,
            "is2faenabled": "false",
            "is2faverified": "false",
            "managementserverid": ctx.runtime.server_uuid,
        }
    )


@command("logout", description="Logs out the user", since="1.0")
def logout(ctx: Ctx) -> Flat:
    auth.close_session(ctx.session, ctx.request.cookies.get(SESSION_COOKIE))
    gone = {"max_age": 0, "expires": 0, "path": "/"}
    ctx.reply.cookies += [(SESSION_COOKIE, "", gone), (KEY_COOKIE, "", gone)]
    events.record(
        ctx.session,
        ctx.caller,
        "USER.LOGOUT",
        "user has logged out",
        resource_id=ctx.caller.user_uuid,
        resource_type="User",
        resource_name=ctx.caller.username,
    )
    return Flat({"description": "success"})
