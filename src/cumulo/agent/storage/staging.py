"""Files that appear whole or not at all, and paths inside a ``file://`` store.

Every file an agent writes for the cloud (a volume, a snapshot export, a staged disk of a
migration) is written under a temporary name beside its final one, fsynced, renamed, and its
directory fsynced: a crash leaves at worst a ``.<name>.<random>.part`` file, never a partial
file under the real name, and ``parts_of`` finds such leftovers for cleanup.
"""

from __future__ import annotations

import contextlib
import os
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

from cumulo.agent.drivers.base import DriverError


def store_file(store_url: str, install_path: str) -> Path:
    """The file ``install_path`` names in a ``file://`` store; paths leaving it refused."""
    parsed = urllib.parse.urlparse(store_url)
    if parsed.scheme != "file" or not parsed.path:
        raise DriverError(f"this host can only write to file:// stores, not {store_url}")
    root = Path(urllib.parse.unquote(parsed.path)).resolve()
    full = (root / install_path).resolve()
    if not install_path or not full.is_relative_to(root) or full == root:
        raise DriverError(f"path {install_path!r} leaves the store")
    return full


def parts_of(target: Path) -> list[Path]:
    """Temporary files a crashed writer of ``target`` left behind."""
    return list(target.parent.glob(f".{target.name}.*.part"))


@contextlib.contextmanager
def staged(final: Path, companions: tuple[str, ...] = ()) -> Iterator[Path]:
    """A temporary name beside ``final``; on success fsync, rename, fsync the directory.

    ``companions`` are suffixes of scratch files the caller makes beside the temporary one
    (``.raw`` for a conversion), removed whatever happens."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        yield tmp
        fsync_path(tmp)
        os.replace(tmp, final)
        fsync_path(final.parent)
    finally:
        tmp.unlink(missing_ok=True)
        for suffix in companions:
            tmp.with_name(tmp.name + suffix).unlink(missing_ok=True)


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
