"""VM snapshots on a QEMU host: qcow2 internal snapshots named by the snapshot's tag.

``QemuVmSnapshots`` is the ``VmSnapshotDriver`` half of ``QemuDriver`` (a mixin, as
``QemuVolumes``). Every snapshot lives inside the VM's own qcow2 disks, so nothing is copied:

- running VM, disk only: ``blockdev-snapshot-internal-sync`` on every disk inside one QMP
  ``transaction``, so all disks are cut at the same instant (or none is);
- running VM, disk and memory: the ``snapshot-save`` job (QEMU >= 6.0; 7.2 here) writes the
  RAM and device state into the root disk's snapshot and snapshots every other disk too;
  ``snapshot-load`` puts the guest back as it was, still running; ``snapshot-delete`` removes it;
- stopped VM: ``qemu-img snapshot -c/-a/-d`` on each disk file.

Idempotent as the agent protocol asks: a tag taken again (a job re-run after a crash) is
deleted from the disks that have it and taken afresh; deleting a tag a disk lacks is success;
reverting to a tag some disk lacks is an error naming that disk.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cumulo.agent.drivers.base import DriverError, DriverTimeout
from cumulo.agent.drivers.qemu_rundir import RunDir, live_pid
from cumulo.agent.drivers.qemu_volumes import qmp
from cumulo.agent.drivers.qmp import QmpError
from cumulo.agent.storage import qcow2

JOB_TIMEOUT_S = 3600.0
_JOB_PREFIX = "vmsnap"


class QemuVmSnapshots:
    """``VmSnapshotDriver`` for ``QemuDriver``; see the module docstring."""

    if TYPE_CHECKING:

        def _run_dir(self, name: str) -> RunDir: ...

        def _vm_lock(self, name: str) -> contextlib.AbstractContextManager[None]: ...

    def create_vm_snapshot(
        self, vm_name: str | None, tag: str, disk_paths: tuple[str, ...], memory: bool
    ) -> None:
        run = self._live_run(vm_name)
        if run is None:
            if memory:
                raise DriverError("a memory snapshot needs the VM running on this host")
            for path in disk_paths:
                _offline(path, tag, "-d", missing_ok=True)
                _offline(path, tag, "-c")
            return
        assert vm_name is not None
        with self._vm_lock(vm_name):
            nodes = _nodes(run, disk_paths)
            _delete_live(run, tag, nodes)  # a re-run: start from no such tag
            try:
                if memory:
                    _job(run, "snapshot-save", tag, nodes, vmstate=nodes[disk_paths[0]])
                else:
                    actions = [
                        {
                            "type": "blockdev-snapshot-internal-sync",
                            "data": {"device": node, "name": tag},
                        }
                        for node in nodes.values()
                    ]
                    qmp(run.qmp, "transaction", {"actions": actions}, timeout=600.0)
            except QmpError as exc:
                raise DriverError(f"VM snapshot {tag} of {vm_name} failed: {exc}") from exc

    def revert_vm_snapshot(
        self, vm_name: str | None, tag: str, disk_paths: tuple[str, ...], memory: bool
    ) -> None:
        run = self._live_run(vm_name)
        if run is None:
            for path in disk_paths:
                if tag not in _offline_tags(path):
                    raise DriverError(f"VM snapshot {tag} is not on disk {path}")
            for path in disk_paths:
                _offline(path, tag, "-a")
            return
        assert vm_name is not None
        if not memory:
            raise DriverError(f"VM {vm_name} must be stopped to revert a disk-only snapshot")
        with self._vm_lock(vm_name):
            nodes = _nodes(run, disk_paths)
            tags = _live_tags(run)
            lacking = [p for p, n in nodes.items() if tag not in tags.get(n, set())]
            if lacking:
                raise DriverError(f"VM snapshot {tag} is not on disk {lacking[0]}")
            try:
                _job(run, "snapshot-load", tag, nodes, vmstate=nodes[disk_paths[0]])
                if qmp(run.qmp, "query-status").get("status") != "running":
                    qmp(run.qmp, "cont")
            except QmpError as exc:
                raise DriverError(f"revert of {vm_name} to {tag} failed: {exc}") from exc

    def delete_vm_snapshot(
        self, vm_name: str | None, tag: str, disk_paths: tuple[str, ...]
    ) -> None:
        run = self._live_run(vm_name)
        if run is None:
            for path in disk_paths:
                _offline(path, tag, "-d", missing_ok=True)
            return
        assert vm_name is not None
        with self._vm_lock(vm_name):
            try:
                _delete_live(run, tag, _nodes(run, disk_paths))
            except QmpError as exc:
                raise DriverError(f"deleting VM snapshot {tag} failed: {exc}") from exc

    def _live_run(self, vm_name: str | None) -> RunDir | None:
        """The running VM's run directory; None to work on the disk files offline."""
        if vm_name is None:
            return None
        run = self._run_dir(vm_name)
        return run if live_pid(run) is not None else None


# -- offline: qemu-img on the files ---------------------------------------------------------


def _offline_tags(path: str) -> set[str]:
    if not Path(path).is_file():
        raise DriverError(f"volume {path} does not exist on primary storage")
    info = json.loads(qcow2.qemu_img("info", "--output=json", "-U", path))
    return {str(s.get("name")) for s in info.get("snapshots", [])}


def _offline(path: str, tag: str, flag: str, *, missing_ok: bool = False) -> None:
    """``qemu-img snapshot`` -c (create), -a (apply) or -d (delete) on one stopped disk."""
    if missing_ok and tag not in _offline_tags(path):
        return
    qcow2.qemu_img("snapshot", flag, tag, path)


# -- live: QMP on the running VM ------------------------------------------------------------


def _nodes(run: RunDir, disk_paths: tuple[str, ...]) -> dict[str, str]:
    """Each disk path's block node in the VM (the format node QMP snapshots work on)."""
    try:
        blocks = qmp(run.qmp, "query-block")
    except QmpError as exc:
        raise DriverError(f"the VM's monitor does not answer: {exc}") from exc
    found: dict[str, str] = {}
    for path in disk_paths:
        for block in blocks:
            inserted = block.get("inserted") or {}
            if _same(str(inserted.get("file", "")), path):
                found[path] = str(inserted["node-name"])
                break
        else:
            raise DriverError(f"disk {path} is not attached to the running VM")
    return found


def _same(a: str, b: str) -> bool:
    with contextlib.suppress(OSError):
        return Path(a).samefile(b)
    return Path(a).absolute() == Path(b).absolute()


def _live_tags(run: RunDir) -> dict[str, set[str]]:
    """Node name -> the internal snapshot tags its image has now."""
    out: dict[str, set[str]] = {}
    for block in qmp(run.qmp, "query-block"):
        inserted = block.get("inserted") or {}
        image = inserted.get("image") or {}
        out[str(inserted.get("node-name"))] = {
            str(s.get("name")) for s in image.get("snapshots", [])
        }
    return out


def _delete_live(run: RunDir, tag: str, nodes: dict[str, str]) -> None:
    """Remove ``tag`` (and with it any saved memory) from the disks that have it."""
    tags = _live_tags(run)
    having = [n for n in nodes.values() if tag in tags.get(n, set())]
    if having:
        _job(run, "snapshot-delete", tag, {n: n for n in having})


def _job(
    run: RunDir, command: str, tag: str, nodes: dict[str, str], vmstate: str | None = None
) -> None:
    """Run a snapshot-save/-load/-delete job and wait for it to conclude."""
    job = f"{_JOB_PREFIX}{int(time.monotonic() * 1000)}"
    args: dict[str, Any] = {"job-id": job, "tag": tag, "devices": list(nodes.values())}
    if vmstate is not None:
        args["vmstate"] = vmstate
    qmp(run.qmp, command, args)
    deadline = time.monotonic() + JOB_TIMEOUT_S
    delay = 0.05
    while True:
        found = [j for j in qmp(run.qmp, "query-jobs") if j.get("id") == job]
        if not found:
            raise DriverError(f"{command} job {job} vanished from the VM")
        if found[0].get("status") == "concluded":
            with contextlib.suppress(QmpError):
                qmp(run.qmp, "job-dismiss", {"id": job})
            if found[0].get("error"):
                raise DriverError(f"{command} {tag} failed: {found[0]['error']}")
            return
        if time.monotonic() >= deadline:
            raise DriverTimeout(f"{command} {tag} did not finish in {JOB_TIMEOUT_S:.0f} s")
        time.sleep(delay)
        delay = min(delay * 2, 0.5)
