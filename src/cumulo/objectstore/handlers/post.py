"""Browser uploads: POST to a bucket with a signed policy document (presigned POST).

The form's policy (base64 JSON) says until when and with which fields an upload is allowed;
its signature (SigV4: hex HMAC of the base64 policy with the day's signing key; SigV2: base64
HMAC-SHA1) proves a key holder issued it. Every form field must be covered by a condition,
the file streams into a blob like any PUT, and ``content-length-range`` is enforced while
it streams.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from cumulo.common.time import utcnow
from cumulo.objectstore import acl
from cumulo.objectstore.auth import Credentials
from cumulo.objectstore.auth.sigv4 import signing_key
from cumulo.objectstore.auth.ssec import customer_key
from cumulo.objectstore.errors import S3Error
from cumulo.objectstore.handlers import ssec
from cumulo.objectstore.handlers.access import authorize
from cumulo.objectstore.handlers.base import Ctx, quote_etag
from cumulo.objectstore.handlers.blobio import write_body
from cumulo.objectstore.handlers.config import MAX_OBJECT_TAGS, parse_tags
from cumulo.objectstore.handlers.form import FormReader, boundary_of
from cumulo.objectstore.handlers.object import check_key, stored_headers, user_meta
from cumulo.objectstore.http import Response, xml_response
from cumulo.objectstore.identity import Principal
from cumulo.objectstore.meta.store import NewVersion
from cumulo.objectstore.xml import Node, render

# Fields that need no condition in the policy.
EXEMPT = {"policy", "x-amz-signature", "signature", "awsaccesskeyid", "file", "bucket"}


async def post_object(ctx: Ctx) -> Response:
    bucket = await ctx.bucket()
    reader = FormReader(ctx.body(), boundary_of(ctx.req.headers.get("content-type", "")))
    await reader.start()
    fields, filename = await _fields(reader)
    if "key" in fields:
        # The policy judges the key as stored, after ${filename} is filled in.
        fields["key"] = fields["key"].replace("${filename}", filename)
    principal = _verify(ctx, fields, bucket.name)
    ctx.principal = principal if principal is not None else ctx.principal
    key = fields.get("key", "")
    if not key:
        raise S3Error("InvalidArgument", "Bucket POST must contain a field named 'key'.")
    check_key(key)
    authorize(ctx, bucket, "s3:PutObject", key)
    owner = ctx.owner()
    low, high = _length_range(fields)
    # SSE-C from the form's fields (lower-cased names, as headers would be).
    sse_key = customer_key(fields, secure=ssec.secure(ctx))
    written = await write_body(ctx, _limited(reader.stream(), high), encrypt=sse_key)
    await reader.drain()
    if written.size < low:
        await ctx.run(ctx.svc.meta.forget, [written.blob_id])
        raise S3Error(
            "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed size"
        )
    new = NewVersion(
        size=written.size,
        etag=written.md5,
        content_type=fields.get("content-type", "binary/octet-stream"),
        meta=user_meta(fields),
        headers={**stored_headers(fields), **ssec.stored(sse_key)},
        manifest=[[written.blob_id, written.size]],
        owner_id=owner.owner_id,
        owner_name=owner.display_name,
        acl=acl.from_headers(
            {"x-amz-acl": fields.get("acl", "private")},
            owner.owner_id,
            owner.display_name,
            bucket.owner_id,
        ),
    )
    if fields.get("tagging"):
        new.tags = parse_tags(fields["tagging"].encode(), MAX_OBJECT_TAGS)
    version_id, versioning = await ctx.run(ctx.svc.meta.put_version, bucket.name, key, new)
    return _reply(fields, bucket.name, key, written.md5, version_id if versioning else None)


async def _fields(reader: FormReader) -> tuple[dict[str, str], str]:
    fields: dict[str, str] = {}
    while True:
        part = await reader.next_part()
        if part is None:
            raise S3Error("InvalidArgument", "POST requires exactly one file upload per request.")
        name = part.get("name", "").lower()
        if name == "file":
            return fields, part.get("filename", "")
        fields[name] = (await reader.value()).decode("utf-8", "replace")


async def _limited(stream: Any, high: int | None) -> Any:
    size = 0
    async for chunk in stream:
        size += len(chunk)
        if high is not None and size > high:
            raise S3Error("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size")
        yield chunk


def _length_range(fields: dict[str, str]) -> tuple[int, int | None]:
    for cond in _policy(fields).get("conditions", []) if "policy" in fields else []:
        if (
            isinstance(cond, list)
            and len(cond) == 3
            and str(cond[0]).lower() == "content-length-range"
        ):
            return int(cond[1]), int(cond[2])
    return 0, None


def _policy(fields: dict[str, str]) -> dict[str, Any]:
    try:
        doc = json.loads(base64.b64decode(fields["policy"], validate=True))
    except (ValueError, binascii.Error) as err:
        raise S3Error("InvalidPolicyDocument", "Invalid Policy: Invalid JSON.") from err
    if not isinstance(doc, dict):
        raise S3Error("InvalidPolicyDocument", "Invalid Policy: Invalid JSON.")
    return doc


def _verify(ctx: Ctx, fields: dict[str, str], bucket: str) -> Principal | None:
    """The signer of the form, or None for an unsigned (anonymous) upload."""
    if "policy" not in fields:
        if "x-amz-signature" in fields or "signature" in fields:
            raise S3Error("InvalidArgument", "Bucket POST must contain a field named 'policy'.")
        return None
    creds = _check_signature(ctx, fields)
    doc = _policy(fields)
    _check_expiration(doc)
    conditions = doc.get("conditions")
    if not isinstance(conditions, list):
        raise S3Error("InvalidPolicyDocument", "Invalid Policy: Policy missing conditions.")
    _check_conditions(conditions, {**fields, "bucket": bucket})
    principal: Principal = creds.principal
    return principal


def _lookup(ctx: Ctx, access_key: str) -> Credentials:
    creds = ctx.svc.lookup(access_key) if ctx.svc.lookup is not None else None
    if creds is None:
        raise S3Error("InvalidAccessKeyId", AWSAccessKeyId=access_key)
    return creds


def _check_signature(ctx: Ctx, fields: dict[str, str]) -> Credentials:
    policy = fields["policy"]
    if "x-amz-signature" in fields:
        parts = fields.get("x-amz-credential", "").split("/")
        if len(parts) != 5 or fields.get("x-amz-algorithm") != "AWS4-HMAC-SHA256":
            raise S3Error("InvalidArgument", "Invalid x-amz-credential or x-amz-algorithm")
        creds = _lookup(ctx, parts[0])
        key = signing_key(creds.secret_key, parts[1], parts[2], parts[3])
        expected = hmac.new(key, policy.encode(), hashlib.sha256).hexdigest()
    elif "signature" in fields and "awsaccesskeyid" in fields:
        creds = _lookup(ctx, fields["awsaccesskeyid"])
        digest = hmac.new(creds.secret_key.encode(), policy.encode(), hashlib.sha1).digest()
        expected = base64.b64encode(digest).decode()
    else:
        raise S3Error("InvalidArgument", "Bucket POST must contain a signature.")
    provided = fields.get("x-amz-signature") or fields.get("signature", "")
    if not hmac.compare_digest(expected.encode(), provided.encode()):
        raise S3Error("SignatureDoesNotMatch")
    return creds


def _check_expiration(doc: dict[str, Any]) -> None:
    raw = doc.get("expiration")
    if not isinstance(raw, str):
        raise S3Error("InvalidPolicyDocument", "Invalid Policy: Policy missing expiration.")
    try:
        if not raw.endswith("Z") or "T" not in raw:
            raise ValueError(raw)
        when = datetime.fromisoformat(raw[:-1] + "+00:00")
    except ValueError as err:
        raise S3Error(
            "InvalidPolicyDocument", "Invalid Policy: Invalid 'expiration' value."
        ) from err
    if (when if when.tzinfo else when.replace(tzinfo=UTC)) < utcnow():
        raise S3Error("AccessDenied", "Invalid according to Policy: Policy expired.")


def _check_conditions(conditions: list[Any], fields: dict[str, str]) -> None:
    covered = set(EXEMPT)
    for cond in conditions:
        if isinstance(cond, dict):
            if len(cond) != 1:
                raise S3Error("InvalidPolicyDocument", "Invalid Policy: Invalid condition.")
            for name, value in cond.items():
                covered.add(name.lower())
                _require(fields.get(name.lower()) == str(value), name)
        elif isinstance(cond, list) and len(cond) == 3:
            op, name, value = str(cond[0]).lower(), str(cond[1]), cond[2]
            if op == "content-length-range":
                continue
            field = name.lstrip("$").lower()
            covered.add(field)
            actual = fields.get(field, "")
            if op == "eq":
                _require(actual == str(value), field)
            elif op == "starts-with":
                _require(actual.startswith(str(value)), field)
            else:
                raise S3Error("InvalidPolicyDocument", f"Invalid Policy: Invalid condition {op}")
        else:
            raise S3Error("InvalidPolicyDocument", "Invalid Policy: Invalid condition.")
    for name in fields:
        if name not in covered and not name.startswith("x-ignore-"):
            raise S3Error(
                "AccessDenied", f"Invalid according to Policy: Extra input fields: {name}"
            )


def _require(ok: bool, name: str) -> None:
    if not ok:
        raise S3Error(
            "AccessDenied", f"Invalid according to Policy: Policy Condition failed: {name}"
        )


def _reply(
    fields: dict[str, str], bucket: str, key: str, etag: str, version_id: str | None
) -> Response:
    headers = [("ETag", quote_etag(etag)), ("Location", f"/{bucket}/{key}")]
    if version_id:
        headers.append(("x-amz-version-id", version_id))
    redirect = fields.get("success_action_redirect") or fields.get("redirect")
    if redirect:
        sep = "&" if "?" in redirect else "?"
        target = (
            redirect + sep + urlencode({"bucket": bucket, "key": key, "etag": quote_etag(etag)})
        )
        return Response(303, [*headers[:1], *headers[2:], ("Location", target)])
    status = fields.get("success_action_status", "204")
    if status == "201":
        body = Node(
            "PostResponse",
            [
                Node("Location", f"/{bucket}/{key}"),
                Node("Bucket", bucket),
                Node("Key", key),
                Node("ETag", quote_etag(etag)),
            ],
        )
        return xml_response(render(body, namespace=False), 201, headers)
    return Response(200 if status == "200" else 204, headers)
