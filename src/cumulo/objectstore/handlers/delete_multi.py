"""DeleteObjects (POST ?delete).

S3 requires an integrity header on this request; current SDKs send ``x-amz-checksum-*`` and
no Content-MD5 (storage reference §2, §7), so either is accepted and the auth layer's payload
check verifies whichever came.
"""

from __future__ import annotations

from functools import partial

from cumulo.objectstore.errors import S3Error
from cumulo.objectstore.handlers import lock
from cumulo.objectstore.handlers.access import authorize
from cumulo.objectstore.handlers.base import Ctx
from cumulo.objectstore.http import Response, xml_response
from cumulo.objectstore.xml import Node, parse, render

MAX_KEYS = 1000


def _has_integrity_header(ctx: Ctx) -> bool:
    h = ctx.req.headers
    return (
        "content-md5" in h
        or any(k.startswith("x-amz-checksum-") for k in h)
        or ("x-amz-sdk-checksum-algorithm" in h or "x-amz-trailer" in h)
    )


async def delete_objects(ctx: Ctx) -> Response:
    bucket = await ctx.bucket()
    if not _has_integrity_header(ctx):
        raise S3Error("InvalidRequest", "Missing required header for this request: Content-MD5")
    root = parse(await ctx.small_body())
    quiet = (root.findtext("Quiet") or "").strip().lower() == "true"
    targets = [((o.findtext("Key") or ""), o.findtext("VersionId")) for o in root.findall("Object")]
    if not targets or len(targets) > MAX_KEYS:
        raise S3Error("MalformedXML")
    results: list[Node] = []
    protect = partial(lock.check_delete, bypass=lock.bypassing(ctx))
    for key, version in targets:
        try:
            action = "s3:DeleteObjectVersion" if version is not None else "s3:DeleteObject"
            authorize(ctx, bucket, action, key)
            marker, vid = await ctx.run(
                ctx.svc.meta.delete_object, bucket.name, key, version, protect
            )
        except S3Error as err:
            results.append(_error(key, version, err))
            continue
        if not quiet:
            results.append(_deleted(key, version, marker, vid))
    return xml_response(render(Node("DeleteResult", results)))


def _deleted(key: str, version: str | None, marker: bool, vid: str | None) -> Node:
    children = [Node("Key", key)]
    if version is not None:
        children.append(Node("VersionId", version))
    if marker:
        children.append(Node("DeleteMarker", "true"))
        if vid is not None:
            children.append(Node("DeleteMarkerVersionId", vid))
    return Node("Deleted", children)


def _error(key: str, version: str | None, err: S3Error) -> Node:
    children = [Node("Key", key)]
    if version is not None:
        children.append(Node("VersionId", version))
    children += [Node("Code", err.code), Node("Message", err.message)]
    return Node("Error", children)
