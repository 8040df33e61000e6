"""Who may do what: the bucket policy first, then ownership, then the ACLs.

S3's order: an explicit Deny in the bucket policy refuses, an Allow grants, otherwise the
bucket owner may do anything to their bucket and the ACL of the bucket (or of the object,
for object reads and ACL calls) decides. The policy text is parsed once per distinct text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from cumulo.objectstore import acl
from cumulo.objectstore.errors import S3Error
from cumulo.objectstore.handlers import public_block
from cumulo.objectstore.handlers.base import Ctx
from cumulo.objectstore.meta.store import Bucket
from cumulo.objectstore.policy import acl as acl_rules
from cumulo.objectstore.policy import bucket_policy as policy
from cumulo.objectstore.policy.request import HEADER_KEYS

# Actions the policy library's ACL table does not name: which ACL permission they need.
EXTRA_PERMISSION: dict[str, tuple[str, str]] = {
    "s3:GetObjectTagging": ("object", "READ"),
    "s3:GetObjectVersionTagging": ("object", "READ"),
    "s3:PutObjectTagging": ("bucket", "WRITE"),
    "s3:PutObjectVersionTagging": ("bucket", "WRITE"),
    "s3:DeleteObjectTagging": ("bucket", "WRITE"),
    "s3:DeleteObjectVersionTagging": ("bucket", "WRITE"),
}
# The owner keeps control of the policy itself, whatever the policy says.
POLICY_ACTIONS = frozenset({"s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy"})


@lru_cache(maxsize=256)
def _parsed(text: str, bucket: str) -> policy.BucketPolicy | None:
    try:
        return policy.parse_policy(text, bucket)
    except Exception:  # a stored policy that no longer parses grants nothing
        return None


def _permission(action: str) -> tuple[str, str] | None:
    found = acl_rules.ACTION_PERMISSION.get(action)
    return (found[0], found[1]) if found is not None else EXTRA_PERMISSION.get(action)


def _principals(ctx: Ctx) -> frozenset[str]:
    who = ctx.principal
    if who is None:
        return frozenset()
    return frozenset({who.owner_id, policy.account_principal(who.owner_id)})


def _context(ctx: Ctx, extra: Mapping[str, Sequence[str]] | None) -> dict[str, Sequence[str]]:
    h = ctx.req.headers
    context: dict[str, Sequence[str]] = {"aws:SecureTransport": ["false"]}
    if ctx.req.client_ip:
        context["aws:SourceIp"] = [ctx.req.client_ip]
    for name in ("referer", "user-agent"):
        if name in h:
            context[f"aws:{name.title().replace('-', '')}"] = [h[name]]
    for name in (*HEADER_KEYS, "x-amz-server-side-encryption-customer-algorithm"):
        if name in h:
            context[f"s3:{name}"] = [h[name]]
    for name in ("prefix", "delimiter", "max-keys"):
        value = ctx.req.arg(name)
        if value is not None:
            context[f"s3:{name}"] = [value]
    context.update(extra or {})
    return context


def tag_context(tags: Mapping[str, str] | None) -> dict[str, Sequence[str]]:
    """``s3:ExistingObjectTag/<key>`` condition keys of the object acted on."""
    return {f"s3:ExistingObjectTag/{k}": [v] for k, v in (tags or {}).items()}


def decision(
    ctx: Ctx,
    bucket: Bucket,
    action: str,
    key: str | None = None,
    extra: Mapping[str, Sequence[str]] | None = None,
) -> str | None:
    if not bucket.policy:
        return None
    parsed = _parsed(bucket.policy, bucket.name)
    if parsed is None:
        return None
    request = policy.PolicyRequest(
        action=action,
        resource=policy.resource_arn(bucket.name, key),
        principals=_principals(ctx),
        context=_context(ctx, extra),
    )
    return policy.evaluate(parsed, request)


def authorize(
    ctx: Ctx,
    bucket: Bucket,
    action: str,
    key: str | None = None,
    object_acl: dict[str, Any] | None = None,
    extra: Mapping[str, Sequence[str]] | None = None,
) -> None:
    """Raise AccessDenied unless the signer may perform ``action`` (an ``s3:`` action)."""
    verdict = decision(ctx, bucket, action, key, extra)
    owner = ctx.is_bucket_owner(bucket)
    if verdict == "Deny" and not (owner and action in POLICY_ACTIONS):
        raise S3Error("AccessDenied")
    restricted = (
        verdict == "Allow"
        and public_block.switch(bucket, "RestrictPublicBuckets")
        and bucket.policy is not None
        and public_block.is_public_policy(bucket.policy)
    )
    if (verdict == "Allow" and not restricted) or owner:
        return
    needed = _permission(action)
    if needed is None:
        raise S3Error("AccessDenied")
    level, permission = needed
    target = object_acl if level == "object" and object_acl is not None else bucket.acl
    if public_block.switch(bucket, "IgnorePublicAcls"):
        target = public_block.without_public_grants(target)
    if not acl.allowed(target, ctx.principal, permission):
        raise S3Error("AccessDenied")
