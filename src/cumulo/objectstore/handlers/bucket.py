"""The service and bucket operations: ListBuckets, create, head, delete, location."""

from __future__ import annotations

import ipaddress
import re

from cumulo.objectstore import acl
from cumulo.objectstore.errors import S3Error
from cumulo.objectstore.handlers.access import authorize
from cumulo.objectstore.handlers.base import Ctx
from cumulo.objectstore.http import Response, xml_response
from cumulo.objectstore.meta.store import Bucket
from cumulo.objectstore.meta.users import owner_limits
from cumulo.objectstore.xml import Node, parse, render, timestamp

_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def check_bucket_name(name: str) -> None:
    """S3's naming rules: DNS-compatible, so virtual-host addressing always works."""
    ok = bool(_NAME.match(name)) and ".." not in name and ".-" not in name and "-." not in name
    try:
        ipaddress.ip_address(name)
        ok = False
    except ValueError:
        pass
    if not ok:
        raise S3Error("InvalidBucketName", BucketName=name)


async def list_buckets(ctx: Ctx) -> Response:
    if ctx.principal is None:
        raise S3Error("AccessDenied")
    owner = ctx.principal
    found = await ctx.run(ctx.svc.meta.list_buckets, owner.owner_id)
    found, token = _bucket_page(ctx, found)
    items = [
        Node(
            "Bucket",
            [
                Node("Name", b.name),
                Node("CreationDate", timestamp(b.created)),
                Node("BucketRegion", b.region),
            ],
        )
        for b in found
    ]
    body = Node(
        "ListAllMyBucketsResult",
        [
            Node("Owner", [Node("ID", owner.owner_id), Node("DisplayName", owner.display_name)]),
            Node("Buckets", items),
            Node("ContinuationToken", token) if token else None,
        ],
    )
    return xml_response(render(body))


def _bucket_page(ctx: Ctx, found: list[Bucket]) -> tuple[list[Bucket], str | None]:
    """ListBuckets with max-buckets: the token is the last name returned."""
    after = ctx.req.arg("continuation-token")
    if after:
        found = [b for b in found if b.name > after]
    raw = ctx.req.arg("max-buckets")
    if raw is None:
        return found, None
    if not raw.isdigit() or not 1 <= int(raw) <= 10000:
        raise S3Error("InvalidArgument", ArgumentName="max-buckets", ArgumentValue=raw)
    limit = int(raw)
    if len(found) <= limit:
        return found, None
    return found[:limit], found[limit - 1].name


async def create_bucket(ctx: Ctx) -> Response:
    if ctx.principal is None:
        raise S3Error("AccessDenied")
    owner = ctx.principal
    name = ctx.bucket_name
    check_bucket_name(name)
    region = await _location(ctx)
    bucket_acl = acl.from_headers(ctx.req.headers, owner.owner_id, owner.display_name)
    existing = await ctx.run(ctx.svc.meta.get_bucket, name)
    if existing is not None and existing.owner_id == owner.owner_id:
        # Re-creating one's own bucket succeeds and changes nothing (us-east-1 and radosgw);
        # asking for a different ACL on the way is refused.
        if bucket_acl != existing.acl:
            raise S3Error("BucketAlreadyExists", BucketName=name)
        return Response(200, [("Location", f"/{name}")])
    await ctx.run(
        ctx.svc.meta.create_bucket, name, owner.owner_id, owner.display_name, region, bucket_acl
    )
    if ctx.req.headers.get("x-amz-bucket-object-lock-enabled", "").lower() == "true":
        # Object lock needs versioning, which then can never be suspended.
        created = await ctx.bucket()
        await ctx.run(
            ctx.svc.meta.set_bucket_field, created, versioning="Enabled", object_lock={"rule": None}
        )
    return Response(200, [("Location", f"/{name}")])


async def _location(ctx: Ctx) -> str:
    region = ctx.svc.settings.region
    body = await ctx.small_body()
    if not body.strip():
        return region
    wanted = (parse(body).findtext("LocationConstraint") or "").strip()
    if wanted and wanted != region:
        raise S3Error(
            "IllegalLocationConstraintException",
            f"The {wanted} location constraint is incompatible for the region specific "
            "endpoint this request was sent to.",
        )
    return region


async def head_bucket(ctx: Ctx) -> Response:
    bucket = await ctx.bucket()
    authorize(ctx, bucket, "s3:ListBucket")
    headers = [("x-amz-bucket-region", bucket.region)]
    if ctx.req.arg("read-stats") == "true":
        headers += await _read_stats(ctx, bucket)
    return Response(200, headers)


async def _read_stats(ctx: Ctx, bucket: Bucket) -> list[tuple[str, str]]:
    """radosgw's ``?read-stats=true`` HeadBucket extension (S3 ignores the parameter): the
    bucket's object and byte counts and the owner's bucket limit (-1: unlimited)."""
    objects, size = await ctx.run(ctx.svc.meta.bucket_usage, bucket)
    lim = await ctx.run(owner_limits, ctx.svc.meta.db, bucket.owner_id)
    max_buckets = -1 if lim.max_buckets is None else lim.max_buckets
    return [
        ("X-RGW-Object-Count", str(objects)),
        ("X-RGW-Bytes-Used", str(size)),
        ("X-RGW-Quota-Max-Buckets", str(max_buckets)),
    ]


async def delete_bucket(ctx: Ctx) -> Response:
    bucket = await ctx.bucket()
    authorize(ctx, bucket, "s3:DeleteBucket")
    await ctx.run(ctx.svc.meta.delete_bucket, bucket)
    return Response(204)


async def get_location(ctx: Ctx) -> Response:
    bucket = await ctx.bucket()
    authorize(ctx, bucket, "s3:GetBucketLocation")
    # us-east-1 is the empty constraint, for historical reasons every SDK knows.
    value = "" if bucket.region == "us-east-1" else bucket.region
    return xml_response(render(Node("LocationConstraint", value)))
