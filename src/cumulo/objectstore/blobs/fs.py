"""The filesystem blob backend: one file per blob under ``<root>/<id[:2]>/<id[2:4]>/<id>``.

Writes go to ``<root>/tmp/<id>`` and are renamed into place only after an fsync, then the
directory is fsynced so the rename itself survives a crash: a committed blob is whole, and an
abandoned temp file is swept later. Disk calls run in a worker thread so a slow disk never
stalls the event loop that serves other requests.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from anyio import to_thread

READ_CHUNK = 1 << 20
# Small writes are gathered so each thread hop carries a useful amount of data.
WRITE_BATCH = 1 << 20


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FsBlobWriter:
    def __init__(self, store: FsBlobStore) -> None:
        self.blob_id = uuid.uuid4().hex
        self.size = 0
        self._store = store
        self._tmp = store.tmp_dir / self.blob_id
        self._fh = open(self._tmp, "wb")  # noqa: SIM115 (closed in commit/discard)
        self._pending: list[bytes] = []
        self._pending_size = 0

    async def write(self, data: bytes) -> None:
        self.size += len(data)
        self._pending.append(data)
        self._pending_size += len(data)
        if self._pending_size >= WRITE_BATCH:
            await self._flush()

    async def _flush(self) -> None:
        if not self._pending:
            return
        chunk = b"".join(self._pending)
        self._pending, self._pending_size = [], 0
        await to_thread.run_sync(self._fh.write, chunk)

    async def commit(self) -> None:
        await self._flush()
        await to_thread.run_sync(self._commit_sync)

    def _commit_sync(self) -> None:
        # fsync before rename: otherwise a crash could leave the final name on empty data.
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        final = self._store.path(self.blob_id)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._tmp, final)
        # fsync the directory so the rename (the blob's existence) is durable too.
        _fsync_dir(final.parent)

    async def discard(self) -> None:
        self._fh.close()
        self._tmp.unlink(missing_ok=True)


class FsBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp_dir = root / "tmp"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)

    def path(self, blob_id: str) -> Path:
        return self.root / blob_id[:2] / blob_id[2:4] / blob_id

    def writer(self) -> FsBlobWriter:
        return FsBlobWriter(self)

    async def read(self, blob_id: str, start: int, end: int) -> AsyncIterator[bytes]:
        fh = await to_thread.run_sync(open, self.path(blob_id), "rb")
        try:
            fh.seek(start)
            remaining = end - start
            while remaining > 0:
                chunk = await to_thread.run_sync(fh.read, min(READ_CHUNK, remaining))
                if not chunk:
                    raise OSError(f"blob {blob_id} is shorter than its manifest says")
                remaining -= len(chunk)
                yield chunk
        finally:
            fh.close()

    async def delete(self, blob_id: str) -> None:
        await to_thread.run_sync(self._delete_sync, blob_id)

    def _delete_sync(self, blob_id: str) -> None:
        self.path(blob_id).unlink(missing_ok=True)

    async def sweep_temp(self, older_than: float) -> int:
        return await to_thread.run_sync(self._sweep_sync, older_than)

    def _sweep_sync(self, older_than: float) -> int:
        cutoff, removed = time.time() - older_than, 0
        for entry in os.scandir(self.tmp_dir):
            if entry.stat().st_mtime < cutoff:
                Path(entry.path).unlink(missing_ok=True)
                removed += 1
        return removed
