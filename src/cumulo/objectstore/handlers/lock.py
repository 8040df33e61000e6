"""Object lock: a bucket's lock configuration (default retention), and per-version retention
(GOVERNANCE or COMPLIANCE until a date) and legal holds that refuse deleting the version.

A version's lock lives in its stored headers as the three headers S3 returns on GET and HEAD
(``x-amz-object-lock-mode``, ``-retain-until-date``, ``-legal-hold``), so reads echo it with
nothing more. Deleting a *version* is refused while a legal hold is on, or its retention has
not expired (GOVERNANCE yields to ``x-amz-bypass-governance-retention: true``); a delete
without a version id only adds a delete marker, which S3 allows.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row

from cumulo.common.time import aware, utcnow
from cumulo.objectstore.errors import S3Error
from cumulo.objectstore.handlers.access import authorize
from cumulo.objectstore.handlers.base import Ctx
from cumulo.objectstore.http import Response, xml_response
from cumulo.objectstore.meta.store import Bucket
from cumulo.objectstore.xml import Node, parse, render

MODES = ("GOVERNANCE", "COMPLIANCE")
MODE = "x-amz-object-lock-mode"
UNTIL = "x-amz-object-lock-retain-until-date"
HOLD = "x-amz-object-lock-legal-hold"
BYPASS = "x-amz-bypass-governance-retention"
LOCK_HEADERS = (MODE, UNTIL, HOLD)


def enabled(bucket: Bucket) -> bool:
    return bucket.object_lock is not None


def _iso(when: datetime) -> str:
    return aware(when).strftime("%Y-%m-%dT%H:%M:%S.") + f"{aware(when).microsecond // 1000:03d}Z"


def _parse_date(raw: str | None) -> datetime:
    if not raw:
        raise S3Error("MalformedXML")
    try:
        return aware(datetime.fromisoformat(raw.strip().replace("Z", "+00:00")))
    except ValueError as err:
        raise S3Error("InvalidArgument", "The retain until date is not valid.") from err


def _not_locked_bucket() -> S3Error:
    return S3Error("InvalidRequest", "Bucket is missing Object Lock Configuration")


# --- writes: the lock a new version starts with ----------------------------------------------


def for_new_version(ctx: Ctx, bucket: Bucket) -> dict[str, str]:
    """The lock headers a PUT (or multipart initiation) gives the new version: its own
    x-amz-object-lock-* headers, else the bucket's default retention."""
    h = ctx.req.headers
    asked = {k: h[k] for k in LOCK_HEADERS if k in h}
    if asked and not enabled(bucket):
        raise _not_locked_bucket()
    out: dict[str, str] = {}
    if MODE in asked or UNTIL in asked:
        if MODE not in asked or UNTIL not in asked or asked[MODE] not in MODES:
            raise S3Error(
                "InvalidArgument",
                "x-amz-object-lock-mode and x-amz-object-lock-retain-until-date must both be "
                "supplied, the mode GOVERNANCE or COMPLIANCE.",
            )
        out[MODE] = asked[MODE]
        out[UNTIL] = _iso(_parse_date(asked[UNTIL]))
    elif enabled(bucket):
        rule = (bucket.object_lock or {}).get("rule")
        if rule:
            days = int(rule.get("days") or 0) + 365 * int(rule.get("years") or 0)
            out[MODE] = str(rule["mode"])
            out[UNTIL] = _iso(utcnow() + timedelta(days=days))
    if HOLD in asked:
        if asked[HOLD] not in ("ON", "OFF"):
            raise S3Error("InvalidArgument", "Legal hold status must be ON or OFF.")
        out[HOLD] = asked[HOLD]
    return out


# --- deletes ---------------------------------------------------------------------------------


def check_delete(headers: dict[str, Any], bypass: bool) -> None:
    """Refuse deleting a version its lock protects."""
    if headers.get(HOLD) == "ON":
        raise S3Error("AccessDenied", "The object has a legal hold.")
    until = headers.get(UNTIL)
    if until is None or _parse_date(until) <= utcnow():
        return
    if headers.get(MODE) == "COMPLIANCE" or not bypass:
        raise S3Error("AccessDenied", "The object is protected by its retention.")


def bypassing(ctx: Ctx) -> bool:
    return ctx.req.headers.get(BYPASS, "").lower() == "true"


# --- bucket configuration ------------------------------------------------------------------


async def get_configuration(ctx: Ctx) -> Response:
    bucket = await ctx.bucket()
    authorize(ctx, bucket, "s3:GetBucketObjectLockConfiguration")
    if not enabled(bucket):
        raise S3Error(
            "ObjectLockConfigurationNotFoundError",
            "Object Lock configuration does not exist for this bucket",
            BucketName=bucket.name,
        )
    items: list[Node | None] = [Node("ObjectLockEnabled", "Enabled")]
    rule = (bucket.object_lock or {}).get("rule")
    if rule:
        period = (
            Node("Days", str(rule["days"]))
            if rule.get("days")
            else Node("Years", str(rule["years"]))
        )
        retention = Node("DefaultRetention", [Node("Mode", rule["mode"]), period])
        items.append(Node("Rule", [retention]))
    return xml_response(render(Node("ObjectLockConfiguration", items)))


async def put_configuration(ctx: Ctx) -> Response:
    bucket = await ctx.bucket()
    authorize(ctx, bucket, "s3:PutBucketObjectLockConfiguration")
    root = parse(await ctx.small_body())
    if not enabled(bucket) and bucket.versioning != "Enabled":
        raise S3Error(
            "InvalidBucketState",
            "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration",
        )
    if (root.findtext("ObjectLockEnabled") or "").strip() != "Enabled":
        raise S3Error("MalformedXML")
    rule = _rule(root)
    await ctx.run(ctx.svc.meta.set_bucket_field, bucket, object_lock={"rule": rule})
    return Response(200)


def _rule(root: Any) -> dict[str, Any] | None:
    node = root.find("Rule/DefaultRetention")
    if node is None:
        return None
    mode = (node.findtext("Mode") or "").strip()
    if mode not in MODES:
        raise S3Error("MalformedXML")
    days, years = node.findtext("Days"), node.findtext("Years")
    if (days is None) == (years is None):
        raise S3Error("MalformedXML")
    raw = (days if days is not None else years) or ""
    try:
        value = int(raw.strip())
    except ValueError as err:
        raise S3Error("MalformedXML") from err
    if value <= 0:
        raise S3Error("InvalidRetentionPeriod", "The retention period must be a positive integer.")
    return {
        "mode": mode,
        "days": value if days is not None else None,
        "years": value if years is not None else None,
    }


# --- per-version retention and legal hold ---------------------------------------------------


async def _version(ctx: Ctx, action: str) -> tuple[Bucket, Row[Any]]:
    bucket = await ctx.bucket()
    version_id = ctx.req.arg("versionId")
    row = await ctx.run(ctx.svc.meta.get_version, bucket, ctx.key, version_id)
    if row.delete_marker:
        raise S3Error("NoSuchKey", Key=ctx.key)
    authorize(ctx, bucket, action, ctx.key, row.acl)
    if not enabled(bucket):
        raise _not_locked_bucket()
    return bucket, row


async def get_retention(ctx: Ctx) -> Response:
    _, row = await _version(ctx, "s3:GetObjectRetention")
    if MODE not in row.headers:
        raise S3Error(
            "NoSuchObjectLockConfiguration",
            "The specified object does not have a ObjectLock configuration",
        )
    body = Node(
        "Retention", [Node("Mode", row.headers[MODE]), Node("RetainUntilDate", row.headers[UNTIL])]
    )
    return xml_response(render(body))


async def put_retention(ctx: Ctx) -> Response:
    _, row = await _version(ctx, "s3:PutObjectRetention")
    root = parse(await ctx.small_body())
    mode = (root.findtext("Mode") or "").strip()
    if mode not in MODES:
        raise S3Error("MalformedXML")
    until = _parse_date(root.findtext("RetainUntilDate"))
    current_mode, current_until = row.headers.get(MODE), row.headers.get(UNTIL)
    if current_mode is not None and current_until is not None:
        active = _parse_date(current_until) > utcnow()
        weaker = until < _parse_date(current_until) or mode != current_mode
        if active and weaker and (current_mode == "COMPLIANCE" or not bypassing(ctx)):
            raise S3Error("AccessDenied", "The retention may not be shortened or changed.")
    headers = {**row.headers, MODE: mode, UNTIL: _iso(until)}
    await ctx.run(ctx.svc.meta.update_version, row, headers=headers)
    return Response(200)


async def get_legal_hold(ctx: Ctx) -> Response:
    _, row = await _version(ctx, "s3:GetObjectLegalHold")
    if HOLD not in row.headers:
        raise S3Error(
            "NoSuchObjectLockConfiguration",
            "The specified object does not have a ObjectLock configuration",
        )
    return xml_response(render(Node("LegalHold", [Node("Status", row.headers[HOLD])])))


async def put_legal_hold(ctx: Ctx) -> Response:
    _, row = await _version(ctx, "s3:PutObjectLegalHold")
    root = parse(await ctx.small_body())
    status = (root.findtext("Status") or "").strip()
    if status not in ("ON", "OFF"):
        raise S3Error("MalformedXML")
    await ctx.run(ctx.svc.meta.update_version, row, headers={**row.headers, HOLD: status})
    return Response(200)
