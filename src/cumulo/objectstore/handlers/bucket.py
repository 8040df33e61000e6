"""The service and bucket operations: ListBuckets, create, head, delete, location."""

from __future__ import annotations

import ipaddress
import re

from cumulo.objectstore import acl
from cumulo.objectstore.errors import S3Error
from cumulo.objectstore.handlers.access import authorize
from cumulo.objectstore.handlers.base import Ctx
from cumulo.objectstore.http import Response, xml_response
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
    owner = ctx.owner()
    found = await ctx.run(ctx.svc.meta.list_buckets, owner.owner_id)
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
        ],
    )
    return xml_response(render(body))


async def create_bucket(ctx: Ctx) -> Response:
    owner = ctx.owner()
    name = ctx.bucket_name
    check_bucket_name(name)
    region = await _location(ctx)
    bucket_acl = acl.from_headers(ctx.req.headers, owner.owner_id, owner.display_name)
    await ctx.run(
        ctx.svc.meta.create_bucket, name, owner.owner_id, owner.display_name, region, bucket_acl
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
    return Response(200, [("x-amz-bucket-region", bucket.region)])


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
