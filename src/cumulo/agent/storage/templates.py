"""The template cache on a primary storage pool: each template downloaded once, verified.

The download streams into a temporary file beside its final name; only after the checksum
matches (and a raw image has been turned into qcow2) is it fsynced and renamed to
``<pool>/templates/<template id>.qcow2``, so a VM never clones a partial or corrupt copy and
a crashed download leaves nothing a later call would mistake for the template.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

from cumulo.agent.drivers.base import DriverError
from cumulo.agent.storage.qcow2 import is_qcow2, qemu_img

_ALGOS_BY_LENGTH = {32: "md5", 40: "sha1", 64: "sha256", 128: "sha512"}
_PREFIXED = re.compile(r"^\{([A-Za-z0-9-]+)\}([0-9a-fA-F]+)$")
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def parse_checksum(checksum: str) -> tuple[str, str] | None:
    """``(algorithm, hex)`` from CloudStack's forms: ``{SHA-256}hex`` or bare hex by length."""
    text = checksum.strip()
    if not text:
        return None
    match = _PREFIXED.match(text)
    if match:
        algo = match.group(1).lower().replace("-", "")
        digest = match.group(2)
    else:
        digest = text
        algo = _ALGOS_BY_LENGTH.get(len(text), "")
    if algo not in hashlib.algorithms_available or not re.fullmatch(r"[0-9a-fA-F]+", digest):
        raise DriverError(f"unsupported template checksum {checksum!r}")
    return algo, digest.lower()


def template_path(pool_path: str, template_id: str) -> Path:
    if not _SAFE_ID.match(template_id):
        raise DriverError(f"invalid template id {template_id!r}")
    return Path(pool_path) / "templates" / f"{template_id}.qcow2"


def prepare_template(template_id: str, source_url: str, checksum: str, pool_path: str) -> str:
    """The cached copy's path, downloading it first when the pool does not hold it yet."""
    final = template_path(pool_path, template_id)
    expected = parse_checksum(checksum)
    with _lock_for(str(final)):
        if final.is_file():
            return str(final)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.part")
        try:
            actual = _download(source_url, tmp, expected[0] if expected else "sha256")
            if expected and actual != expected[1]:
                raise DriverError(
                    f"template {template_id} checksum mismatch: expected {expected[1]}, "
                    f"got {actual}"
                )
            _to_qcow2(tmp)
            _fsync_file(tmp)
            os.replace(tmp, final)
            _fsync_dir(final.parent)
        finally:
            tmp.unlink(missing_ok=True)
            tmp.with_name(tmp.name + ".qcow2").unlink(missing_ok=True)
    return str(final)


def _lock_for(key: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


def _download(url: str, dest: Path, algo: str) -> str:
    """Stream ``url`` into ``dest`` and return the hex digest (never all in memory)."""
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("http", "https", "file"):
        raise DriverError(f"unsupported template URL scheme in {url!r}")
    h = hashlib.new(algo)
    try:
        with urllib.request.urlopen(url, timeout=60) as src, dest.open("wb") as out:
            while chunk := src.read(1 << 20):
                h.update(chunk)
                out.write(chunk)
    except (urllib.error.URLError, OSError) as exc:
        raise DriverError(f"cannot download template from {url}: {exc}") from exc
    return h.hexdigest()


def _to_qcow2(path: Path) -> None:
    """Root disks are qcow2 clones with ``-F qcow2``: a raw template is converted once here."""
    if is_qcow2(path):
        _refuse_backing_file(path)
        return
    converted = path.with_name(path.name + ".qcow2")
    qemu_img("convert", "-q", "-f", "raw", "-O", "qcow2", str(path), str(converted))
    shutil.move(converted, path)


def _refuse_backing_file(path: Path) -> None:
    """A user's qcow2 naming a backing file could make a VM read any file on the host."""
    info = json.loads(qemu_img("info", "--output=json", str(path)))
    if info.get("backing-filename") or info.get("full-backing-filename"):
        raise DriverError("template refused: a qcow2 template must not have a backing file")


def _fsync_file(path: Path) -> None:
    with path.open("rb") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    """The rename itself must survive a crash, so the directory entry is synced too."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
