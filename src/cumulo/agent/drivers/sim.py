"""The simulator hypervisor: VMs that exist only in memory, fast enough for 10,000 hosts.

A ``SimDriver`` is one simulated host. It keeps its VMs' power states and invents stable
statistics, so orchestration, metering and the scale benchmark run without QEMU. It has no
faults of its own: latency and failures are injected around it (``SimTransport``) by the
rules an admin sets with configureSimulator, exactly where a real host would be slow or fail.
The same driver also runs inside ``cumulo agent --driver sim`` to test the agent protocol.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import struct
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar
from urllib.parse import unquote, urlparse

from cumulo.agent.drivers.base import DriverError
from cumulo.agentrpc.messages import (
    DiskSpec,
    HostInfo,
    NicStats,
    PowerState,
    VmSpec,
    VmStats,
    VmStatus,
)


@dataclass
class SimDisk:
    """A simulated volume file: its size and a little content that snapshots carry along."""

    size: int
    content: bytes = b""


def _local(url: str, install_path: str = "") -> Path:
    """The file a ``file://`` store URL (plus a relative path) names; other schemes refused."""
    parsed = urlparse(url)
    if parsed.scheme != "file" or not parsed.path:
        raise DriverError(f"the simulator can only reach file:// stores, not {url}")
    root = Path(unquote(parsed.path))
    full = (root / install_path).resolve() if install_path else root.resolve()
    if install_path and not full.is_relative_to(root.resolve()):
        raise DriverError(f"path {install_path!r} leaves the store")
    return full


def _write_whole(target: Path, data: bytes) -> None:
    """Temp file beside the target, fsync, rename, fsync the directory: never a partial file
    at the final name, even if the host dies in the middle (the temp name starts with a dot
    and ends in .part so a cleanup can find it)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _export(disk: SimDisk, what: str, ident: str) -> bytes:
    header = json.dumps({"sim": what, "id": ident, "size": disk.size}).encode()
    return header + b"\n" + disk.content


def _import(data: bytes, size: int = 0) -> SimDisk:
    """A simulator export back into a disk; any other image (an upload) keeps its first bytes
    as content and takes the size the server asked for."""
    header, _, content = data.partition(b"\n")
    try:
        found = json.loads(header)
        return SimDisk(int(found["size"]), content)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        if not size:
            raise DriverError("the source is not a simulator export") from None
        return SimDisk(size, data[:64])


class SimDriver:
    # Primary storage is shared in the simulator: every simulated host in a process sees the
    # same pools, as the hosts of a cluster see their cluster's NFS or Ceph pool.
    _disks: ClassVar[dict[str, SimDisk]] = {}
    _disk_lock: ClassVar[threading.Lock] = threading.Lock()
    # VM snapshots, as qcow2 keeps them inside each disk: disk path -> tag -> the disk then.
    _vm_snaps: ClassVar[dict[str, dict[str, SimDisk]]] = {}

    def __init__(
        self, hostname: str, *, cpus: int = 8, cpu_mhz: int = 2400, memory_bytes: int = 16 << 30
    ) -> None:
        self._info = HostInfo(
            hostname=hostname,
            cpus=cpus,
            cpu_mhz=cpu_mhz,
            memory_bytes=memory_bytes,
            hypervisor="Simulator",
            hypervisor_version="simulator",
        )
        self._vms: dict[str, VmSpec] = {}
        self._power: dict[str, PowerState] = {}
        self._started: dict[str, float] = {}
        self._templates: dict[str, str] = {}
        self._plugged: dict[str, dict[str, int]] = {}  # vm name -> volume id -> device id
        self._memory_snaps: dict[str, dict[str, float]] = {}  # vm -> tag -> start time then
        self._isos: dict[str, str] = {}  # vm name -> the ISO in its CD-ROM drive
        self._lock = threading.Lock()

    def host_info(self) -> HostInfo:
        return self._info

    def start(self, spec: VmSpec) -> VmStatus:
        with self._disk_lock:  # a root disk comes into being at first start
            for disk in spec.disks:
                self._disks.setdefault(disk.path, SimDisk(disk.size_bytes, disk.volume_id.encode()))
        with self._lock:
            self._vms[spec.name] = spec
            if self._power.get(spec.name) != PowerState.RUNNING:
                self._plugged[spec.name] = {
                    d.volume_id: d.device_id for d in spec.disks if d.kind == "DATADISK"
                }
                self._power[spec.name] = PowerState.RUNNING
                self._started[spec.name] = time.monotonic()
            return VmStatus(spec.name, PowerState.RUNNING)

    def stop(self, name: str, *, forced: bool = False, timeout_s: float = 60.0) -> VmStatus:
        del forced, timeout_s
        with self._lock:
            if name in self._vms:
                self._power[name] = PowerState.STOPPED
                self._started.pop(name, None)
            return VmStatus(name, self._power.get(name, PowerState.MISSING))

    def reboot(self, name: str) -> VmStatus:
        with self._lock:
            if self._power.get(name) != PowerState.RUNNING:
                raise DriverError(f"VM {name} is not running on {self._info.hostname}")
            self._started[name] = time.monotonic()
            return VmStatus(name, PowerState.RUNNING)

    def destroy(self, name: str, disk_paths: tuple[str, ...] = ()) -> None:
        with self._disk_lock:
            for path in disk_paths:
                self._disks.pop(path, None)
                self._vm_snaps.pop(path, None)
        with self._lock:
            self._plugged.pop(name, None)
            self._memory_snaps.pop(name, None)
            self._vms.pop(name, None)
            self._power.pop(name, None)
            self._started.pop(name, None)

    def status(self, name: str) -> VmStatus:
        with self._lock:
            return VmStatus(name, self._power.get(name, PowerState.MISSING))

    def list_vms(self) -> list[VmStatus]:
        with self._lock:
            return [VmStatus(name, power) for name, power in sorted(self._power.items())]

    def stats(self, names: tuple[str, ...] = ()) -> list[VmStats]:
        """Counters that grow with uptime at a per-VM rate derived from its name."""
        now = time.monotonic()
        with self._lock:
            wanted = names or tuple(n for n, p in self._power.items() if p == PowerState.RUNNING)
            out = []
            for name in wanted:
                spec = self._vms.get(name)
                if spec is None:
                    continue
                up = now - self._started.get(name, now)
                rate = 1 + zlib.crc32(name.encode()) % 50
                rx, tx = int(up * rate * 1500), int(up * rate * 900)
                share = max(len(spec.nics), 1)  # the traffic split evenly over the NICs
                nics = tuple(NicStats(n.nic_id, rx // share, tx // share) for n in spec.nics)
                out.append(
                    VmStats(
                        name=name,
                        cpu_time_ns=int(up * rate * 1e7),
                        memory_kib=spec.memory_mib * 1024,
                        disk_read_bytes=int(up * rate * 4096),
                        disk_write_bytes=int(up * rate * 2048),
                        disk_read_ops=int(up * rate),
                        disk_write_ops=int(up * rate / 2),
                        net_rx_bytes=sum(n.rx_bytes for n in nics) if nics else rx,
                        net_tx_bytes=sum(n.tx_bytes for n in nics) if nics else tx,
                        nics=nics,
                    )
                )
            return out

    def open_console(self, name: str) -> socket.socket:
        """One end of a socket pair whose other end is a tiny RFB server (``_fake_rfb``)."""
        with self._lock:
            if self._power.get(name) != PowerState.RUNNING:
                raise DriverError(f"VM {name} is not running on {self._info.hostname}")
        ours, theirs = socket.socketpair()
        threading.Thread(target=_fake_rfb, args=(theirs, name), daemon=True).start()
        return ours

    def prepare_template(
        self, template_id: str, source_url: str, checksum: str, pool_path: str
    ) -> str:
        del source_url, checksum
        with self._lock:
            path = f"{pool_path.rstrip('/')}/{template_id}.qcow2"
            self._templates[template_id] = path
            return path

    # --- block storage (VolumeDriver) ---------------------------------------------------

    def create_volume(
        self, volume_id: str, path: str, size_bytes: int, fmt: str, source_url: str | None
    ) -> int:
        del fmt
        disk = SimDisk(size_bytes, f"volume {volume_id}".encode())
        if source_url:
            try:
                disk = _import(_local(source_url).read_bytes(), size_bytes)
            except OSError as err:
                raise DriverError(f"cannot read {source_url}: {err.strerror}") from None
            disk.size = max(disk.size, size_bytes)
        with self._disk_lock:
            existing = self._disks.get(path)
            if existing is not None:
                return existing.size  # a resent create: the volume is there already
            self._disks[path] = disk
            return disk.size

    def _disk(self, path: str) -> SimDisk:
        found = self._disks.get(path)
        if found is None:
            raise DriverError(f"volume {path} does not exist on primary storage")
        return found

    def attach_disk(self, vm_name: str, disk: DiskSpec) -> None:
        with self._disk_lock:
            self._disk(disk.path)
        with self._lock:
            if self._power.get(vm_name) != PowerState.RUNNING:
                raise DriverError(f"VM {vm_name} is not running on {self._info.hostname}")
            plugged = self._plugged.setdefault(vm_name, {})
            taken = {d for v, d in plugged.items() if v != disk.volume_id}
            if disk.device_id in taken:
                raise DriverError(f"device {disk.device_id} of VM {vm_name} is in use")
            plugged[disk.volume_id] = disk.device_id

    def detach_disk(self, vm_name: str, volume_id: str, path: str) -> None:
        del path
        with self._lock:
            self._plugged.get(vm_name, {}).pop(volume_id, None)

    def resize_volume(
        self, path: str, current_bytes: int, new_bytes: int, shrink_ok: bool, vm_name: str | None
    ) -> int:
        del current_bytes, vm_name
        with self._disk_lock:
            disk = self._disk(path)
            if new_bytes < disk.size and not shrink_ok:
                raise DriverError(f"shrinking {path} needs shrinkok")
            disk.size = new_bytes
            return disk.size

    def delete_volume(self, path: str) -> None:
        with self._disk_lock:
            self._disks.pop(path, None)

    def migrate_volume(self, path: str, target_path: str) -> str:
        with self._disk_lock:
            disk = self._disks.get(path)
            if disk is None:
                if target_path in self._disks:
                    return target_path  # a resent migrate that already moved it
                raise DriverError(f"volume {path} does not exist on primary storage")
            self._disks[target_path] = SimDisk(disk.size, disk.content)
            del self._disks[path]
            return target_path

    def _write_export(self, data: bytes, store_url: str, install_path: str) -> dict[str, int | str]:
        _write_whole(_local(store_url, install_path), data)
        return {"physical_size": len(data), "checksum": hashlib.sha256(data).hexdigest()}

    def backup_snapshot(
        self, snapshot_id: str, path: str, store_url: str, install_path: str, vm_name: str | None
    ) -> dict[str, int | str]:
        del vm_name
        with self._disk_lock:
            disk = self._disk(path)
            data = _export(disk, "snapshot", snapshot_id)
            size = disk.size
        return {"size": size, **self._write_export(data, store_url, install_path)}

    def revert_snapshot(self, path: str, source_url: str) -> int:
        try:
            restored = _import(_local(source_url).read_bytes())
        except OSError as err:
            raise DriverError(f"cannot read {source_url}: {err.strerror}") from None
        with self._disk_lock:
            self._disk(path)
            self._disks[path] = restored
            return restored.size

    def create_vm_snapshot(
        self, vm_name: str | None, tag: str, disk_paths: tuple[str, ...], memory: bool
    ) -> None:
        with self._lock:
            running = vm_name is not None and self._power.get(vm_name) == PowerState.RUNNING
            if memory and (vm_name is None or not running):
                raise DriverError("a memory snapshot needs the VM running on this host")
            if memory and vm_name is not None:
                started = self._started.get(vm_name, time.monotonic())
                self._memory_snaps.setdefault(vm_name, {})[tag] = started
        with self._disk_lock:
            taken = {path: self._disk(path) for path in disk_paths}
            for path, disk in taken.items():
                self._vm_snaps.setdefault(path, {})[tag] = SimDisk(disk.size, disk.content)

    def revert_vm_snapshot(
        self, vm_name: str | None, tag: str, disk_paths: tuple[str, ...], memory: bool
    ) -> None:
        with self._disk_lock:
            missing = [p for p in disk_paths if tag not in self._vm_snaps.get(p, {})]
            if missing:
                raise DriverError(f"VM snapshot {tag} is not on disk {missing[0]}")
            for path in disk_paths:
                kept = self._vm_snaps[path][tag]
                self._disks[path] = SimDisk(kept.size, kept.content)
        if not memory or vm_name is None:
            return
        with self._lock:
            started = self._memory_snaps.get(vm_name, {}).get(tag)
            if started is None:
                raise DriverError(f"VM snapshot {tag} of {vm_name} has no memory state")
            if self._power.get(vm_name) == PowerState.RUNNING:
                self._started[vm_name] = started

    def delete_vm_snapshot(
        self, vm_name: str | None, tag: str, disk_paths: tuple[str, ...]
    ) -> None:
        with self._disk_lock:
            for path in disk_paths:
                self._vm_snaps.get(path, {}).pop(tag, None)
        if vm_name is not None:
            with self._lock:
                self._memory_snaps.get(vm_name, {}).pop(tag, None)

    def change_iso(self, vm_name: str, path: str | None) -> None:
        with self._lock:
            if self._power.get(vm_name) != PowerState.RUNNING:
                raise DriverError(f"VM {vm_name} is not running on {self._info.hostname}")
            if path is None:
                self._isos.pop(vm_name, None)
            else:
                self._isos[vm_name] = path

    def vm_snapshot_tags(self, path: str) -> list[str]:
        """The tags on a simulated disk (tests check deletes and reverts through this)."""
        with self._disk_lock:
            return sorted(self._vm_snaps.get(path, {}))

    def export_template(
        self,
        template_id: str,
        store_url: str,
        install_path: str,
        path: str | None,
        source_url: str | None,
    ) -> dict[str, int | str]:
        if source_url:
            try:
                disk = _import(_local(source_url).read_bytes())
            except OSError as err:
                raise DriverError(f"cannot read {source_url}: {err.strerror}") from None
        elif path:
            with self._disk_lock:
                disk = self._disk(path)
        else:
            raise DriverError("a template needs a volume or a snapshot to copy")
        data = _export(disk, "template", template_id)
        return {"size": disk.size, **self._write_export(data, store_url, install_path)}


# A 640x480 true-colour frame buffer's pixel format (RFB 7.4): 32 bpp, depth 24, little
# endian, true colour, max 255 per channel, shifts 16/8/0, three bytes of padding.
_PIXEL_FORMAT = struct.pack(">BBBBHHHBBB3x", 32, 24, 0, 1, 255, 255, 255, 16, 8, 0)


def _fake_rfb(sock: socket.socket, title: str) -> None:
    """Just enough of an RFB 3.8 server (RFC 6143 §7.1-7.3) for a viewer to connect: the
    version greeting, security type None, then ServerInit; later input is read and dropped.
    A simulated VM has no screen, but the console path is exercised end to end."""
    name = title.encode()
    try:
        with sock:
            sock.sendall(b"RFB 003.008\n")
            if len(_read(sock, 12)) < 12:
                return
            sock.sendall(b"\x01\x01")  # one security type: None
            if not _read(sock, 1):
                return
            sock.sendall(struct.pack(">I", 0))  # SecurityResult OK
            if not _read(sock, 1):  # ClientInit (shared flag)
                return
            sock.sendall(struct.pack(">HH", 640, 480) + _PIXEL_FORMAT)
            sock.sendall(struct.pack(">I", len(name)) + name)
            while sock.recv(65536):
                pass
    except OSError:
        pass  # the viewer went away


def _read(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data
