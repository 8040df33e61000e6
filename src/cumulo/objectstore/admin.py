"""The admin API (Riak CS's ``/riak-cs/user``, ``/riak-cs/usage``) on the S3 port under
``/_admin/``: S3-only users, per-owner limits and usage reports.

``_admin`` can never be a bucket name (no underscores in bucket names), so the prefix shadows
no bucket in path-style addressing; virtual-host-style requests never reach here. Requests
are signed like any S3 request (SigV4 or SigV2) by an admin: a user of a cloud root-admin
account, or an S3-only user created with ``"admin": true``. Anyone else gets 403 AccessDenied
and changes nothing. Bodies are JSON; answers are JSON, or XML with ``Accept:
application/xml`` or ``?format=xml``. Errors are S3 XML error bodies like every other error.

    POST /_admin/users                 {"name", "email", "admin"?, "max_buckets"?, ...}
    GET  /_admin/users[?status=enabled|disabled]
    GET  /_admin/users/KEY             (key id or canonical id)
    PUT  /_admin/users/KEY             {"status"?, "name"?, "email"?, "new_key_secret"?,
                                        "max_buckets"?, "max_bytes"?, "max_objects"?}
    GET  /_admin/limits/OWNER          PUT /_admin/limits/OWNER {"max_buckets"?, ...}
    GET  /_admin/usage/OWNER?start=&end=&access=true&storage=true

OWNER is an S3-only user's key id or canonical id, a cloud user's API key, or a cloud
account's UUID: limits and usage belong to whoever owns buckets (an account, for cloud users).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from xml.sax.saxutils import escape

from anyio import to_thread

from cumulo.common.time import aware, utcnow
from cumulo.objectstore.errors import S3Error
from cumulo.objectstore.handlers.base import Ctx
from cumulo.objectstore.http import Response
from cumulo.objectstore.identity import Identities
from cumulo.objectstore.meta.users import (
    LIMIT_FIELDS,
    STATUSES,
    Limits,
    S3User,
    UserStore,
    check_email,
    check_limit,
    check_name,
)
from cumulo.objectstore.report import UsageReport, usage_report
from cumulo.objectstore.usage import UsageMeter

PREFIX = "/_admin"
MAX_WINDOW = timedelta(days=31)
_USER_FIELDS = {"status", "name", "email", "new_key_secret", *LIMIT_FIELDS}
_CREATE_FIELDS = {"name", "email", "admin", *LIMIT_FIELDS}
# Element names for list items in XML answers.
_ITEM_TAGS = {"users": "user", "access": "sample", "storage": "bucket", "operations": "operation"}


@dataclass
class Admin:
    users: UserStore
    identities: Identities
    meter: UsageMeter | None = None


def is_admin_path(raw_path: str, virtual_host: bool) -> bool:
    return not virtual_host and (raw_path == PREFIX or raw_path.startswith(PREFIX + "/"))


async def handle(admin: Admin, ctx: Ctx) -> Response:
    if ctx.principal is None or not ctx.principal.is_admin:
        raise S3Error("AccessDenied")
    parts = [p for p in ctx.req.raw_path[len(PREFIX) :].split("/") if p]
    method = ctx.req.method
    if parts == ["users"] and method == "POST":
        return _answer(ctx, await _create(admin, ctx), 201)
    if parts == ["users"] and method == "GET":
        return _answer(ctx, {"users": await _list(admin, ctx)})
    if len(parts) == 2 and parts[0] == "users" and method in ("GET", "PUT"):
        user = await _user(admin, parts[1])
        if method == "GET":
            return _answer(ctx, _user_dict(user))
        return _answer(ctx, await _update(admin, ctx, user))
    if len(parts) == 2 and parts[0] == "limits" and method in ("GET", "PUT"):
        owner = await _owner(admin, parts[1])
        if method == "PUT":
            body = await _json(ctx, set(LIMIT_FIELDS))
            current = await to_thread.run_sync(admin.users.limits, owner)
            lim = _merged_limits(current, body)
            await to_thread.run_sync(admin.users.set_limits, owner, lim)
        return _answer(ctx, await _limits_dict(admin, owner))
    if len(parts) == 2 and parts[0] == "usage" and method == "GET":
        owner = await _owner(admin, parts[1])
        return _answer(ctx, await _usage(admin, ctx, owner))
    raise S3Error("MethodNotAllowed" if parts and parts[0] in _RESOURCES else "NoSuchResource")


_RESOURCES = ("users", "limits", "usage")


# --- users ----------------------------------------------------------------------------------


async def _create(admin: Admin, ctx: Ctx) -> dict[str, Any]:
    body = await _json(ctx, _CREATE_FIELDS)
    name = check_name(body.get("name"))
    email = check_email(body.get("email"))
    is_admin = body.get("admin", False)
    if not isinstance(is_admin, bool):
        raise S3Error("InvalidArgument", "admin must be true or false.", ArgumentName="admin")
    lim = _merged_limits(Limits(), body)
    user, secret = await to_thread.run_sync(admin.users.create, name, email, is_admin, lim)
    return {**_user_dict(user), "key_secret": secret}


async def _list(admin: Admin, ctx: Ctx) -> list[dict[str, Any]]:
    status = ctx.req.arg("status")
    if status is not None and status not in STATUSES:
        raise S3Error(
            "InvalidArgument", "status must be enabled or disabled.", ArgumentName="status"
        )
    return [_user_dict(u) for u in await to_thread.run_sync(admin.users.list, status)]


async def _user(admin: Admin, ref: str) -> S3User:
    user = await to_thread.run_sync(admin.users.get, ref)
    if user is None:
        raise S3Error("NoSuchUser", UserName=ref)
    return user


async def _update(admin: Admin, ctx: Ctx, user: S3User) -> dict[str, Any]:
    """Every field is checked before anything is written: a bad field changes nothing."""
    body = await _json(ctx, _USER_FIELDS)
    values: dict[str, Any] = {}
    if "name" in body:
        values["name"] = check_name(body["name"])
    if "email" in body:
        values["email"] = check_email(body["email"])
    if "status" in body:
        if body["status"] not in STATUSES:
            raise S3Error(
                "InvalidArgument", "status must be enabled or disabled.", ArgumentName="status"
            )
        values["status"] = body["status"]
    rotate = body.get("new_key_secret", False)
    if not isinstance(rotate, bool):
        raise S3Error(
            "InvalidArgument",
            "new_key_secret must be true or false.",
            ArgumentName="new_key_secret",
        )
    lim = _merged_limits(user.limits, body) if set(LIMIT_FIELDS) & body.keys() else None
    await to_thread.run_sync(lambda: admin.users.update(user, **values))
    if lim is not None:
        await to_thread.run_sync(admin.users.set_limits, user.canonical_id, lim)
    secret = await to_thread.run_sync(admin.users.new_secret, user) if rotate else None
    out = _user_dict(await _user(admin, user.key_id))
    if secret is not None:
        out["key_secret"] = secret
    return out


def _user_dict(user: S3User) -> dict[str, Any]:
    return {
        "id": user.canonical_id,
        "key_id": user.key_id,
        "name": user.name,
        "display_name": user.name,
        "email": user.email,
        "status": user.status,
        "admin": user.is_admin,
        "created": _iso(user.created),
        "limits": user.limits.as_dict(),
    }


# --- limits and usage -----------------------------------------------------------------------


async def _owner(admin: Admin, ref: str) -> str:
    owner = await to_thread.run_sync(admin.identities.owner_of, ref)
    if owner is None:
        raise S3Error("NoSuchUser", UserName=ref)
    return owner


def _merged_limits(current: Limits, body: dict[str, Any]) -> Limits:
    values = current.as_dict()
    for name in LIMIT_FIELDS:
        if name in body:
            values[name] = check_limit(name, body[name])
    return Limits(**values)


async def _limits_dict(admin: Admin, owner: str) -> dict[str, Any]:
    lim = await to_thread.run_sync(admin.users.limits, owner)
    buckets, objects, size = await to_thread.run_sync(admin.users.usage, owner)
    return {
        "owner_id": owner,
        "limits": lim.as_dict(),
        "used": {"buckets": buckets, "objects": objects, "bytes": size},
    }


async def _usage(admin: Admin, ctx: Ctx, owner: str) -> dict[str, Any]:
    now = utcnow()
    start = _time_arg(ctx, "start", now - timedelta(days=1))
    end = _time_arg(ctx, "end", now + timedelta(hours=1))
    if end <= start or end - start > MAX_WINDOW:
        raise S3Error(
            "InvalidArgument", "end must follow start, at most 31 days later.", ArgumentName="end"
        )
    access, storage = _flag(ctx, "access"), _flag(ctx, "storage")
    if admin.meter is not None:
        await to_thread.run_sync(admin.meter.flush)
    report = await to_thread.run_sync(
        lambda: usage_report(admin.users.db, owner, start, end, access=access, storage=storage)
    )
    return report_dict(report, access, storage)


def report_dict(report: UsageReport, access: bool = True, storage: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "owner_id": report.owner_id,
        "start": _iso(report.start),
        "end": _iso(report.end),
        "sampled": _iso(report.sampled),
    }
    if access:
        out["operations"] = [{"name": k, **v} for k, v in report.operations().items()]
        out["access"] = [
            {
                "hour": _iso(r.hour),
                "bucket": r.bucket,
                "operation": r.operation,
                "count": r.count,
                "bytes_in": r.bytes_in,
                "bytes_out": r.bytes_out,
            }
            for r in report.access
        ]
    if storage:
        out["storage"] = [
            {"bucket": b.bucket, "objects": b.objects, "bytes": b.bytes} for b in report.storage
        ]
    out["totals"] = report.totals()
    return out


def _time_arg(ctx: Ctx, name: str, default: datetime) -> datetime:
    raw = ctx.req.arg(name)
    if raw is None:
        return default
    for parse in (_iso_time, _compact_time):
        try:
            return parse(raw)
        except ValueError:
            continue
    raise S3Error(
        "InvalidArgument",
        f"{name} must be an ISO 8601 time (2026-11-22T06:00:00Z) or 20261122T060000Z.",
        ArgumentName=name,
        ArgumentValue=raw,
    )


def _iso_time(raw: str) -> datetime:
    return aware(datetime.fromisoformat(raw.replace("Z", "+00:00")))


def _compact_time(raw: str) -> datetime:
    return aware(datetime.strptime(raw, "%Y%m%dT%H%M%SZ"))


def _flag(ctx: Ctx, name: str) -> bool:
    raw = ctx.req.arg(name)
    if raw is None:
        return True
    if raw.lower() not in ("true", "false"):
        raise S3Error("InvalidArgument", f"{name} must be true or false.", ArgumentName=name)
    return raw.lower() == "true"


# --- bodies and answers ---------------------------------------------------------------------


async def _json(ctx: Ctx, allowed: set[str]) -> dict[str, Any]:
    raw = await ctx.small_body()
    try:
        body = json.loads(raw or b"{}")
    except ValueError as err:
        raise S3Error("InvalidArgument", "The body is not valid JSON.") from err
    if not isinstance(body, dict):
        raise S3Error("InvalidArgument", "The body must be a JSON object.")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise S3Error(
            "InvalidArgument", f"Unknown field {unknown[0]}.", ArgumentName=str(unknown[0])
        )
    return body


def _answer(ctx: Ctx, body: dict[str, Any], status: int = 200) -> Response:
    wants_xml = ctx.req.arg("format") == "xml" or "xml" in ctx.req.headers.get("accept", "")
    if wants_xml:
        root = "Users" if set(body) == {"users"} else "Result"
        data = _xml(root, body["users"] if root == "Users" else body, "user")
        xml = f'<?xml version="1.0" encoding="UTF-8"?>\n{data}'.encode()
        return Response(status, [("Content-Type", "application/xml")], xml)
    text = json.dumps(body, sort_keys=False).encode()
    return Response(status, [("Content-Type", "application/json")], text)


def _xml(tag: str, value: Any, item: str = "item") -> str:
    if isinstance(value, dict):
        inner = "".join(_xml(k, v, _ITEM_TAGS.get(k, "item")) for k, v in value.items())
        return f"<{tag}>{inner}</{tag}>"
    if isinstance(value, list):
        return f"<{tag}>{''.join(_xml(item, v) for v in value)}</{tag}>"
    if value is None:
        return f"<{tag}/>"
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return f"<{tag}>{escape(text)}</{tag}>"


def _iso(when: datetime) -> str:
    return aware(when).strftime("%Y-%m-%dT%H:%M:%SZ")
