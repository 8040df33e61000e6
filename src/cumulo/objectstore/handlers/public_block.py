"""Public access blocks: a bucket's switches that refuse or ignore public ACLs and policies.

BlockPublicAcls refuses requests that set a public ACL (AllUsers or AuthenticatedUsers
grants); IgnorePublicAcls makes such grants count for nothing; BlockPublicPolicy refuses a
policy that allows everyone; RestrictPublicBuckets keeps a public policy from granting
anything to anyone but the owner.
"""

from __future__ import annotations

import json
from typing import Any

from cumulo.objectstore.errors import S3Error
from cumulo.objectstore.handlers.base import Ctx
from cumulo.objectstore.http import Response, xml_response
from cumulo.objectstore.meta.store import Bucket
from cumulo.objectstore.policy import acl as acl_rules
from cumulo.objectstore.xml import Node, parse, render

SWITCHES = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
PUBLIC_GROUPS = frozenset({acl_rules.ALL_USERS, acl_rules.AUTHENTICATED_USERS})


def switch(bucket: Bucket, name: str) -> bool:
    return bool((bucket.public_access_block or {}).get(name))


def is_public_acl(acl: dict[str, Any]) -> bool:
    return any(kind == "group" and who in PUBLIC_GROUPS for kind, who, _ in acl.get("grants", []))


def without_public_grants(acl: dict[str, Any]) -> dict[str, Any]:
    grants = [g for g in acl.get("grants", []) if not (g[0] == "group" and g[1] in PUBLIC_GROUPS)]
    return {**acl, "grants": grants}


def check_acl(bucket: Bucket, acl: dict[str, Any]) -> None:
    if switch(bucket, "BlockPublicAcls") and is_public_acl(acl):
        raise S3Error("AccessDenied")


def is_public_policy(text: str) -> bool:
    try:
        doc = json.loads(text)
    except ValueError:
        return False
    statements = doc.get("Statement", []) if isinstance(doc, dict) else []
    for st in statements if isinstance(statements, list) else [statements]:
        principal = st.get("Principal") if isinstance(st, dict) else None
        anyone = principal == "*" or (
            isinstance(principal, dict) and principal.get("AWS") in ("*", ["*"])
        )
        if st.get("Effect") == "Allow" and anyone and not st.get("Condition"):
            return True
    return False


async def get_policy_status(ctx: Ctx) -> Response:
    """GetBucketPolicyStatus: public when the policy allows everyone (without a condition
    that pins the caller) or, as radosgw reports it, when the bucket's ACL grants a public
    group."""
    from cumulo.objectstore.handlers.access import authorize
    from cumulo.objectstore.policy import bucket_policy

    bucket = await ctx.bucket()
    authorize(ctx, bucket, "s3:GetBucketPolicyStatus")
    public = is_public_acl(bucket.acl)
    if not public and bucket.policy:
        try:
            public = bucket_policy.is_public(bucket_policy.parse_policy(bucket.policy, bucket.name))
        except Exception:  # a stored policy that no longer parses grants nothing
            public = False
    body = render(Node("PolicyStatus", [Node("IsPublic", str(public).lower())]))
    return xml_response(body)


async def get_block(ctx: Ctx) -> Response:
    from cumulo.objectstore.handlers.access import authorize

    bucket = await ctx.bucket()
    authorize(ctx, bucket, "s3:GetBucketPublicAccessBlock")
    if bucket.public_access_block is None:
        raise S3Error("NoSuchPublicAccessBlockConfiguration", BucketName=bucket.name)
    items = [Node(n, str(switch(bucket, n)).lower()) for n in SWITCHES]
    return xml_response(render(Node("PublicAccessBlockConfiguration", items)))


async def put_block(ctx: Ctx) -> Response:
    from cumulo.objectstore.handlers.access import authorize

    bucket = await ctx.bucket()
    authorize(ctx, bucket, "s3:PutBucketPublicAccessBlock")
    root = parse(await ctx.small_body())
    config = {n: (root.findtext(n) or "").strip().lower() == "true" for n in SWITCHES}
    await ctx.run(ctx.svc.meta.set_bucket_field, bucket, public_access_block=config)
    return Response(200)


async def delete_block(ctx: Ctx) -> Response:
    from cumulo.objectstore.handlers.access import authorize

    bucket = await ctx.bucket()
    authorize(ctx, bucket, "s3:PutBucketPublicAccessBlock")
    await ctx.run(ctx.svc.meta.set_bucket_field, bucket, public_access_block=None)
    return Response(204)
