"""The early quota check: refuse a write whose declared size cannot fit before reading its body.

The binding check runs in the committing transaction (``meta.users.check_stored``), so two
concurrent writes can never both commit past a limit; this one only spares the client sending
bytes that would be thrown away, and the server storing them meanwhile.
"""

from __future__ import annotations

from cumulo.objectstore.errors import S3Error
from cumulo.objectstore.handlers.base import Ctx
from cumulo.objectstore.meta.store import Bucket
from cumulo.objectstore.meta.users import Limits, quota_error, room


async def check_room(ctx: Ctx, bucket: Bucket, incoming: int | None, key: str | None) -> None:
    """``incoming`` bytes (None: unknown) for a new version of ``key`` (None: a part, which
    replaces nothing and adds no object until its upload completes)."""
    found = await ctx.run(room, ctx.svc.meta.db, bucket.owner_id)
    if found is None:
        return
    lim, (_, objects, size) = found
    if _excess(lim, objects, size, incoming, key is not None, (0, 0)) is None:
        return
    # An overwrite of an unversioned key gives back what it replaces.
    replaced = (0, 0)
    if key is not None and bucket.versioning != "Enabled":
        try:
            row = await ctx.run(ctx.svc.meta.get_version, bucket, key, None)
        except S3Error:
            row = None
        if row is not None and not row.delete_marker:
            replaced = (1, int(row.size))
    err = _excess(lim, objects, size, incoming, key is not None, replaced)
    if err is not None:
        raise err


def _excess(
    lim: Limits,
    objects: int,
    size: int,
    incoming: int | None,
    adds_object: bool,
    replaced: tuple[int, int],
) -> S3Error | None:
    objects_after = objects + 1 - replaced[0]
    if lim.max_objects is not None and adds_object and objects_after > lim.max_objects:
        return quota_error("objects", lim.max_objects)
    bytes_after = size + (incoming or 0) - replaced[1]
    if lim.max_bytes is not None and incoming is not None and bytes_after > lim.max_bytes:
        return quota_error("bytes", lim.max_bytes)
    return None
