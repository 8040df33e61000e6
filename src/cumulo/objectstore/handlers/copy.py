"""CopyObject and UploadPartCopy.

The source is named by ``x-amz-copy-source`` percent-encoded (``bucket/key?versionId=…``);
it is decoded exactly once here. The bytes are streamed from the source's blobs into a new
blob, so copies survive the source being deleted and the collector never has to count
references.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from sqlalchemy import Row

from cumulo.common.time import utcnow
from cumulo.objectstore import acl
from cumulo.objectstore.errors import S3Error
from cumulo.objectstore.handlers import ssec
from cumulo.objectstore.handlers.access import authorize
from cumulo.objectstore.handlers.base import Ctx, quote_etag
from cumulo.objectstore.handlers.blobio import read_manifest, write_body
from cumulo.objectstore.handlers.conditions import check_read
from cumulo.objectstore.handlers.multipart import part_number, upload_id
from cumulo.objectstore.handlers.object import (
    check_key,
    parse_tagging_header,
    stored_headers,
    user_meta,
)
from cumulo.objectstore.handlers.quota import check_room
from cumulo.objectstore.http import Response, xml_response
from cumulo.objectstore.meta.store import NewVersion
from cumulo.objectstore.xml import Node, render, timestamp


def parse_source(raw: str) -> tuple[str, str, str | None]:
    path, _, query = raw.partition("?")
    version = None
    if query.startswith("versionId="):
        version = unquote(query[len("versionId=") :])
    bucket, _, key = unquote(path).lstrip("/").partition("/")
    if not bucket or not key:
        raise S3Error(
            "InvalidArgument", "Invalid copy source object key", ArgumentName="x-amz-copy-source"
        )
    return bucket, key, version


async def _source(ctx: Ctx) -> Row[Any]:
    name, key, version = parse_source(ctx.req.headers["x-amz-copy-source"])
    found = await ctx.run(ctx.svc.meta.get_bucket, name)
    if found is None:
        raise S3Error("NoSuchBucket", BucketName=name)
    bucket = found
    row = await ctx.run(ctx.svc.meta.get_version, bucket, key, version)
    if row.delete_marker:
        raise S3Error("NoSuchKey" if version is None else "InvalidRequest", Key=key)
    action = "s3:GetObjectVersion" if version is not None else "s3:GetObject"
    authorize(ctx, bucket, action, key, row.acl)
    _check_copy_conditions(ctx, row)
    return row


def _check_copy_conditions(ctx: Ctx, row: Row[Any]) -> None:
    h = ctx.req.headers
    prefix = "x-amz-copy-source-"
    conds = {k[len(prefix) :]: v for k, v in h.items() if k.startswith(prefix + "if-")}
    if not conds:
        return
    try:
        check_read(conds, row.etag, row.modified)
    except S3Error as err:
        # A copy never answers 304: every failed condition is 412.
        raise S3Error("PreconditionFailed") from err


def _same_object(ctx: Ctx, src: Row[Any]) -> bool:
    name, key, _ = parse_source(ctx.req.headers["x-amz-copy-source"])
    return name == ctx.bucket_name and key == ctx.key


async def copy_object(ctx: Ctx) -> Response:
    dest = await ctx.bucket()
    authorize(ctx, dest, "s3:PutObject", ctx.key)
    check_key(ctx.key)
    src = await _source(ctx)
    h, owner = ctx.req.headers, ctx.owner()
    directive = h.get("x-amz-metadata-directive", "COPY").upper()
    if directive not in ("COPY", "REPLACE"):
        raise S3Error("InvalidArgument", "Unknown metadata directive.")
    changes = "x-amz-storage-class" in h or ssec.ALGORITHM_HEADER in h
    if directive == "COPY" and _same_object(ctx, src) and not changes:
        raise S3Error(
            "InvalidRequest",
            "This copy request is illegal because it is trying to copy an object to itself "
            "without changing the object's metadata, storage class, website redirect location "
            "or encryption attributes.",
        )
    replace = directive == "REPLACE"
    await check_room(ctx, dest, int(src.size), ctx.key)
    src_key = ssec.key_for(ctx, src.headers, copy_source=True)
    dest_key = ssec.request_key(ctx)
    source = read_manifest(ctx.svc.blobs, src.manifest, 0, int(src.size), src_key)
    written = await write_body(ctx, source, encrypt=dest_key)
    tag_directive = h.get("x-amz-tagging-directive", "COPY").upper()
    new = NewVersion(
        size=written.size,
        etag=written.md5,
        content_type=h.get("content-type", "binary/octet-stream") if replace else src.content_type,
        meta=user_meta(h) if replace else src.meta,
        headers={
            **ssec.without_sse(stored_headers(h) if replace else src.headers),
            **ssec.stored(dest_key),
        },
        manifest=[[written.blob_id, written.size]],
        owner_id=owner.owner_id,
        owner_name=owner.display_name,
        acl=acl.from_headers(h, owner.owner_id, owner.display_name, dest.owner_id),
        checksums={},
        tags=parse_tagging_header(h.get("x-amz-tagging"))
        if tag_directive == "REPLACE"
        else src.tags,
        storage_class=h.get("x-amz-storage-class", src.storage_class),
    )
    version_id, versioning = await ctx.run(ctx.svc.meta.put_version, dest.name, ctx.key, new)
    body = Node(
        "CopyObjectResult",
        [Node("LastModified", timestamp(utcnow())), Node("ETag", quote_etag(written.md5))],
    )
    headers = ssec.echoed(new.headers)
    if src.version_id != "null":
        headers.append(("x-amz-copy-source-version-id", src.version_id))
    if versioning:
        headers.append(("x-amz-version-id", version_id))
    return xml_response(render(body), headers=headers)


def _copy_range(ctx: Ctx, size: int) -> tuple[int, int]:
    raw = ctx.req.headers.get("x-amz-copy-source-range")
    if raw is None:
        return 0, size
    try:
        first, _, last = raw.removeprefix("bytes=").partition("-")
        start, end = int(first), int(last) + 1
    except ValueError as err:
        raise S3Error(
            "InvalidArgument",
            "The x-amz-copy-source-range value must be of the form bytes=first-last",
        ) from err
    if start < 0 or end <= start or end > size:
        raise S3Error("InvalidRange", ActualObjectSize=str(size), RangeRequested=raw)
    return start, end


async def upload_part_copy(ctx: Ctx) -> Response:
    dest = await ctx.bucket()
    authorize(ctx, dest, "s3:PutObject", ctx.key)
    number = part_number(ctx)
    upload = await ctx.run(ctx.svc.uploads.get, dest, ctx.key, upload_id(ctx))
    src = await _source(ctx)
    start, end = _copy_range(ctx, int(src.size))
    src_key = ssec.key_for(ctx, src.headers, copy_source=True)
    dest_key = ssec.key_for(ctx, upload.headers)
    source = read_manifest(ctx.svc.blobs, src.manifest, start, end, src_key)
    written = await write_body(ctx, source, encrypt=dest_key)
    await ctx.run(
        ctx.svc.uploads.put_part,
        dest,
        ctx.key,
        upload_id(ctx),
        number,
        (written.blob_id, written.size, written.md5, {}),
    )
    body = Node(
        "CopyPartResult",
        [Node("LastModified", timestamp(utcnow())), Node("ETag", quote_etag(written.md5))],
    )
    headers = ssec.echoed(upload.headers)
    if src.version_id != "null":
        headers.append(("x-amz-copy-source-version-id", src.version_id))
    return xml_response(render(body), headers=headers)
