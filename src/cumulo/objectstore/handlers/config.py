"""Bucket and object sub-resources: versioning, ACLs, tagging, CORS, policy, lifecycle.

Configurations S3 returns as the client sent them (CORS, lifecycle, policy) are validated and
stored as their text; the rest are stored structured.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from datetime import datetime
from typing import Any

from cumulo.objectstore import acl
from cumulo.objectstore.errors import S3Error
from cumulo.objectstore.handlers import public_block
from cumulo.objectstore.handlers.access import authorize, tag_context
from cumulo.objectstore.handlers.base import Ctx
from cumulo.objectstore.http import Response, xml_response
from cumulo.objectstore.meta.store import Bucket
from cumulo.objectstore.policy import bucket_policy, cors
from cumulo.objectstore.xml import NS, Node, parse, render

MAX_OBJECT_TAGS = 10
MAX_BUCKET_TAGS = 50


async def _bucket_for(ctx: Ctx, action: str) -> Bucket:
    bucket = await ctx.bucket()
    authorize(ctx, bucket, action)
    return bucket


# --- versioning ---------------------------------------------------------------------------


async def get_versioning(ctx: Ctx) -> Response:
    bucket = await _bucket_for(ctx, "s3:GetBucketVersioning")
    status = [Node("Status", bucket.versioning)] if bucket.versioning else []
    return xml_response(render(Node("VersioningConfiguration", status)))


async def put_versioning(ctx: Ctx) -> Response:
    bucket = await _bucket_for(ctx, "s3:PutBucketVersioning")
    status = (parse(await ctx.small_body()).findtext("Status") or "").strip()
    if status not in ("Enabled", "Suspended"):
        raise S3Error("MalformedXML")
    if status == "Suspended" and bucket.object_lock is not None:
        raise S3Error(
            "InvalidBucketState",
            "An Object Lock configuration is present on this bucket, so the versioning state "
            "cannot be changed.",
        )
    await ctx.run(ctx.svc.meta.set_bucket_field, bucket, versioning=status)
    return Response(200)


# --- ACLs ---------------------------------------------------------------------------------


async def get_bucket_acl(ctx: Ctx) -> Response:
    bucket = await _bucket_for(ctx, "s3:GetBucketAcl")
    return xml_response(acl.render(bucket.acl, await _names(ctx, bucket.acl, {})))


async def put_bucket_acl(ctx: Ctx) -> Response:
    bucket = await _bucket_for(ctx, "s3:PutBucketAcl")
    new = await _acl_from_request(ctx, bucket.owner_id, bucket.acl["owner"][1])
    public_block.check_acl(bucket, new)
    await ctx.run(ctx.svc.meta.set_bucket_field, bucket, acl=new)
    return Response(200)


async def _acl_from_request(ctx: Ctx, owner_id: str, owner_name: str) -> dict[str, Any]:
    body = await ctx.small_body()
    h = ctx.req.headers
    if body.strip():
        if "x-amz-acl" in h:
            raise S3Error("UnexpectedContent", "This request does not support content")
        new = await ctx.run(acl.parse, body, owner_id, owner_name, ctx.svc.resolve_email)
    else:
        new = await ctx.run(
            acl.from_headers, h, owner_id, owner_name, resolve_email=ctx.svc.resolve_email
        )
    await _check_grantees(ctx, new)
    return new


async def _names(ctx: Ctx, stored: dict[str, Any], known: dict[str, str]) -> dict[str, str]:
    """Display names of an ACL's grantees (S3 shows each grant's DisplayName)."""
    lookup = ctx.svc.display_name
    names = dict(known)
    if lookup is None:
        return names
    for who in acl.grantee_ids(stored):
        if who not in names and who != stored["owner"][0]:
            name = await ctx.run(lookup, who)
            if name is not None:
                names[who] = name
    return names


async def _check_grantees(ctx: Ctx, new: dict[str, Any]) -> None:
    """A grant to a canonical id nobody has is refused (S3: InvalidArgument)."""
    exists = ctx.svc.owner_exists
    if exists is None:
        return
    for kind, who, _ in new.get("grants", []):
        if kind == "user" and who != new["owner"][0] and not await ctx.run(exists, who):
            raise S3Error("InvalidArgument", "Invalid id", ArgumentName="CanonicalUser/ID")


async def _object_row(ctx: Ctx, action: str) -> Any:
    bucket = await ctx.bucket()
    version_id = ctx.req.arg("versionId")
    row = await ctx.run(ctx.svc.meta.get_version, bucket, ctx.key, version_id)
    if row.delete_marker:
        raise S3Error("NoSuchKey", Key=ctx.key)
    if version_id is not None:
        action = action.replace("Object", "ObjectVersion", 1)
    authorize(ctx, bucket, action, ctx.key, row.acl, tag_context(row.tags))
    return bucket, row


async def get_object_acl(ctx: Ctx) -> Response:
    bucket, row = await _object_row(ctx, "s3:GetObjectAcl")
    names = await _names(ctx, row.acl, {bucket.owner_id: bucket.owner_name})
    return xml_response(acl.render(row.acl, names))


async def put_object_acl(ctx: Ctx) -> Response:
    bucket, row = await _object_row(ctx, "s3:PutObjectAcl")
    new = await _acl_from_request(ctx, row.owner_id, row.owner_name)
    public_block.check_acl(bucket, new)
    await ctx.run(ctx.svc.meta.update_version, row, acl=new)
    return Response(200)


# --- tagging ------------------------------------------------------------------------------


def parse_tags(body: bytes, limit: int) -> dict[str, str]:
    tags: dict[str, str] = {}
    for tag in parse(body).findall("TagSet/Tag"):
        key, value = tag.findtext("Key"), tag.findtext("Value") or ""
        if key is None or key in tags or len(key) > 128 or len(value) > 256:
            raise S3Error("InvalidTag")
        tags[key] = value
    if len(tags) > limit:
        raise S3Error("InvalidTag", f"Object tags cannot be greater than {limit}")
    return tags


def _tagging_xml(tags: dict[str, str]) -> bytes:
    items = [Node("Tag", [Node("Key", k), Node("Value", v)]) for k, v in sorted(tags.items())]
    return render(Node("Tagging", [Node("TagSet", items)]))


async def get_object_tagging(ctx: Ctx) -> Response:
    _, row = await _object_row(ctx, "s3:GetObjectTagging")
    return xml_response(_tagging_xml(row.tags or {}))


async def put_object_tagging(ctx: Ctx) -> Response:
    _, row = await _object_row(ctx, "s3:PutObjectTagging")
    tags = parse_tags(await ctx.small_body(), MAX_OBJECT_TAGS)
    await ctx.run(ctx.svc.meta.update_version, row, tags=tags)
    return Response(200)


async def delete_object_tagging(ctx: Ctx) -> Response:
    _, row = await _object_row(ctx, "s3:DeleteObjectTagging")
    await ctx.run(ctx.svc.meta.update_version, row, tags=None)
    return Response(204)


async def get_bucket_tagging(ctx: Ctx) -> Response:
    bucket = await _bucket_for(ctx, "s3:GetBucketTagging")
    tags = await ctx.run(ctx.svc.meta.bucket_field, bucket, "tags")
    if not tags:
        raise S3Error("NoSuchTagSet")
    return xml_response(_tagging_xml(tags))


async def put_bucket_tagging(ctx: Ctx) -> Response:
    bucket = await _bucket_for(ctx, "s3:PutBucketTagging")
    tags = parse_tags(await ctx.small_body(), MAX_BUCKET_TAGS)
    await ctx.run(ctx.svc.meta.set_bucket_field, bucket, tags=tags)
    return Response(204)


async def delete_bucket_tagging(ctx: Ctx) -> Response:
    bucket = await _bucket_for(ctx, "s3:PutBucketTagging")
    await ctx.run(ctx.svc.meta.set_bucket_field, bucket, tags=None)
    return Response(204)


# --- stored documents: CORS, lifecycle, policy ----------------------------------------------

DOCUMENTS = {
    "cors": ("NoSuchCORSConfiguration", "CORSRule"),
    "lifecycle": ("NoSuchLifecycleConfiguration", "Rule"),
    "policy": ("NoSuchBucketPolicy", ""),
}


# (get, put, delete) actions of each stored document.
DOCUMENT_ACTIONS = {
    "cors": ("s3:GetBucketCORS", "s3:PutBucketCORS", "s3:PutBucketCORS"),
    "lifecycle": (
        "s3:GetLifecycleConfiguration",
        "s3:PutLifecycleConfiguration",
        "s3:PutLifecycleConfiguration",
    ),
    "policy": ("s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy"),
}


def _validate(kind: str, body: bytes, bucket: str) -> str:
    """Refuse a document S3 would refuse; the policy and CORS rules come from the library."""
    if kind == "policy":
        parsed = bucket_policy.parse_policy(body, bucket)
        if any(s.effect == "Allow" and s.not_principal for s in parsed.statements):
            # AWS and radosgw refuse it: "everyone but X" is too easy to get wrong.
            raise S3Error("MalformedPolicy", "NotPrincipal is only supported with Deny.")
        return body.decode()
    if kind == "cors":
        cors.parse_cors_xml(body)
        return body.decode()
    return _lifecycle(body)


def _lifecycle(body: bytes) -> str:
    """Validate a lifecycle configuration and give every rule an ID (S3 makes one up)."""
    root = parse(body)
    rules = root.findall("Rule")
    if not rules:
        raise S3Error("MalformedXML")
    seen: set[str] = set()
    for rule in rules:
        if (rule.findtext("Status") or "") not in ("Enabled", "Disabled"):
            raise S3Error("MalformedXML")
        rule_id = rule.findtext("ID")
        if rule_id is None:
            ET.SubElement(rule, "ID").text = rule_id = uuid.uuid4().hex
        if len(rule_id) > 255 or rule_id in seen:
            raise S3Error("InvalidArgument", "Rule IDs must be unique and at most 255 characters")
        seen.add(rule_id)
        for path in ("Expiration/Date", "Transition/Date"):
            _midnight(rule.findtext(path))
    root.set("xmlns", NS)
    return ET.tostring(root, encoding="unicode")


def _midnight(value: str | None) -> None:
    """Lifecycle dates are ISO 8601 midnights in UTC."""
    if value is None:
        return
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as err:
        raise S3Error("InvalidArgument", "'Date' must be at midnight GMT") from err
    if (when.hour, when.minute, when.second, when.microsecond) != (0, 0, 0, 0):
        raise S3Error("InvalidArgument", "'Date' must be at midnight GMT")


async def get_document(ctx: Ctx, kind: str) -> Response:
    bucket = await _bucket_for(ctx, DOCUMENT_ACTIONS[kind][0])
    text = await ctx.run(ctx.svc.meta.bucket_field, bucket, kind)
    if not text:
        raise S3Error(DOCUMENTS[kind][0], BucketName=bucket.name)
    content_type = "application/json" if kind == "policy" else "application/xml"
    return Response(200, [("Content-Type", content_type)], text.encode())


async def put_document(ctx: Ctx, kind: str) -> Response:
    bucket = await _bucket_for(ctx, DOCUMENT_ACTIONS[kind][1])
    text = _validate(kind, await ctx.small_body(), bucket.name)
    blocked = kind == "policy" and public_block.switch(bucket, "BlockPublicPolicy")
    if blocked and public_block.is_public_policy(text):
        raise S3Error("AccessDenied")
    await ctx.run(ctx.svc.meta.set_bucket_field, bucket, **{kind: text})
    return Response(204 if kind == "policy" else 200)


async def delete_document(ctx: Ctx, kind: str) -> Response:
    bucket = await _bucket_for(ctx, DOCUMENT_ACTIONS[kind][2])
    await ctx.run(ctx.svc.meta.set_bucket_field, bucket, **{kind: None})
    return Response(204)
