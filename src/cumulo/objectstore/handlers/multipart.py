"""Multipart uploads: initiate, upload part, list parts and uploads, complete, abort."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row

from cumulo.objectstore import acl
from cumulo.objectstore.errors import S3Error
from cumulo.objectstore.handlers import lock, ssec
from cumulo.objectstore.handlers.access import authorize
from cumulo.objectstore.handlers.base import Ctx, quote_etag
from cumulo.objectstore.handlers.blobio import declared_length, write_body
from cumulo.objectstore.handlers.listing import Encoder, max_keys
from cumulo.objectstore.handlers.object import (
    check_key,
    parse_tagging_header,
    stored_headers,
    user_meta,
)
from cumulo.objectstore.handlers.quota import check_room
from cumulo.objectstore.http import Response, xml_response
from cumulo.objectstore.meta.store import Bucket
from cumulo.objectstore.meta.uploads import MAX_PARTS, UploadInfo, multipart_etag
from cumulo.objectstore.xml import Node, parse, render, timestamp


async def _bucket_for(ctx: Ctx, action: str = "s3:PutObject") -> Bucket:
    bucket = await ctx.bucket()
    authorize(ctx, bucket, action, ctx.req.key)
    return bucket


async def initiate(ctx: Ctx) -> Response:
    bucket = await _bucket_for(ctx)
    check_key(ctx.key)
    owner, h = ctx.owner(), ctx.req.headers
    info = UploadInfo(
        owner_id=owner.owner_id,
        owner_name=owner.display_name,
        content_type=h.get("content-type", "binary/octet-stream"),
        meta=user_meta(h),
        headers={
            **stored_headers(h),
            **ssec.stored(ssec.request_key(ctx)),
            **lock.for_new_version(ctx, bucket),
        },
        acl=acl.from_headers(h, owner.owner_id, owner.display_name, bucket.owner_id),
        tags=parse_tagging_header(h.get("x-amz-tagging")),
        storage_class=h.get("x-amz-storage-class", "STANDARD"),
    )
    upload_id = await ctx.run(ctx.svc.uploads.create, bucket, ctx.key, info)
    body = Node(
        "InitiateMultipartUploadResult",
        [Node("Bucket", bucket.name), Node("Key", ctx.key), Node("UploadId", upload_id)],
    )
    return xml_response(render(body), headers=ssec.echoed(info.headers))


def part_number(ctx: Ctx) -> int:
    raw = ctx.req.arg("partNumber") or ""
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PARTS:
        raise S3Error(
            "InvalidArgument",
            "Part number must be an integer between 1 and 10000, inclusive",
            ArgumentName="partNumber",
            ArgumentValue=raw,
        )
    return int(raw)


def upload_id(ctx: Ctx) -> str:
    return ctx.req.arg("uploadId") or ""


async def upload_part(ctx: Ctx) -> Response:
    bucket = await _bucket_for(ctx)
    number = part_number(ctx)
    upload = await ctx.run(ctx.svc.uploads.get, bucket, ctx.key, upload_id(ctx))
    sse_key = ssec.key_for(ctx, upload.headers)
    await check_room(ctx, bucket, declared_length(ctx), None)
    written = await write_body(ctx, encrypt=sse_key)
    try:
        await ctx.run(
            ctx.svc.uploads.put_part,
            bucket,
            ctx.key,
            upload_id(ctx),
            number,
            (written.blob_id, written.size, written.md5, written.checksums),
        )
    except S3Error:
        await ctx.run(ctx.svc.meta.forget, [written.blob_id])
        raise
    checks = [(f"x-amz-checksum-{k.lower()}", v) for k, v in written.checksums.items()]
    checks += ssec.echoed(upload.headers)
    return Response(200, [("ETag", quote_etag(written.md5)), *checks])


async def complete(ctx: Ctx) -> Response:
    bucket = await _bucket_for(ctx)
    root = parse(await ctx.small_body())
    chosen: list[tuple[int, str]] = []
    for part in root.findall("Part"):
        number = (part.findtext("PartNumber") or "").strip()
        if not number.isdigit():
            raise S3Error("MalformedXML")
        chosen.append((int(number), (part.findtext("ETag") or "").strip()))
    try:
        upload = await ctx.run(ctx.svc.uploads.get, bucket, ctx.key, upload_id(ctx))
    except S3Error:
        upload = None  # completed already (a retry) or never: the complete call tells
    if upload is not None:
        ssec.key_for(ctx, upload.headers)  # an SSE-C upload completes only with its key
    try:
        etag, version_id, _ = await ctx.run(
            ctx.svc.uploads.complete, bucket, ctx.key, upload_id(ctx), chosen
        )
    except S3Error as err:
        etag, version_id = await _already_completed(ctx, bucket, chosen, err)
    body = Node(
        "CompleteMultipartUploadResult",
        [
            Node("Location", f"/{bucket.name}/{ctx.key}"),
            Node("Bucket", bucket.name),
            Node("Key", ctx.key),
            Node("ETag", quote_etag(etag)),
        ],
    )
    headers = [("x-amz-version-id", version_id)] if version_id != "null" else []
    headers += ssec.echoed(upload.headers) if upload is not None else []
    return xml_response(render(body), headers=headers)


async def _already_completed(
    ctx: Ctx, bucket: Bucket, chosen: list[tuple[int, str]], err: S3Error
) -> tuple[str, str]:
    """A completion sent again (a retry whose answer was lost) succeeds, as on S3: the key's
    current version is the one these very parts made (its ETag derives from theirs)."""
    if err.code != "NoSuchUpload":
        raise err
    try:
        expected = multipart_etag([e.strip('"') for _, e in chosen])
    except ValueError:
        raise err from None
    try:
        row = await ctx.run(ctx.svc.meta.get_version, bucket, ctx.key, None)
    except S3Error:
        raise err from None
    if row.delete_marker or row.etag != expected:
        raise err
    return str(row.etag), str(row.version_id)


async def abort(ctx: Ctx) -> Response:
    bucket = await _bucket_for(ctx, "s3:AbortMultipartUpload")
    await ctx.run(ctx.svc.uploads.abort, bucket, ctx.key, upload_id(ctx))
    return Response(204)


def _owner(row: Row[Any], tag: str = "Owner") -> Node:
    return Node(tag, [Node("ID", row.owner_id), Node("DisplayName", row.owner_name)])


async def list_parts(ctx: Ctx) -> Response:
    bucket = await _bucket_for(ctx, "s3:ListMultipartUploadParts")
    limit = max_keys(ctx, "max-parts")
    raw_marker = ctx.req.arg("part-number-marker") or "0"
    after = int(raw_marker) if raw_marker.isdigit() else 0
    up, rows = await ctx.run(
        ctx.svc.uploads.list_parts, bucket, ctx.key, upload_id(ctx), after, limit + 1
    )
    truncated = len(rows) > limit
    rows = rows[:limit]
    parts = [
        Node(
            "Part",
            [
                Node("PartNumber", str(r.part_number)),
                Node("LastModified", timestamp(r.modified)),
                Node("ETag", quote_etag(r.etag)),
                Node("Size", str(r.size)),
            ],
        )
        for r in rows
    ]
    body = Node(
        "ListPartsResult",
        [
            Node("Bucket", bucket.name),
            Node("Key", ctx.key),
            Node("UploadId", up.upload_id),
            _owner(up, "Initiator"),
            _owner(up),
            Node("StorageClass", up.storage_class),
            Node("PartNumberMarker", str(after)),
            Node("NextPartNumberMarker", str(rows[-1].part_number if rows else after)),
            Node("MaxParts", str(limit)),
            Node("IsTruncated", str(truncated).lower()),
            *parts,
        ],
    )
    return xml_response(render(body))


async def list_uploads(ctx: Ctx) -> Response:
    bucket = await _bucket_for(ctx, "s3:ListBucketMultipartUploads")
    enc, limit = Encoder(ctx), max_keys(ctx, "max-uploads")
    prefix, delim = ctx.req.arg("prefix") or "", ctx.req.arg("delimiter") or ""
    key_marker = ctx.req.arg("key-marker") or None
    rows = await ctx.run(ctx.svc.uploads.list_uploads, bucket, prefix, key_marker, 10_000)
    items: list[Node] = []
    prefixes: list[str] = []
    truncated, last_key, last_id = False, "", ""
    for r in rows:
        idx = r.key.find(delim, len(prefix)) if delim else -1
        if idx >= 0:
            cp = r.key[: idx + len(delim)]
            if cp in prefixes:
                continue
            if len(items) + len(prefixes) >= limit:
                truncated = True
                break
            prefixes.append(cp)
            last_key = cp
            continue
        if len(items) + len(prefixes) >= limit:
            truncated = True
            break
        items.append(_upload_node(r, enc))
        last_key, last_id = r.key, r.upload_id
    body = Node(
        "ListMultipartUploadsResult",
        [
            Node("Bucket", bucket.name),
            Node("KeyMarker", enc(key_marker or "")),
            Node("UploadIdMarker", ctx.req.arg("upload-id-marker") or ""),
            Node("NextKeyMarker", enc(last_key)),
            Node("NextUploadIdMarker", last_id),
            enc.node("Delimiter", delim or None),
            Node("Prefix", enc(prefix)),
            Node("MaxUploads", str(limit)),
            Node("IsTruncated", str(truncated).lower()),
            Node("EncodingType", "url") if enc.on else None,
            *items,
            *[Node("CommonPrefixes", [Node("Prefix", enc(p))]) for p in prefixes],
        ],
    )
    return xml_response(render(body))


def _upload_node(r: Row[Any], enc: Encoder) -> Node:
    return Node(
        "Upload",
        [
            Node("Key", enc(r.key)),
            Node("UploadId", r.upload_id),
            _owner(r, "Initiator"),
            _owner(r),
            Node("StorageClass", r.storage_class),
            Node("Initiated", timestamp(r.initiated)),
        ],
    )
