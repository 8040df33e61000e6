"""GetObjectAttributes: an object's ETag, size, storage class, checksums and parts, in one
call (x-amz-object-attributes names which; parts page with max-parts/part-number-marker)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row

from cumulo.objectstore.handlers import ssec
from cumulo.objectstore.handlers.base import Ctx
from cumulo.objectstore.handlers.conditions import http_date
from cumulo.objectstore.handlers.object import readable_version
from cumulo.objectstore.http import Response, xml_response
from cumulo.objectstore.xml import Node, render


async def get_attributes(ctx: Ctx) -> Response:
    bucket, row = await readable_version(ctx)
    ssec.key_for(ctx, row.headers)  # an encrypted object's attributes need its key
    wanted = {a.strip() for a in ctx.req.headers.get("x-amz-object-attributes", "").split(",")}
    body: list[Node | None] = []
    if "ETag" in wanted:
        body.append(Node("ETag", row.etag))
    if "Checksum" in wanted and row.checksums:
        items = [Node(f"Checksum{k}", v) for k, v in row.checksums.items()]
        body.append(Node("Checksum", items))
    if "ObjectParts" in wanted and row.parts:
        body.append(_parts(ctx, row))
    if "StorageClass" in wanted:
        body.append(Node("StorageClass", row.storage_class))
    if "ObjectSize" in wanted:
        body.append(Node("ObjectSize", str(row.size)))
    headers = [("Last-Modified", http_date(row.modified))]
    if bucket.versioning == "Enabled":
        headers.append(("x-amz-version-id", row.version_id))
    return xml_response(render(Node("GetObjectAttributesResponse", body)), headers=headers)


def _parts(ctx: Ctx, row: Row[Any]) -> Node:
    sizes: list[int] = list(row.parts)
    raw_max = ctx.req.headers.get("x-amz-max-parts", "1000")
    raw_marker = ctx.req.headers.get("x-amz-part-number-marker", "0")
    limit = int(raw_max) if raw_max.isdigit() else 1000
    marker = int(raw_marker) if raw_marker.isdigit() else 0
    page = list(enumerate(sizes, 1))[marker : marker + limit]
    truncated = marker + limit < len(sizes)
    parts = [Node("Part", [Node("PartNumber", str(n)), Node("Size", str(s))]) for n, s in page]
    return Node(
        "ObjectParts",
        [
            Node("PartsCount", str(len(sizes))),
            Node("PartNumberMarker", str(marker)),
            Node("NextPartNumberMarker", str(page[-1][0] if page else marker)),
            Node("MaxParts", str(limit)),
            Node("IsTruncated", str(truncated).lower()),
            *parts,
        ],
    )
