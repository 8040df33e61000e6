"""Blob backends: where an object's bytes live, apart from its metadata.

A blob is immutable once committed and named by an id the metadata store hands out. The
interface is small so a RADOS backend can slot in beside the filesystem one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol


class BlobWriter(Protocol):
    """One blob being written. ``commit`` makes it durable; ``discard`` leaves no trace."""

    blob_id: str
    size: int

    async def write(self, data: bytes) -> None: ...

    async def commit(self) -> None: ...

    async def discard(self) -> None: ...


class BlobStore(Protocol):
    def writer(self) -> BlobWriter: ...

    def read(self, blob_id: str, start: int, end: int) -> AsyncIterator[bytes]:
        """Bytes ``start`` up to ``end`` (exclusive) of a committed blob, in chunks."""
        ...

    async def delete(self, blob_id: str) -> None: ...

    async def sweep_temp(self, older_than: float) -> int:
        """Remove temp files abandoned by a crash, older than ``older_than`` seconds."""
        ...
