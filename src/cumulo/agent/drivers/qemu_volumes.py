"""Block storage on a QEMU host: volume files, hot-plug over QMP, snapshot and template exports.

``QemuVolumes`` is the ``VolumeDriver`` half of ``QemuDriver`` (a mixin: it uses the driver's
run directories and per-VM locks). Volume files are qcow2 on the host's primary storage pools;
exports go to secondary storage, a ``file://`` directory store every host mounts.

Hot-plug: ``blockdev-add`` (node ``cv<volume hex>``) then ``device_add`` of a
``virtio-blk-pci`` (id ``cvd<volume hex>``) whose serial is the volume id without dashes, cut
to the 20 bytes virtio-blk carries (as CloudStack does), so the guest finds the disk under
``/dev/disk/by-id/virtio-<serial>`` or ``/sys/block/vdX/serial``. Hot-unplug: ``device_del``,
wait for ``DEVICE_DELETED`` (the guest must release it through ACPI), then ``blockdev-del``.
Disks added so are also written into the VM's ``vm.json``, so an agent restart (or a VM
migration reading that spec) knows them; a cold start gets its disks from the server.

Snapshots of a running VM use ``blockdev-backup`` with ``sync=full`` into a fresh qcow2 at a
temporary name on the store: the copy-before-write filter makes the copy exactly the disk as
it was when the job started (crash-consistent), guest writes carry on meanwhile, and the VM's
own image chain is never changed. The alternative (an external snapshot, copy the base, then
``block-commit``) rewrites the active chain: a crash in the middle leaves the VM running on an
overlay that someone has to commit later. With a backup job a crash leaves only a temporary
file and a job that a retry (or the next export of that VM) sweeps away. A stopped VM's disk
is converted with ``qemu-img convert``; both give a self-contained qcow2 (no backing file).

Every export is fsynced, renamed into place, and its directory fsynced: a partial export
never appears under its final name. Temporary names are ``.<name>.<random>.part`` beside it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cumulo.agent.drivers.base import DriverError, DriverTimeout
from cumulo.agent.drivers.qemu_rundir import RunDir, live_pid, write_json
from cumulo.agent.drivers.qmp import QmpError
from cumulo.agent.drivers.qmp import qmp as _qmp_once
from cumulo.agent.storage import qcow2
from cumulo.agent.storage.staging import fsync_path, parts_of, staged, store_file
from cumulo.agentrpc.messages import DiskSpec, to_wire

SERIAL_BYTES = 20  # virtio-blk's ID field (VIRTIO_BLK_ID_BYTES)
UNPLUG_TIMEOUT_S = 60.0
EXPORT_TIMEOUT_S = 6 * 3600.0
_JOB_PREFIX = "snap"
# Backup jobs this agent process runs now: any other ``snap*`` job in a VM was started by an
# agent that died mid-export (QEMU runs on without it), and is cancelled by the next export.
_active_jobs: set[str] = set()
_active_guard = threading.Lock()
_TARGET_PREFIX = "bk"


def _hex(volume_id: str) -> str:
    return "".join(c for c in volume_id.lower() if c.isalnum())


def disk_serial(volume_id: str) -> str:
    """What the guest reads as the disk's serial: the volume id, dashes dropped, 20 bytes."""
    return _hex(volume_id)[:SERIAL_BYTES]


def node_name(volume_id: str) -> str:
    """QMP node names are at most 31 characters and start with a letter."""
    return f"cv{_hex(volume_id)[:28]}"


def device_id(volume_id: str) -> str:
    return f"cvd{_hex(volume_id)[:28]}"


def qmp(
    path: Path,
    command: str,
    arguments: dict[str, Any] | None = None,
    *,
    timeout: float = 10.0,
    busy_s: float = 15.0,
) -> Any:
    """One QMP exchange, retried while the monitor is busy with another client.

    QEMU serves one QMP client at a time; a connect while another (the agent's status poll,
    a stats sample) holds it fails with EAGAIN. Polling a long export must ride that out.
    """
    deadline = time.monotonic() + busy_s
    delay = 0.02
    while True:
        try:
            return _qmp_once(path, command, arguments, timeout=timeout)
        except QmpError as exc:
            if not isinstance(exc.__cause__, BlockingIOError) or time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


# -- one QMP connection that also sees events ----------------------------------------------


class QmpSession:
    """A QMP connection kept open across commands, so asynchronous events (DEVICE_DELETED)
    sent after a command reach us. Held only for seconds: QEMU serves one client at a time."""

    def __init__(self, path: Path, timeout: float = 10.0) -> None:
        self.path = path
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.buffer = b""
        self.events: list[dict[str, Any]] = []
        try:
            self._connect(time.monotonic() + 15.0)
            self._reply(time.monotonic() + timeout, "QMP")
            self.execute("qmp_capabilities")
        except (OSError, ValueError) as exc:
            self.sock.close()
            raise QmpError(f"QMP on {path.name}: {exc}") from exc

    def _connect(self, deadline: float) -> None:
        """Connect, waiting while another client holds the monitor (EAGAIN)."""
        delay = 0.02
        while True:
            try:
                self.sock.settimeout(self.timeout)
                self.sock.connect(str(self.path))
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise
            self.sock.close()
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            time.sleep(delay)
            delay = min(delay * 2, 0.5)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> QmpSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def execute(self, command: str, arguments: dict[str, Any] | None = None) -> Any:
        message: dict[str, Any] = {"execute": command}
        if arguments:
            message["arguments"] = arguments
        try:
            self.sock.sendall(json.dumps(message).encode() + b"\n")
            return self._reply(time.monotonic() + self.timeout, "return")
        except (OSError, ValueError) as exc:
            raise QmpError(f"QMP {command} on {self.path.name}: {exc}") from exc

    def wait_event(
        self, name: str, match: Callable[[dict[str, Any]], bool], timeout: float
    ) -> dict[str, Any] | None:
        """The data of the first ``name`` event ``match`` accepts, or None after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            for index, event in enumerate(self.events):
                if event.get("event") == name and match(event.get("data", {})):
                    del self.events[index]
                    data: dict[str, Any] = event.get("data", {})
                    return data
            if time.monotonic() >= deadline:
                return None
            line = self._line(min(deadline, time.monotonic() + 1.0))
            if line is not None:
                self._take(json.loads(line), "")

    def _reply(self, deadline: float, key: str) -> Any:
        while True:
            line = self._line(deadline)
            if line is None:
                raise QmpError(f"QMP on {self.path.name}: no answer in time")
            found, value = self._take(json.loads(line), key)
            if found:
                return value

    def _take(self, message: dict[str, Any], key: str) -> tuple[bool, Any]:
        if "event" in message:
            self.events.append(message)
            return False, None
        if "error" in message:
            error = message["error"]
            raise QmpError(f"{error.get('class')}: {error.get('desc')}")
        if key and key in message:
            return True, message[key]
        return False, None

    def _line(self, deadline: float) -> bytes | None:
        """One line from the socket, or None when ``deadline`` passes first."""
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                return None
            if not chunk:
                raise QmpError("connection closed")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line


# -- the mixin -------------------------------------------------------------------------------


class QemuVolumes:
    """``VolumeDriver`` for ``QemuDriver``; see the module docstring for the design."""

    if TYPE_CHECKING:

        def _run_dir(self, name: str) -> RunDir: ...

        def _vm_lock(self, name: str) -> contextlib.AbstractContextManager[None]: ...

    # -- volume files ----------------------------------------------------------------------

    def create_volume(
        self, volume_id: str, path: str, size_bytes: int, fmt: str, source_url: str | None
    ) -> int:
        """A blank qcow2, or one filled from ``source_url`` (a snapshot export or an upload);
        ``fmt`` is the server's label: every volume file on a QEMU host is qcow2."""
        del volume_id, fmt
        final = Path(path)
        if final.is_file():  # a resent create: the volume is there already
            return qcow2.virtual_size(final)
        if not source_url:
            qcow2.ensure_blank(final, size_bytes)
            return qcow2.virtual_size(final)
        final.parent.mkdir(parents=True, exist_ok=True)
        with staged(final, (".raw",)) as tmp:
            _fetch_image(source_url, tmp)
            if size_bytes > qcow2.virtual_size(tmp):
                qcow2.qemu_img("resize", "-q", "-f", "qcow2", str(tmp), str(_sectors(size_bytes)))
        return qcow2.virtual_size(final)

    def delete_volume(self, path: str) -> None:
        Path(path).unlink(missing_ok=True)

    def migrate_volume(self, path: str, target_path: str) -> str:
        """Copy (flattened, so the target needs nothing from the source pool), then remove."""
        source, target = Path(path), Path(target_path)
        if not source.exists():
            if target.is_file():
                return target_path  # a resent migrate that already moved it
            raise DriverError(f"volume {path} does not exist on primary storage")
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            with staged(target, (".raw",)) as tmp:
                tmp.unlink(missing_ok=True)
                qcow2.qemu_img("convert", "-q", "-O", "qcow2", str(source), str(tmp))
        source.unlink()
        return target_path

    # -- hot-plug --------------------------------------------------------------------------

    def attach_disk(self, vm_name: str, disk: DiskSpec) -> None:
        run = self._run_dir(vm_name)
        with self._vm_lock(vm_name):
            _require_running(run, vm_name)
            if not Path(disk.path).is_file():
                raise DriverError(f"volume {disk.path} does not exist on primary storage")
            try:
                if _block_of(run, disk.path) is None:
                    _hot_plug(run, disk)
            except QmpError as exc:
                raise DriverError(f"cannot attach {disk.volume_id} to {vm_name}: {exc}") from exc
            _remember(run, disk.volume_id, disk)

    def detach_disk(self, vm_name: str, volume_id: str, path: str) -> None:
        run = self._run_dir(vm_name)
        with self._vm_lock(vm_name):
            if _live(run):
                try:
                    _hot_unplug(run, volume_id, path)
                except QmpError as exc:
                    raise DriverError(f"cannot detach {volume_id} from {vm_name}: {exc}") from exc
            if run.spec.is_file():
                _remember(run, volume_id, None)

    def resize_volume(
        self, path: str, current_bytes: int, new_bytes: int, shrink_ok: bool, vm_name: str | None
    ) -> int:
        """Online through ``block_resize`` when the VM runs with the disk; else qemu-img."""
        del current_bytes
        file = Path(path)
        if not file.is_file():
            raise DriverError(f"volume {path} does not exist on primary storage")
        size = _sectors(new_bytes)
        if size < _size_of(file) and not shrink_ok:
            raise DriverError(f"shrinking volume {path} needs shrinkok")
        if vm_name:
            run = self._run_dir(vm_name)
            with self._vm_lock(vm_name):
                block = _block_of(run, path) if _live(run) else None
                if block is not None:
                    node = block["inserted"]["node-name"]
                    try:
                        qmp(run.qmp, "block_resize", {"node-name": node, "size": size})
                    except QmpError as exc:
                        raise DriverError(f"online resize of {path} failed: {exc}") from exc
                    return size
        args = ["resize", "-q", "-f", "qcow2", *(("--shrink",) if shrink_ok else ()), path]
        qcow2.qemu_img(*args, str(size))
        return qcow2.virtual_size(file)

    # -- exports ---------------------------------------------------------------------------

    def backup_snapshot(
        self, snapshot_id: str, path: str, store_url: str, install_path: str, vm_name: str | None
    ) -> dict[str, int | str]:
        target = store_file(store_url, install_path)
        if target.is_file():  # a resent export that already completed
            return describe(target)
        source = Path(path)
        if not source.is_file():
            raise DriverError(f"volume {path} does not exist on primary storage")
        target.parent.mkdir(parents=True, exist_ok=True)
        for stale in parts_of(target):  # an earlier attempt that died
            stale.unlink(missing_ok=True)
        run = self._run_dir(vm_name) if vm_name else None
        block = _block_of(run, path) if run is not None and _live(run) else None
        with staged(target, (".raw",)) as tmp:
            if run is not None and block is not None:
                try:
                    _live_backup(run, snapshot_id, path, tmp)
                except QmpError as exc:
                    raise DriverError(f"snapshot of {path} failed: {exc}") from exc
            else:
                tmp.unlink(missing_ok=True)
                qcow2.qemu_img("convert", "-q", "-O", "qcow2", str(source), str(tmp))
            info = describe(tmp)  # fsyncs it meanwhile: the rename then finds it clean
        return info

    def revert_snapshot(self, path: str, source_url: str) -> int:
        """The VM is stopped (the server checks): the file is replaced by the export."""
        final = Path(path)
        if not final.is_file():
            raise DriverError(f"volume {path} does not exist on primary storage")
        with staged(final, (".raw",)) as tmp:
            _fetch_image(source_url, tmp)
        return qcow2.virtual_size(final)

    def export_template(
        self,
        template_id: str,
        store_url: str,
        install_path: str,
        path: str | None,
        source_url: str | None,
    ) -> dict[str, int | str]:
        del template_id
        target = store_file(store_url, install_path)
        if target.is_file():
            return describe(target)
        if not source_url and not path:
            raise DriverError("a template needs a volume or a snapshot to copy")
        target.parent.mkdir(parents=True, exist_ok=True)
        with staged(target, (".raw",)) as tmp:
            if source_url:
                _fetch_image(source_url, tmp)
            else:
                assert path is not None
                if not Path(path).is_file():
                    raise DriverError(f"volume {path} does not exist on primary storage")
                tmp.unlink(missing_ok=True)
                qcow2.qemu_img("convert", "-q", "-O", "qcow2", path, str(tmp))
            info = describe(tmp)
        return info


# -- QMP pieces ------------------------------------------------------------------------------


def _live(run: RunDir) -> bool:
    return live_pid(run) is not None


def _require_running(run: RunDir, vm_name: str) -> None:
    if not _live(run):
        raise DriverError(f"VM {vm_name} is not running on this host")


def _same_file(a: str, b: str) -> bool:
    with contextlib.suppress(OSError):
        return os.path.samefile(a, b)
    return os.path.abspath(a) == os.path.abspath(b)


def _block_of(run: RunDir, path: str) -> dict[str, Any] | None:
    """The VM's block backend (device) whose top image is ``path``; None when not attached."""
    try:
        blocks = qmp(run.qmp, "query-block")
    except QmpError as exc:
        raise DriverError(f"the VM's monitor does not answer: {exc}") from exc
    for block in blocks:
        inserted = block.get("inserted")
        if inserted and _same_file(str(inserted.get("file", "")), path):
            found: dict[str, Any] = block
            return found
    return None


def _node_names(session: QmpSession) -> set[str]:
    return {
        str(n.get("node-name")) for n in session.execute("query-named-block-nodes", {"flat": True})
    }


def _hot_plug(run: RunDir, disk: DiskSpec) -> None:
    node, dev = node_name(disk.volume_id), device_id(disk.volume_id)
    with QmpSession(run.qmp) as session:
        if node not in _node_names(session):  # absent unless a crash came in between
            session.execute(
                "blockdev-add",
                {
                    "driver": "qcow2",
                    "node-name": node,
                    "discard": "unmap",
                    "file": {"driver": "file", "filename": disk.path},
                },
            )
        try:
            session.execute(
                "device_add",
                {"driver": "virtio-blk-pci", "id": dev, "drive": node,
                 "serial": disk_serial(disk.volume_id)},
            )  # fmt: skip
        except QmpError:
            with contextlib.suppress(QmpError):
                session.execute("blockdev-del", {"node-name": node})
            raise


def _device_path(block: dict[str, Any]) -> str:
    """The virtio-blk-pci device of a block backend (its qdev is the virtio backend child)."""
    qdev = str(block.get("qdev", ""))
    return qdev.removesuffix("/virtio-backend")


def _hot_unplug(run: RunDir, volume_id: str, path: str) -> None:
    block = _block_of(run, path)
    node = node_name(volume_id)
    with QmpSession(run.qmp) as session:
        if block is not None:
            device = _device_path(block)
            if not device:
                raise DriverError(f"disk {path} has no device to unplug")
            session.execute("device_del", {"id": device})
            deadline = time.monotonic() + UNPLUG_TIMEOUT_S
            while time.monotonic() < deadline:
                seen = session.wait_event("DEVICE_DELETED", lambda d: d.get("path") == device, 1.0)
                if seen is not None or not _still_plugged(session, path):
                    break
            else:
                raise DriverTimeout(
                    f"the guest did not release disk {volume_id} in {UNPLUG_TIMEOUT_S:.0f} s"
                )
        if node in _node_names(session):
            session.execute("blockdev-del", {"node-name": node})


def _still_plugged(session: QmpSession, path: str) -> bool:
    for block in session.execute("query-block"):
        inserted = block.get("inserted")
        if inserted and _same_file(str(inserted.get("file", "")), path):
            return True
    return False


def _live_backup(run: RunDir, snapshot_id: str, path: str, tmp: Path) -> None:
    """blockdev-backup sync=full of the running disk into ``tmp`` (a fresh qcow2)."""
    ident = _hex(snapshot_id)[:24]
    job, target = f"{_JOB_PREFIX}{ident}", f"{_TARGET_PREFIX}{ident}"
    with _active_guard:
        if job in _active_jobs:
            raise DriverError(f"snapshot {snapshot_id} is being exported already")
        _active_jobs.add(job)
    try:
        _sweep(run)  # what an export whose agent died left running or concluded
        # Asked after the sweep: a running backup puts its filter node on top of the disk.
        block = _block_of(run, path)
        if block is None:
            raise DriverError(f"volume {path} was detached during the snapshot")
        inserted = block["inserted"]
        size = int(inserted.get("image", {}).get("virtual-size", 0))
        tmp.unlink(missing_ok=True)
        qcow2.qemu_img("create", "-q", "-f", "qcow2", str(tmp), str(size))
        with QmpSession(run.qmp) as session:
            session.execute(
                "blockdev-add",
                {"driver": "qcow2", "node-name": target,
                 "file": {"driver": "file", "filename": str(tmp)}},
            )  # fmt: skip
            with quiesced(run.qga):  # the point in time is the job's start: thaw right after
                session.execute(
                    "blockdev-backup",
                    {"job-id": job, "device": inserted["node-name"], "target": target,
                     "sync": "full", "auto-dismiss": False},
                )  # fmt: skip
        _wait_job(run, job)
    finally:
        with _active_guard:
            _active_jobs.discard(job)
        _sweep(run)


def _cancel(run: RunDir, job: str, timeout_s: float = 30.0) -> None:
    """Cancel ``job`` if the VM still runs it, and wait until it is gone."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = [j for j in qmp(run.qmp, "query-jobs") if j.get("id") == job]
        if not found:
            return
        status = found[0].get("status")
        if status == "concluded":
            qmp(run.qmp, "job-dismiss", {"id": job})
            return
        if status not in ("aborting", "undefined"):
            with contextlib.suppress(QmpError):
                qmp(run.qmp, "job-cancel", {"id": job})
        if time.monotonic() >= deadline:
            raise DriverTimeout(f"an earlier copy ({job}) could not be cancelled")
        time.sleep(0.1)


def _wait_job(run: RunDir, job: str) -> None:
    """Poll (short connections, so status calls still get the monitor) until it concludes."""
    deadline = time.monotonic() + EXPORT_TIMEOUT_S
    delay = 0.05
    while True:
        found = [j for j in qmp(run.qmp, "query-jobs") if j.get("id") == job]
        if not found:
            raise DriverError(f"snapshot job {job} vanished from the VM")
        state = found[0]
        if state.get("status") == "concluded":
            with contextlib.suppress(QmpError):
                qmp(run.qmp, "job-dismiss", {"id": job})
            if state.get("error"):
                raise DriverError(f"snapshot copy failed: {state['error']}")
            return
        if time.monotonic() >= deadline:
            with contextlib.suppress(QmpError):
                qmp(run.qmp, "job-cancel", {"id": job})
            raise DriverTimeout(f"snapshot copy did not finish in {EXPORT_TIMEOUT_S:.0f} s")
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


def _sweep(run: RunDir) -> None:
    """End what crashed exports left in the VM: jobs no live export of this agent owns
    (cancelled, then dismissed) and their target nodes. Best effort: the VM may stop."""
    try:
        with _active_guard:
            active = set(_active_jobs)
        orphans = [
            str(j.get("id", ""))
            for j in qmp(run.qmp, "query-jobs")
            if str(j.get("id", "")).startswith(_JOB_PREFIX) and j.get("id") not in active
        ]
        for job in orphans:
            _cancel(run, job)
        for node in qmp(run.qmp, "query-named-block-nodes", {"flat": True}):
            name = str(node.get("node-name", ""))
            owner = _JOB_PREFIX + name[len(_TARGET_PREFIX) :]
            if (
                name.startswith(_TARGET_PREFIX)
                and owner not in active
                and node.get("drv") == "qcow2"
            ):
                qmp(run.qmp, "blockdev-del", {"node-name": name})
    except (QmpError, DriverError):
        pass


# -- the guest agent: quiesce when one answers --------------------------------------------


GA_SYNC_TIMEOUT_S = 1.0
GA_FREEZE_TIMEOUT_S = 10.0


@contextlib.contextmanager
def quiesced(qga: Path) -> Iterator[bool]:
    """Freeze the guest's file systems (qemu-guest-agent ``guest-fsfreeze-freeze``) for the
    duration, when an agent answers a ``guest-sync-delimited`` within a second; else the
    snapshot is crash-consistent only (yields False). Thawed on the way out, always.

    The sync comes first so that nothing but a sync ever waits in the channel of a guest
    whose agent is not running: a late-starting agent must never find a stale freeze.
    """
    sock = _ga_connect(qga)
    try:
        frozen = False
        if sock is not None:
            frozen = _ga_call(sock, "guest-fsfreeze-freeze", GA_FREEZE_TIMEOUT_S) is not None
        yield frozen
    finally:
        if sock is not None:  # thaw even when the freeze's answer was lost
            _ga_call(sock, "guest-fsfreeze-thaw", GA_FREEZE_TIMEOUT_S)
            sock.close()


def _ga_connect(qga: Path) -> socket.socket | None:
    """A connection to the guest agent that answered a sync, or None."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(GA_SYNC_TIMEOUT_S)
        sock.connect(str(qga))
        token = int.from_bytes(os.urandom(4), "big") & 0x7FFFFFFF
        # 0xFF resets the agent's parser; the reply starts with 0xFF too (QGA protocol).
        sock.sendall(b"\xff" + json.dumps(
            {"execute": "guest-sync-delimited", "arguments": {"id": token}}
        ).encode() + b"\n")  # fmt: skip
        data = b""
        deadline = time.monotonic() + GA_SYNC_TIMEOUT_S
        while time.monotonic() < deadline:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
            line = data.rsplit(b"\xff", 1)[-1]
            if b"\n" in line and json.loads(line.split(b"\n")[0]).get("return") == token:
                return sock
    except (OSError, ValueError):
        pass
    sock.close()
    return None


def _ga_call(sock: socket.socket, command: str, timeout: float) -> Any:
    """One guest agent command on a synced connection; None when it fails or times out."""
    try:
        sock.settimeout(timeout)
        sock.sendall(json.dumps({"execute": command}).encode() + b"\n")
        data = b""
        while b"\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                return None
            data += chunk
        reply = json.loads(data.split(b"\n")[0])
    except (OSError, ValueError):
        return None
    return reply.get("return") if isinstance(reply, dict) else None


# -- the VM's recorded spec --------------------------------------------------------------


def _remember(run: RunDir, volume_id: str, disk: DiskSpec | None) -> None:
    """Record (or forget) the disk in ``vm.json`` so the VM's definition includes it."""

    try:
        recorded = json.loads(run.spec.read_text())
    except (OSError, ValueError):
        return
    spec = recorded.get("spec", {})
    disks = [d for d in spec.get("disks", []) if d.get("volume_id") != volume_id]
    if disk is not None:
        disks.append(to_wire(disk))
    spec["disks"] = sorted(disks, key=lambda d: int(d.get("device_id", 0)))
    recorded["spec"] = spec
    write_json(run.spec, recorded)


# -- files -----------------------------------------------------------------------------------


def _sectors(size: int) -> int:
    """qcow2 sizes are whole 512-byte sectors: round up."""
    return (size + 511) // 512 * 512


def _size_of(path: Path) -> int:
    return qcow2.virtual_size(path)


def describe(path: Path) -> dict[str, int | str]:
    """What the server records of an export: virtual size, bytes on the store, sha256.

    The file is fsynced in a second thread while it is hashed: on a fresh export both take
    about as long as the copy itself, and the one waits on the disk, the other on the CPU.
    """
    syncer = threading.Thread(target=fsync_path, args=(path,), name="export-fsync")
    syncer.start()
    try:
        with path.open("rb") as fh:
            digest = hashlib.file_digest(fh, "sha256")
    finally:
        syncer.join()
    return {
        "size": qcow2.virtual_size(path),
        "physical_size": path.stat().st_size,
        "checksum": digest.hexdigest(),
    }


def _fetch_image(url: str, dest: Path) -> None:
    """Download ``url`` (file, http or https: the server's signed links) into ``dest`` as a
    self-contained qcow2; a raw image is converted, a qcow2 naming a backing file refused."""
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("http", "https", "file"):
        raise DriverError(f"unsupported URL scheme in {url!r}")
    raw = dest.with_name(dest.name + ".raw")
    try:
        with urllib.request.urlopen(url, timeout=60) as src, raw.open("wb") as out:
            while chunk := src.read(1 << 20):
                out.write(chunk)
    except (urllib.error.URLError, OSError) as exc:
        raise DriverError(f"cannot download {url}: {exc}") from exc
    if qcow2.is_qcow2(raw):
        info = json.loads(qcow2.qemu_img("info", "--output=json", str(raw)))
        if info.get("backing-filename") or info.get("full-backing-filename"):
            raise DriverError("image refused: a qcow2 volume image must not have a backing file")
        os.replace(raw, dest)
    else:
        qcow2.qemu_img("convert", "-q", "-f", "raw", "-O", "qcow2", str(raw), str(dest))
        raw.unlink(missing_ok=True)
