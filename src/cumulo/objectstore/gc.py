"""The blob collector: deletes blobs no version or part names, once their leeway has passed.

The leeway is what makes deleting safe: a GET that resolved the old manifest just before an
overwrite keeps streaming from blobs that stay on disk for ``gc_leeway_seconds``. The garbage
row is removed only after the file is gone, so a crash in between merely repeats a delete.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from anyio import to_thread

from cumulo.common.time import utcnow
from cumulo.objectstore.handlers.base import Service

log = logging.getLogger(__name__)


async def collect_once(svc: Service) -> int:
    leeway = timedelta(seconds=svc.settings.gc_leeway_seconds)
    rows = await to_thread.run_sync(svc.meta.dead_blobs, utcnow(), leeway)
    for row in rows:
        await svc.blobs.delete(row.blob_id)
    if rows:
        await to_thread.run_sync(svc.meta.drop_garbage, [r.id for r in rows])
    swept = await svc.blobs.sweep_temp(max(svc.settings.gc_leeway_seconds, 3600.0))
    return len(rows) + swept


async def run_collector(svc: Service) -> None:
    while True:
        try:
            removed = await collect_once(svc)
            if removed:
                log.info("blob collector removed %d blobs", removed)
        except Exception:
            log.exception("blob collector failed; retrying")
        await asyncio.sleep(svc.settings.gc_interval_seconds)
