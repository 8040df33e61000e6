"""qcow2 volumes through ``qemu-img``: copy-on-write clones of cached templates, blank disks.

A new volume is created under a temporary name and renamed into place, so a crash never
leaves a half-made disk under the name a VM will boot from.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from cumulo.agent.drivers.base import DriverError

QCOW2_MAGIC = b"QFI\xfb"


def qemu_img(*args: str) -> str:
    try:
        done = subprocess.run(
            ["qemu-img", *args], capture_output=True, text=True, check=False, timeout=120
        )
    except FileNotFoundError as exc:
        raise DriverError("qemu-img is not installed on this host") from exc
    if done.returncode != 0:
        raise DriverError(f"qemu-img {args[0]} failed: {done.stderr.strip()[-400:]}")
    return done.stdout


def virtual_size(path: Path) -> int:
    info = json.loads(qemu_img("info", "--output=json", "-U", str(path)))
    return int(info["virtual-size"])


def is_qcow2(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(4) == QCOW2_MAGIC


def ensure_clone(path: Path, template: Path, size_bytes: int = 0) -> bool:
    """A CoW clone of ``template`` at ``path`` (never smaller than it); True when created."""
    if path.exists():
        return False
    if not template.is_file():
        raise DriverError(f"template {template} is not cached on this host")
    size = max(size_bytes, virtual_size(template))
    _create(path, "-b", str(template.resolve()), "-F", "qcow2", str(size))
    return True


def ensure_blank(path: Path, size_bytes: int) -> bool:
    """An empty qcow2 data disk at ``path``; True when created."""
    if path.exists():
        return False
    if size_bytes <= 0:
        raise DriverError(f"disk {path} has no size")
    _create(path, str(size_bytes))
    return True


def _create(path: Path, *args: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.creating")
    tmp.unlink(missing_ok=True)
    try:
        # qemu-img takes the size last: options and backing file come first.
        qemu_img("create", "-q", "-f", "qcow2", *args[:-1], str(tmp), args[-1])
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
