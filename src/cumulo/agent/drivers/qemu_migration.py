"""Stop-and-copy migration of a VM on local storage: the two disk steps a host carries out.

The management server orchestrates (services/compute/migration.py): it stops the VM on the
source, asks the source to *stage* each disk in the image store (secondary storage, which
every host of the zone mounts, as it does for snapshot exports), asks the target to *fetch*
each staged disk onto its own pool, then starts the VM there with the ordinary ``StartVm``.
These functions are those two disk steps; both are idempotent and crash-safe:

- a staged copy is written under a temporary name and renamed only when complete (after an
  fsync), so a present file under the final name is always a whole disk, and a re-sent
  command finds it and answers at once;
- the copy is flattened (``qemu-img convert`` follows the backing chain), so the target
  needs neither the template nor the source's cache path;
- a fetched disk lands on the target's pool the same way (temporary name, rename).
"""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from cumulo.agent.drivers.base import DriverError
from cumulo.agent.drivers.qemu import QemuDriver
from cumulo.agent.storage import qcow2
from cumulo.agent.storage.staging import staged, store_file
from cumulo.agentrpc.messages import FetchDisk, PowerState, StageDisk

COPY_TIMEOUT_S = 3600.0  # a large disk on a slow store; the server's own wait is shorter


def stage_disk(driver: QemuDriver, command: StageDisk) -> dict[str, int]:
    """Copy the stopped VM's disk, flattened, into the store; what was written."""
    power = driver.status(command.vm_name).power
    if power in (PowerState.RUNNING, PowerState.PAUSED):
        raise DriverError(
            f"VM {command.vm_name} is still running on this host; its disk cannot be staged"
        )
    target = store_file(command.store_url, command.install_path)
    if not target.is_file():
        source = Path(command.path)
        if not source.is_file():
            raise DriverError(f"disk {command.path} is not on this host")
        with staged(target) as tmp:
            _qemu_img("convert", "-q", "-O", "qcow2", str(source), str(tmp))
    return {"size": qcow2.virtual_size(target), "physical_size": target.stat().st_size}


def fetch_disk(command: FetchDisk) -> dict[str, int]:
    """Copy a staged disk onto this host's pool at ``command.path``; its virtual size."""
    final = Path(command.path)
    if not final.is_file():
        scheme = urllib.parse.urlsplit(command.source_url).scheme
        if scheme not in ("file", "http", "https"):
            raise DriverError(f"unsupported URL scheme in {command.source_url!r}")
        with staged(final) as tmp:
            _download(command.source_url, tmp)
            if not qcow2.is_qcow2(tmp):
                raise DriverError(f"{command.source_url} is not a qcow2 disk")
            info = json.loads(qcow2.qemu_img("info", "--output=json", str(tmp)))
            if info.get("backing-filename"):
                raise DriverError("a migrated disk must be flattened (it names a backing file)")
    return {"size": qcow2.virtual_size(final)}


def _download(url: str, dest: Path) -> None:
    try:
        with urllib.request.urlopen(url, timeout=60) as src, dest.open("wb") as out:
            while chunk := src.read(1 << 20):
                out.write(chunk)
    except (urllib.error.URLError, OSError) as exc:
        raise DriverError(f"cannot copy {url}: {exc}") from exc


def _qemu_img(*args: str) -> None:
    try:
        done = subprocess.run(
            ["qemu-img", *args], capture_output=True, text=True, check=False,
            timeout=COPY_TIMEOUT_S,
        )  # fmt: skip
    except FileNotFoundError as exc:
        raise DriverError("qemu-img is not installed on this host") from exc
    except subprocess.TimeoutExpired as exc:
        raise DriverError(f"qemu-img {args[0]} did not finish in {COPY_TIMEOUT_S:.0f} s") from exc
    if done.returncode != 0:
        raise DriverError(f"qemu-img {args[0]} failed: {done.stderr.strip()[-400:]}")
