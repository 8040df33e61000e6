"""ListObjects (V1 and V2) and ListObjectVersions.

Keys come from the database in batches in S3 order; a key under a delimiter rolls up into its
common prefix, and the scan then jumps past every key of that prefix, so a bucket with a
million keys under one "folder" still lists in a few queries. The whole scan runs in a worker
thread.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from sqlalchemy import Row

from cumulo.objectstore.errors import S3Error
from cumulo.objectstore.handlers.access import authorize
from cumulo.objectstore.handlers.base import Ctx, quote_etag
from cumulo.objectstore.http import Response, xml_response
from cumulo.objectstore.meta.store import Bucket
from cumulo.objectstore.xml import Node, render, timestamp

BATCH = 1000
MAX_CHAR = "\U0010ffff"
Fetch = Callable[[str, str | None, int], list[Row[Any]]]


@dataclass
class Page:
    items: list[Row[Any] | str] = field(default_factory=list)
    truncated: bool = False

    @property
    def rows(self) -> list[Row[Any]]:
        return [i for i in self.items if not isinstance(i, str)]

    @property
    def prefixes(self) -> list[str]:
        return [i for i in self.items if isinstance(i, str)]

    @property
    def last(self) -> str | None:
        if not self.items:
            return None
        item = self.items[-1]
        return item if isinstance(item, str) else str(item.key)


def _entries(
    fetch: Fetch, prefix: str, delimiter: str, after: str | None
) -> Iterator[Row[Any] | str]:
    """Rows and common prefixes after ``after``, in order."""
    marker = after
    while True:
        raw = fetch(prefix, after, BATCH)
        rows, restarted = _whole_keys(raw), False
        for row in rows:
            cp = _common_prefix(row.key, prefix, delimiter)
            if cp is None:
                yield row
                after = row.key
                continue
            if marker is None or cp > marker:
                yield cp
            after, restarted = cp + MAX_CHAR, True
            break
        if not restarted and len(raw) < BATCH:
            return


def _whole_keys(rows: list[Row[Any]]) -> list[Row[Any]]:
    """Drop a full batch's last key when more of its versions may follow in the next batch
    (the next query starts after a key, so it must not split one)."""
    if len(rows) < BATCH or rows[0].key == rows[-1].key:
        return rows
    last = rows[-1].key
    return [r for r in rows if r.key != last]


def _common_prefix(key: str, prefix: str, delimiter: str) -> str | None:
    if not delimiter:
        return None
    idx = key.find(delimiter, len(prefix))
    return None if idx < 0 else key[: idx + len(delimiter)]


def collect(fetch: Fetch, prefix: str, delimiter: str, after: str | None, limit: int) -> Page:
    page = Page()
    if limit == 0:
        return page
    for entry in _entries(fetch, prefix, delimiter, after):
        if len(page.items) == limit:
            page.truncated = True
            break
        page.items.append(entry)
    return page


def max_keys(ctx: Ctx, name: str = "max-keys") -> int:
    raw = ctx.req.arg(name)
    if raw is None:
        return 1000
    try:
        value = int(raw)
    except ValueError as err:
        raise S3Error("InvalidArgument", ArgumentName=name, ArgumentValue=raw) from err
    if value < 0:
        raise S3Error("InvalidArgument", ArgumentName=name, ArgumentValue=raw)
    return min(value, 1000)


class Encoder:
    """encoding-type=url: keys and prefixes percent-encoded (boto3 asks for it by default)."""

    def __init__(self, ctx: Ctx) -> None:
        kind = ctx.req.arg("encoding-type")
        if kind not in (None, "url"):
            raise S3Error("InvalidArgument", "Invalid Encoding Method specified in Request")
        self.on = kind == "url"

    def __call__(self, value: str) -> str:
        return quote(value, safe="/") if self.on else value

    def node(self, tag: str, value: str | None) -> Node | None:
        return None if value is None else Node(tag, self(value))


def _owner_node(row: Row[Any]) -> Node:
    return Node("Owner", [Node("ID", row.owner_id), Node("DisplayName", row.owner_name)])


def _content(row: Row[Any], enc: Encoder, owner: bool) -> Node:
    return Node(
        "Contents",
        [
            Node("Key", enc(row.key)),
            Node("LastModified", timestamp(row.modified)),
            Node("ETag", quote_etag(row.etag)),
            Node("Size", str(row.size)),
            Node("StorageClass", row.storage_class),
            _owner_node(row) if owner else None,
        ],
    )


async def _readable_bucket(ctx: Ctx, action: str = "s3:ListBucket") -> Bucket:
    bucket = await ctx.bucket()
    authorize(ctx, bucket, action)
    return bucket


def _check_unordered(ctx: Ctx, delimiter: str) -> None:
    """radosgw's ``allow-unordered=true`` extension: this listing is always in order (which
    any unordered listing may be), but the combination radosgw refuses is refused alike so
    clients written for it see the same answer. S3 never sees the parameter."""
    if delimiter and ctx.req.arg("allow-unordered") == "true":
        raise S3Error(
            "InvalidArgument",
            "allow-unordered cannot be used with a delimiter",
            ArgumentName="allow-unordered",
        )


async def list_objects_v1(ctx: Ctx) -> Response:
    bucket = await _readable_bucket(ctx)
    enc, limit = Encoder(ctx), max_keys(ctx)
    prefix, delim = ctx.req.arg("prefix") or "", ctx.req.arg("delimiter") or ""
    _check_unordered(ctx, delim)
    marker = ctx.req.arg("marker") or None
    fetch = _fetch_latest(ctx, bucket)
    page = await ctx.run(collect, fetch, prefix, delim, marker, limit)
    body = [
        Node("Name", bucket.name),
        # V1 leaves Prefix as sent even with encoding-type=url (SDKs do not decode it).
        Node("Prefix", prefix),
        Node("Marker", enc(marker or "")),
        Node("MaxKeys", str(limit)),
        enc.node("Delimiter", delim or None),
        Node("IsTruncated", str(page.truncated).lower()),
        enc.node("NextMarker", page.last if page.truncated and delim else None),
        Node("EncodingType", "url") if enc.on else None,
        *[_content(r, enc, True) for r in page.rows],
        *[Node("CommonPrefixes", [Node("Prefix", enc(p))]) for p in page.prefixes],
    ]
    return xml_response(render(Node("ListBucketResult", body)))


def _fetch_latest(ctx: Ctx, bucket: Bucket) -> Fetch:
    return lambda prefix, after, n: ctx.svc.meta.list_latest(bucket, prefix, after, n)


def _token(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode()


def _untoken(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (ValueError, UnicodeDecodeError) as err:
        raise S3Error(
            "InvalidArgument",
            "The continuation token provided is incorrect",
            ArgumentName="continuation-token",
        ) from err


async def list_objects_v2(ctx: Ctx) -> Response:
    bucket = await _readable_bucket(ctx)
    enc, limit = Encoder(ctx), max_keys(ctx)
    prefix, delim = ctx.req.arg("prefix") or "", ctx.req.arg("delimiter") or ""
    _check_unordered(ctx, delim)
    token, start_after = ctx.req.arg("continuation-token"), ctx.req.arg("start-after")
    after = _untoken(token) if token is not None else (start_after or None)
    owner = ctx.req.arg("fetch-owner") == "true"
    page = await ctx.run(collect, _fetch_latest(ctx, bucket), prefix, delim, after, limit)
    last = page.last
    body = [
        Node("Name", bucket.name),
        Node("Prefix", enc(prefix)),
        Node("MaxKeys", str(limit)),
        Node("KeyCount", str(len(page.items))),
        enc.node("Delimiter", delim or None),
        Node("IsTruncated", str(page.truncated).lower()),
        Node("ContinuationToken", token) if token is not None else None,
        Node("NextContinuationToken", _token(last)) if page.truncated and last else None,
        enc.node("StartAfter", start_after),
        Node("EncodingType", "url") if enc.on else None,
        *[_content(r, enc, owner) for r in page.rows],
        *[Node("CommonPrefixes", [Node("Prefix", enc(p))]) for p in page.prefixes],
    ]
    return xml_response(render(Node("ListBucketResult", body)))


async def list_versions(ctx: Ctx) -> Response:
    bucket = await _readable_bucket(ctx, "s3:ListBucketVersions")
    enc, limit = Encoder(ctx), max_keys(ctx)
    prefix, delim = ctx.req.arg("prefix") or "", ctx.req.arg("delimiter") or ""
    key_marker = ctx.req.arg("key-marker") or None
    vid_marker = ctx.req.arg("version-id-marker") or None
    page = await ctx.run(
        _collect_versions, ctx, bucket, prefix, delim, key_marker, vid_marker, limit
    )
    body: list[Node | None] = [
        Node("Name", bucket.name),
        Node("Prefix", enc(prefix)),
        Node("KeyMarker", enc(key_marker or "")),
        Node("VersionIdMarker", vid_marker or ""),
        Node("MaxKeys", str(limit)),
        enc.node("Delimiter", delim or None),
        Node("IsTruncated", str(page.truncated).lower()),
        Node("EncodingType", "url") if enc.on else None,
    ]
    if page.truncated and page.items:
        last = page.items[-1]
        body.append(Node("NextKeyMarker", enc(last if isinstance(last, str) else last.key)))
        if not isinstance(last, str):
            body.append(Node("NextVersionIdMarker", last.version_id))
    body += [_version_node(r, enc) for r in page.rows]
    body += [Node("CommonPrefixes", [Node("Prefix", enc(p))]) for p in page.prefixes]
    return xml_response(render(Node("ListVersionsResult", body)))


def _collect_versions(
    ctx: Ctx,
    bucket: Bucket,
    prefix: str,
    delim: str,
    key_marker: str | None,
    vid_marker: str | None,
    limit: int,
) -> Page:
    meta = ctx.svc.meta
    head: list[Row[Any]] = []
    if key_marker is not None and vid_marker is not None:
        rows = meta.list_versions(bucket, key_marker, _before(key_marker), BATCH)
        same = [r for r in rows if r.key == key_marker]
        ids = [r.version_id for r in same]
        if vid_marker in ids:
            head = same[ids.index(vid_marker) + 1 :]
    page = Page(items=list(head[:limit]), truncated=len(head) > limit)
    if page.truncated:
        return page
    fetch: Fetch = lambda p, a, n: meta.list_versions(bucket, p, a, n)  # noqa: E731
    rest = collect(fetch, prefix, delim, key_marker, limit - len(page.items) + 0)
    page.items += rest.items
    page.truncated = rest.truncated
    if limit - len(head) == 0 and not rest.items:
        probe = collect(fetch, prefix, delim, key_marker, 1)
        page.truncated = bool(probe.items)
    return page


def _before(key: str) -> str | None:
    """A string just below ``key`` so a ``> after`` query includes ``key`` itself."""
    if not key:
        return None
    last = ord(key[-1])
    return key[:-1] + (chr(last - 1) + MAX_CHAR if last > 0 else "")


def _version_node(row: Row[Any], enc: Encoder) -> Node:
    common = [
        Node("Key", enc(row.key)),
        Node("VersionId", row.version_id),
        Node("IsLatest", str(bool(row.is_latest)).lower()),
        Node("LastModified", timestamp(row.modified)),
    ]
    if row.delete_marker:
        return Node("DeleteMarker", [*common, _owner_node(row)])
    return Node(
        "Version",
        [
            *common,
            Node("ETag", quote_etag(row.etag)),
            Node("Size", str(row.size)),
            Node("StorageClass", row.storage_class),
            _owner_node(row),
        ],
    )
