"""The image-store interface: how the management server writes bytes into secondary storage.

Every path that puts data into an image store (template and ISO registration now; snapshots,
volume uploads and S3 stores in issue 12) goes through ``ImageStoreBackend``. A writer is
staged: nothing is visible at the final path until ``commit``, and ``abort`` leaves nothing
behind, so a failed or rejected download (checksum mismatch) never leaves a half file that a
later copy could pick up.

``DirectoryStore`` keeps files under a local root (provider ``Directory``, url
``file:///path``). NFS stores cannot be mounted from the management server yet, so
``backend_for`` refuses them with a clear reason; S3 arrives through this same Protocol.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse

from cumulo.db.models_infra import ImageStore


class StoreUnavailable(Exception):
    """This image store cannot be written from the management server."""


class StoreWriter(Protocol):
    def write(self, data: bytes) -> None: ...

    def commit(self) -> None:
        """Make the bytes visible at their path, atomically and durably."""

    def abort(self) -> None:
        """Throw the staged bytes away; the path is left as it was."""


class ImageStoreBackend(Protocol):
    def open_writer(self, path: str) -> StoreWriter: ...

    def delete(self, path: str) -> None:
        """Remove a path; a missing path is not an error (deletes are retried)."""

    def size(self, path: str) -> int: ...

    def exists(self, path: str) -> bool: ...


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _DirectoryWriter:
    """Writes to a temporary name beside the target; commit is fsync + rename + dir fsync."""

    def __init__(self, target: Path) -> None:
        self.target = target
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
        self.tmp = Path(tmp)
        self.file = os.fdopen(fd, "wb")

    def write(self, data: bytes) -> None:
        self.file.write(data)

    def commit(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        os.replace(self.tmp, self.target)
        _fsync_dir(self.target.parent)

    def abort(self) -> None:
        if not self.file.closed:
            self.file.close()
        self.tmp.unlink(missing_ok=True)


class DirectoryStore:
    """An image store that is a directory on the management server's file system."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, path: str) -> Path:
        full = (self.root / path).resolve()
        if not full.is_relative_to(self.root.resolve()):
            raise ValueError(f"path {path!r} leaves the image store")
        return full

    def open_writer(self, path: str) -> StoreWriter:
        return _DirectoryWriter(self._path(path))

    def delete(self, path: str) -> None:
        full = self._path(path)
        full.unlink(missing_ok=True)
        # What a writer that died (a host killed mid-export) staged beside it goes too.
        for staged in full.parent.glob(f".{full.name}.*.part"):
            staged.unlink(missing_ok=True)
        if full.parent.exists() and full.parent != self.root.resolve():
            with contextlib.suppress(OSError):  # not empty: another copy lives there
                full.parent.rmdir()  # the template's own directory, once empty

    def size(self, path: str) -> int:
        return self._path(path).stat().st_size

    def exists(self, path: str) -> bool:
        return self._path(path).is_file()

    def local_path(self, path: str) -> Path:
        """Where the file is on this server (to stream it to a host)."""
        return self._path(path)


def backend_for(store: ImageStore) -> ImageStoreBackend:
    """The backend that writes into ``store``, or StoreUnavailable with the reason."""
    if store.provider == "Directory":
        parsed = urlparse(store.url)
        if parsed.scheme != "file" or not parsed.path:
            raise StoreUnavailable(f"image store {store.name} has no file:/// url: {store.url}")
        return DirectoryStore(Path(unquote(parsed.path)))
    raise StoreUnavailable(
        f"image store {store.name} ({store.provider}) cannot be written from the management "
        "server yet: only Directory stores can receive downloads"
    )
