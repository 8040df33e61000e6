"""Object PUT, GET, HEAD and DELETE."""

from __future__ import annotations

from functools import partial
from typing import Any

from sqlalchemy import Row

from cumulo.objectstore import acl
from cumulo.objectstore.errors import S3Error
from cumulo.objectstore.handlers import lock, public_block, ssec
from cumulo.objectstore.handlers.access import authorize, tag_context
from cumulo.objectstore.handlers.base import Ctx, quote_etag
from cumulo.objectstore.handlers.blobio import declared_length, read_manifest, write_body
from cumulo.objectstore.handlers.conditions import check_read, check_write, http_date, parse_range
from cumulo.objectstore.handlers.quota import check_room
from cumulo.objectstore.http import Response
from cumulo.objectstore.meta.store import Bucket, NewVersion

MAX_KEY_BYTES = 1024
MAX_META_BYTES = 2048
# Headers S3 stores with an object and returns on GET/HEAD.
STORED_HEADERS = (
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "expires",
    "x-amz-website-redirect-location",
)
RESPONSE_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}


def check_key(key: str) -> None:
    if len(key.encode()) > MAX_KEY_BYTES:
        raise S3Error("KeyTooLongError", Size=str(len(key.encode())), MaxSizeAllowed="1024")


def user_meta(headers: dict[str, str]) -> dict[str, str]:
    meta = {k[len("x-amz-meta-") :]: v for k, v in headers.items() if k.startswith("x-amz-meta-")}
    if sum(len(k) + len(v) for k, v in meta.items()) > MAX_META_BYTES:
        raise S3Error(
            "MetadataTooLarge", "Your metadata headers exceed the maximum allowed metadata size."
        )
    return meta


def stored_headers(headers: dict[str, str]) -> dict[str, str]:
    stored = {k: headers[k] for k in STORED_HEADERS if k in headers}
    # aws-chunked describes this request's framing, not the object (S3 drops it too).
    encoding = [e.strip() for e in stored.pop("content-encoding", "").split(",") if e.strip()]
    encoding = [e for e in encoding if e.lower() != "aws-chunked"]
    if encoding:
        stored["content-encoding"] = ", ".join(encoding)
    return stored


def parse_tagging_header(raw: str | None) -> dict[str, str] | None:
    if raw is None:
        return None
    from urllib.parse import parse_qsl

    return dict(parse_qsl(raw, keep_blank_values=True))


async def current_etag(ctx: Ctx, bucket: Bucket) -> str | None:
    try:
        row = await ctx.run(ctx.svc.meta.get_version, bucket, ctx.key, None)
    except S3Error:
        return None
    return None if row.delete_marker else str(row.etag)


async def put_object(ctx: Ctx) -> Response:
    bucket = await ctx.bucket()
    authorize(ctx, bucket, "s3:PutObject", ctx.key)
    check_key(ctx.key)
    h = ctx.req.headers
    if "if-none-match" in h or "if-match" in h:
        check_write(h, await current_etag(ctx, bucket))
    owner = ctx.owner()
    new_acl = acl.from_headers(h, owner.owner_id, owner.display_name, bucket.owner_id)
    public_block.check_acl(bucket, new_acl)
    meta, stored = user_meta(h), stored_headers(h)
    tags = parse_tagging_header(h.get("x-amz-tagging"))
    sse_key = ssec.request_key(ctx)
    await check_room(ctx, bucket, declared_length(ctx), ctx.key)
    written = await write_body(ctx, encrypt=sse_key)
    new = NewVersion(
        size=written.size,
        etag=written.md5,
        content_type=h.get("content-type", "binary/octet-stream"),
        meta=meta,
        headers={**stored, **ssec.stored(sse_key), **lock.for_new_version(ctx, bucket)},
        manifest=[[written.blob_id, written.size]],
        owner_id=owner.owner_id,
        owner_name=owner.display_name,
        acl=new_acl,
        checksums=written.checksums,
        tags=tags,
        storage_class=h.get("x-amz-storage-class", "STANDARD"),
    )
    version_id, versioning = await ctx.run(ctx.svc.meta.put_version, bucket.name, ctx.key, new)
    headers = [("ETag", quote_etag(written.md5)), *_checksum_headers(written.checksums)]
    headers += ssec.echoed(new.headers)
    if versioning == "Enabled":
        headers.append(("x-amz-version-id", version_id))
    return Response(200, headers)


def _checksum_headers(checksums: dict[str, str]) -> list[tuple[str, str]]:
    return [(f"x-amz-checksum-{algo.lower()}", value) for algo, value in checksums.items()]


async def no_torrent(ctx: Ctx) -> Response:
    """GetObjectTorrent: no torrents are served, so there is no such (torrent) key; the
    object's own access and existence checks come first."""
    await readable_version(ctx)
    raise S3Error("NoSuchKey", Key=ctx.key)


async def readable_version(ctx: Ctx) -> tuple[Bucket, Row[Any]]:
    """The version a GET/HEAD names, after the access and delete-marker checks."""
    bucket = await ctx.bucket()
    version_id = ctx.req.arg("versionId")
    try:
        row = await ctx.run(ctx.svc.meta.get_version, bucket, ctx.key, version_id)
    except S3Error as err:
        if err.code == "NoSuchKey":
            # Only who may list the key learns that it is missing; others get 403.
            authorize(ctx, bucket, "s3:ListBucket", extra={"s3:prefix": [ctx.key]})
            err.with_headers(("x-amz-delete-marker", "false"))
        raise
    if row.delete_marker:
        marker = [("x-amz-delete-marker", "true"), ("x-amz-version-id", row.version_id)]
        if version_id is not None:
            raise S3Error(
                "MethodNotAllowed", Method=ctx.req.method, ResourceType="DeleteMarker"
            ).with_headers(*marker)
        raise S3Error("NoSuchKey", Key=ctx.key).with_headers(*marker)
    action = "s3:GetObjectVersion" if version_id is not None else "s3:GetObject"
    authorize(ctx, bucket, action, ctx.key, row.acl, tag_context(row.tags))
    return bucket, row


def object_headers(ctx: Ctx, bucket: Bucket, row: Row[Any]) -> list[tuple[str, str]]:
    headers = [
        ("Content-Type", row.content_type or "binary/octet-stream"),
        ("ETag", quote_etag(row.etag)),
        ("Last-Modified", http_date(row.modified)),
        ("Accept-Ranges", "bytes"),
    ]
    headers += [(k, v) for k, v in row.headers.items() if k != ssec.FINGERPRINT]
    headers += [(f"x-amz-meta-{k}", v) for k, v in row.meta.items()]
    if bucket.versioning:
        headers.append(("x-amz-version-id", row.version_id))
    if row.storage_class and row.storage_class != "STANDARD":
        headers.append(("x-amz-storage-class", row.storage_class))
    if row.tags:
        headers.append(("x-amz-tagging-count", str(len(row.tags))))
    if ctx.req.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED":
        headers += _checksum_headers(row.checksums or {})
    overrides = {RESPONSE_OVERRIDES[k]: v for k, v in ctx.req.query if k in RESPONSE_OVERRIDES}
    if overrides:
        headers = [(k, v) for k, v in headers if k not in overrides] + list(overrides.items())
    return headers


def _part_range(ctx: Ctx, row: Row[Any]) -> tuple[int, int] | None:
    raw = ctx.req.arg("partNumber")
    if raw is None:
        return None
    number = int(raw) if raw.isdigit() else 0
    sizes = row.parts or [row.size]
    if not 1 <= number <= len(sizes):
        raise S3Error("InvalidPart" if number else "InvalidArgument")
    start = sum(sizes[: number - 1])
    return start, start + sizes[number - 1]


async def get_object(ctx: Ctx) -> Response:
    bucket, row = await readable_version(ctx)
    headers = object_headers(ctx, bucket, row)
    try:
        check_read(ctx.req.headers, row.etag, row.modified)
    except S3Error as err:
        if err.code == "NotModified":
            keep = ("ETag", "Last-Modified", "x-amz-version-id")
            return Response(304, [(k, v) for k, v in headers if k in keep])
        raise
    size = int(row.size)
    status, span = 200, _part_range(ctx, row)
    if span is not None:
        headers.append(("x-amz-mp-parts-count", str(len(row.parts or [row.size]))))
    else:
        span = parse_range(ctx.req.headers.get("range"), size)
    if span is not None:
        # The stored checksums cover the whole object, never a slice of it.
        headers = [(k, v) for k, v in headers if not k.startswith("x-amz-checksum-")]
        status = 206
        headers.append(("Content-Range", f"bytes {span[0]}-{span[1] - 1}/{size}"))
    start, end = span or (0, size)
    sse_key = ssec.key_for(ctx, row.headers)
    head = ctx.req.method == "HEAD"
    stream = None if head else read_manifest(ctx.svc.blobs, row.manifest, start, end, sse_key)
    response = Response(status, headers, stream=stream, length=end - start, head=head)
    if head:
        response.stream = _empty()
    return response


async def _empty() -> Any:
    return
    yield b""  # pragma: no cover (makes this an async generator)


async def delete_object(ctx: Ctx) -> Response:
    bucket = await ctx.bucket()
    version_id = ctx.req.arg("versionId")
    action = "s3:DeleteObjectVersion" if version_id is not None else "s3:DeleteObject"
    authorize(ctx, bucket, action, ctx.key)
    protect = partial(lock.check_delete, bypass=lock.bypassing(ctx))
    marker, vid = await ctx.run(
        ctx.svc.meta.delete_object, bucket.name, ctx.key, version_id, protect
    )
    headers = []
    if marker:
        headers.append(("x-amz-delete-marker", "true"))
    if vid is not None:
        headers.append(("x-amz-version-id", vid))
    return Response(204, headers)
