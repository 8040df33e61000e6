"""Access statistics: request counts and bytes in and out per account, bucket, operation and
hour (Riak CS's access stats, storage reference §6), feeding the cloud's metering.

Counting in the request path would cost a write transaction per request, so counts gather in
memory and a background task adds them to ``s3_usage`` every few seconds (and at shutdown). A
crash loses at most that interval of access counts, never stored data; storage statistics
(objects and bytes per bucket) are kept exactly, in the writing transactions.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import defaultdict
from datetime import datetime

from anyio import to_thread
from sqlalchemy import insert, update

from cumulo.common.time import utcnow
from cumulo.db.engine import Database
from cumulo.objectstore.meta.schema import usage

log = logging.getLogger(__name__)

# Handler name → Riak CS operation name; others are named after their handler.
OPERATIONS = {
    "list_buckets": "ListBuckets",
    "create_bucket": "BucketCreate",
    "delete_bucket": "BucketDelete",
    "head_bucket": "BucketStat",
    "list_objects_v1": "BucketRead",
    "list_objects_v2": "BucketRead",
    "list_versions": "BucketReadVersions",
    "get_bucket_acl": "BucketReadACL",
    "put_bucket_acl": "BucketWriteACL",
    "get_object": "KeyRead",
    "put_object": "KeyWrite",
    "copy_object": "KeyCopy",
    "delete_object": "KeyDelete",
    "delete_objects": "KeyDeleteMulti",
    "get_object_acl": "KeyReadACL",
    "put_object_acl": "KeyWriteACL",
    "initiate": "KeyWriteMultipartInit",
    "upload_part": "KeyWritePart",
    "upload_part_copy": "KeyWritePartCopy",
    "complete": "KeyWriteMultipartComplete",
    "abort": "KeyWriteMultipartAbort",
}

Slot = tuple[str, str, str, datetime]


def operation_name(handler_name: str, method: str) -> str:
    if handler_name == "get_object" and method == "HEAD":
        return "KeyStat"
    return OPERATIONS.get(handler_name, "".join(p.title() for p in handler_name.split("_")))


class UsageMeter:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._pending: dict[Slot, list[int]] = defaultdict(lambda: [0, 0, 0])

    def record(
        self, owner: str, bucket: str, operation: str, bytes_in: int, bytes_out: int
    ) -> None:
        hour = utcnow().replace(minute=0, second=0, microsecond=0)
        with self._lock:
            slot = self._pending[(owner, bucket, operation, hour)]
            slot[0] += 1
            slot[1] += bytes_in
            slot[2] += bytes_out

    def flush(self) -> int:
        """Write what is pending. Flushes are serialised, so when one returns every count
        recorded before it was called is committed (a usage report flushes first and then
        reads: a periodic flush still writing would otherwise hide its counts)."""
        with self._flush_lock:
            with self._lock:
                pending, self._pending = self._pending, defaultdict(lambda: [0, 0, 0])
            if not pending:
                return 0
            try:
                self._write(pending)
            except Exception:
                self._merge_back(pending)
                raise
            return len(pending)

    def _merge_back(self, pending: dict[Slot, list[int]]) -> None:
        with self._lock:
            for slot, values in pending.items():
                mine = self._pending[slot]
                for i, v in enumerate(values):
                    mine[i] += v

    def _write(self, pending: dict[Slot, list[int]]) -> None:
        with self._db.write() as s:
            for (owner, bucket, op, hour), (count, b_in, b_out) in pending.items():
                cond = (
                    (usage.c.owner_id == owner)
                    & (usage.c.bucket == bucket)
                    & (usage.c.operation == op)
                    & (usage.c.hour == hour)
                )
                done = s.execute(
                    update(usage)
                    .where(cond)
                    .values(
                        count=usage.c.count + count,
                        bytes_in=usage.c.bytes_in + b_in,
                        bytes_out=usage.c.bytes_out + b_out,
                    )
                )
                if done.rowcount == 0:  # type: ignore[attr-defined]
                    s.execute(
                        insert(usage).values(
                            owner_id=owner,
                            bucket=bucket,
                            operation=op,
                            hour=hour,
                            count=count,
                            bytes_in=b_in,
                            bytes_out=b_out,
                        )
                    )


async def run_flusher(meter: UsageMeter, interval: float) -> None:
    try:
        while True:
            await asyncio.sleep(interval)
            try:
                await to_thread.run_sync(meter.flush)
            except Exception:
                log.exception("usage flush failed; counts kept for the next try")
    finally:
        await to_thread.run_sync(meter.flush)
