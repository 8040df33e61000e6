"""The QEMU hypervisor driver: QEMU processes driven directly over QMP.

Each VM has a run directory ``<state_dir>/vms/<name>/`` holding everything needed to find it
again: ``vm.json`` (the spec it was started with and its taps), ``qemu.pid``, the QMP socket
``qmp.sock``, the serial console log ``serial.log``, the VNC socket ``vnc.sock`` and the guest
agent's channel ``qga.sock``. QEMU is
started with ``-daemonize`` (its own session, re-parented away from the agent) and ``-S``,
then let go with QMP ``cont``; so killing or restarting the agent never stops a VM, and a new
driver re-adopts every VM whose pid is alive and whose command line names its QMP socket.

The recipes (machine ``pc``, ``tcg,tb-size=32``, taps on bridges, the KVM probe boot) are the
measured ones in ``shared/reference/compute-probe.md`` §4, §6 and §9.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cumulo.agent.drivers.base import DriverError, DriverTimeout
from cumulo.agent.drivers.qemu_rundir import RunDir, live_pid, opt, pid_alive, write_json
from cumulo.agent.drivers.qemu_vmsnapshots import QemuVmSnapshots
from cumulo.agent.drivers.qemu_volumes import QemuVolumes, disk_serial
from cumulo.agent.drivers.qmp import QmpError, qmp
from cumulo.agent.network import sg_nft
from cumulo.agent.storage import qcow2, templates
from cumulo.agentrpc.messages import (
    DiskSpec,
    HostInfo,
    NicSpec,
    NicStats,
    PowerState,
    VmSpec,
    VmStats,
    VmStatus,
    to_wire,
)

QEMU = "qemu-system-x86_64"
READY_MARKER = b"GUEST-READY"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_MAC = re.compile(r"^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$")
_HOSTNAME = re.compile(r"[^A-Za-z0-9.-]")
_SOCKET_PATH_MAX = 107  # sun_path is 108 bytes including the NUL


class QemuDriver(QemuVolumes, QemuVmSnapshots):
    """One hypervisor host. Thread-safe: calls on one VM are serialized, others run freely.

    ``netns`` runs QEMU and the tap commands inside that network namespace (a test host, or a
    host whose guest bridges live in a namespace). ``accelerator`` skips the probe when given;
    ``probe_boot`` is the tiny guest's direct-boot details (``TinyImage.direct_boot``); by
    default the tiny image built in the data dir beside the state dir
    (``<data_dir>/images/tiny``, as ``cumulo image build tiny`` writes it) is used.
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        pools: tuple[str, ...] = (),
        accelerator: str | None = None,
        probe_boot: dict[str, str] | None = None,
        netns: str | None = None,
        qemu_binary: str = QEMU,
        hostname: str | None = None,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.vms_dir = self.state_dir / "vms"
        # 0700: the run dirs hold each VM's console sockets, reachable by anyone who can
        # open them.
        self.vms_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.pools = pools
        self.netns = netns
        self.qemu_binary = qemu_binary
        self._accelerator = accelerator
        self._probe_boot = probe_boot or _built_probe_boot(self.state_dir.parent)
        self.hostname = hostname or socket.gethostname()
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    # -- the HypervisorDriver interface ---------------------------------------------------

    def host_info(self) -> HostInfo:
        return HostInfo(
            hostname=self.hostname,
            cpus=os.cpu_count() or 1,
            cpu_mhz=_cpu_mhz(),
            memory_bytes=_memory_bytes(),
            hypervisor="KVM",
            hypervisor_version=qemu_version(self.qemu_binary),
            accelerator=self.accelerator(),
            pools=self.pools,
        )

    def accelerator(self) -> str:
        if self._accelerator is None:
            self._accelerator = probe_accelerator(
                self.state_dir, self._probe_boot, qemu_binary=self.qemu_binary
            )
        return self._accelerator

    def start(self, spec: VmSpec) -> VmStatus:
        run = self._run_dir(spec.name)
        with self._vm_lock(spec.name):
            pid = live_pid(run)
            if pid is not None:
                return self._resume_if_prelaunch(spec.name, run)
            self._clear_runtime(run)
            run.root.mkdir(parents=True, exist_ok=True)
            taps = [tap_name(spec.name, nic.device_id) for nic in _sorted_nics(spec)]
            # Recorded before anything is made, so a crash mid-start leaks no tap.
            write_json(run.spec, {"spec": to_wire(spec), "taps": taps, "netns": self.netns})
            try:
                for disk in spec.disks:
                    _ensure_disk(disk)
                for nic, tap in zip(_sorted_nics(spec), taps, strict=True):
                    self._plug(nic, tap)
                self._spawn(self._argv(spec, run, taps), run)
                qmp(run.qmp, "cont")
            except (DriverError, QmpError) as exc:
                self._kill(run)
                self._clear_runtime(run)
                raise DriverError(f"VM {spec.name} did not start: {exc}") from exc
            return VmStatus(spec.name, PowerState.RUNNING)

    def stop(self, name: str, *, forced: bool = False, timeout_s: float = 60.0) -> VmStatus:
        run = self._run_dir(name)
        with self._vm_lock(name):
            if not run.spec.is_file():
                return VmStatus(name, PowerState.MISSING)
            pid = live_pid(run)
            if pid is not None and not forced:
                with contextlib.suppress(QmpError):
                    qmp(run.qmp, "system_powerdown")
                _wait_exit(pid, timeout_s)
            if pid is not None and pid_alive(pid):
                self._kill(run)
            self._clear_runtime(run)
            return VmStatus(name, PowerState.STOPPED)

    def reboot(self, name: str) -> VmStatus:
        run = self._run_dir(name)
        with self._vm_lock(name):
            if live_pid(run) is None:
                raise DriverError(f"VM {name} is not running on this host")
            try:
                qmp(run.qmp, "system_reset")
            except QmpError as exc:
                raise DriverError(f"VM {name} could not be rebooted: {exc}") from exc
            return VmStatus(name, PowerState.RUNNING)

    def destroy(self, name: str, disk_paths: tuple[str, ...] = ()) -> None:
        run = self._run_dir(name)
        with self._vm_lock(name):
            if live_pid(run) is not None:
                self._kill(run)
            self._clear_runtime(run)
            shutil.rmtree(run.root, ignore_errors=True)
            for path in disk_paths:
                with contextlib.suppress(FileNotFoundError):
                    Path(path).unlink()

    def status(self, name: str) -> VmStatus:
        run = self._run_dir(name)
        if not run.spec.is_file():  # written before QEMU starts: no spec, no VM
            return VmStatus(name, PowerState.MISSING)
        if live_pid(run) is None:
            self._tidy_dead(name, run)
            return VmStatus(name, PowerState.STOPPED)
        try:
            state = qmp(run.qmp, "query-status", timeout=2.0)
        except QmpError as exc:
            return VmStatus(name, PowerState.RUNNING, detail=f"QMP not answering: {exc}")
        if state.get("status") == "running":
            return VmStatus(name, PowerState.RUNNING)
        return VmStatus(name, PowerState.PAUSED, detail=str(state.get("status", "")))

    def list_vms(self) -> list[VmStatus]:
        names = sorted(p.name for p in self.vms_dir.iterdir() if (p / "vm.json").is_file())
        return [self.status(name) for name in names]

    def stats(self, names: tuple[str, ...] = ()) -> list[VmStats]:
        wanted = names or tuple(s.name for s in self.list_vms() if s.power != PowerState.STOPPED)
        result = []
        for name in wanted:
            run = self._run_dir(name)
            pid = live_pid(run)
            if pid is not None:
                result.append(self._stats_of(name, run, pid))
        return result

    def prepare_template(
        self, template_id: str, source_url: str, checksum: str, pool_path: str
    ) -> str:
        return templates.prepare_template(template_id, source_url, checksum, pool_path)

    # -- beyond the interface: pause and resume, the console socket ----------------------

    def pause(self, name: str) -> VmStatus:
        return self._qmp_power(name, "stop")

    def resume(self, name: str) -> VmStatus:
        return self._qmp_power(name, "cont")

    def vnc_socket(self, name: str) -> Path:
        """The VM's VNC server (a Unix socket) for the console proxy."""
        return self._run_dir(name).vnc

    def open_console(self, name: str) -> socket.socket:
        """A connection to the VM's VNC server; refused when QEMU is not running."""
        run = self._run_dir(name)
        if live_pid(run) is None:
            raise DriverError(f"VM {name} is not running on this host")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(run.vnc))
        except OSError as err:
            sock.close()
            raise DriverError(f"the console of VM {name} is not reachable: {err}") from None
        return sock

    def serial_log(self, name: str) -> Path:
        return self._run_dir(name).serial

    def change_iso(self, vm_name: str, path: str | None) -> None:
        """``blockdev-change-medium`` into the CD-ROM drive every VM gets, or ``eject``."""
        run = self._run_dir(vm_name)
        if live_pid(run) is None:
            raise DriverError(f"VM {vm_name} is not running on this host")
        if path is not None and not Path(path).is_file():
            raise DriverError(f"ISO {path} is not reachable from this host")
        try:
            if path is None:
                qmp(run.qmp, "eject", {"id": CDROM_ID, "force": True})
            else:
                args = {"id": CDROM_ID, "filename": path, "format": "raw"}
                qmp(run.qmp, "blockdev-change-medium", {**args, "read-only-mode": "read-only"})
        except QmpError as exc:
            raise DriverError(f"the CD-ROM of {vm_name}: {exc}") from exc

    # -- internals --------------------------------------------------------------------------

    def _run_dir(self, name: str) -> RunDir:
        if not _NAME.match(name):
            raise DriverError(f"invalid VM name {name!r}")
        run = RunDir(self.vms_dir / name)
        if len(str(run.qmp)) > _SOCKET_PATH_MAX:
            raise DriverError(f"state directory {self.state_dir} is too deep for unix sockets")
        return run

    @contextlib.contextmanager
    def _vm_lock(self, name: str) -> Iterator[None]:
        """A thread lock plus a file lock: two agents on one state dir never race either."""
        with self._locks_guard:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock, (self.vms_dir / f".{name}.lock").open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            yield

    def _resume_if_prelaunch(self, name: str, run: RunDir) -> VmStatus:
        """An agent that died between spawn and ``cont`` left QEMU waiting: let it run."""
        with contextlib.suppress(QmpError):
            if qmp(run.qmp, "query-status").get("status") == "prelaunch":
                qmp(run.qmp, "cont")
        return self.status(name)

    def _qmp_power(self, name: str, command: str) -> VmStatus:
        run = self._run_dir(name)
        with self._vm_lock(name):
            if live_pid(run) is None:
                raise DriverError(f"VM {name} is not running on this host")
            try:
                qmp(run.qmp, command)
            except QmpError as exc:
                raise DriverError(f"VM {name}: {command} failed: {exc}") from exc
        return self.status(name)

    def _tidy_dead(self, name: str, run: RunDir) -> None:
        """QEMU died on its own: remove its taps and sockets, unless a call on it is running."""
        with self._locks_guard:
            lock = self._locks.setdefault(name, threading.Lock())
        if lock.acquire(blocking=False):
            try:
                self._clear_runtime(run)
            finally:
                lock.release()

    def _argv(self, spec: VmSpec, run: RunDir, taps: list[str]) -> list[str]:
        argv = [
            self.qemu_binary,
            "-name", f"{spec.name},debug-threads=on",
            "-uuid", spec.uuid,
            "-machine", "pc",
            "-accel", "tcg,tb-size=32" if self.accelerator() == "tcg" else "kvm",
            "-smp", str(max(1, spec.vcpus)),
            "-m", str(spec.memory_mib),
            "-nodefaults", "-no-user-config",
            "-vga", "std", "-display", "none",
            "-vnc", f"unix:{opt(run.vnc)}",
            "-serial", f"file:{opt(run.serial)}",
            "-qmp", f"unix:{opt(run.qmp)},server=on,wait=off",
            "-pidfile", str(run.pid),
            "-daemonize", "-S",
        ]  # fmt: skip
        argv += ["-chardev", f"socket,id=qga0,path={opt(run.qga)},server=on,wait=off",
                 "-device", "virtio-serial-pci",
                 "-device", "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0"]  # fmt: skip
        hostname = _HOSTNAME.sub("", spec.hostname or spec.name)
        # CloudStack's KVM hosts announce themselves so: cloud-init's ds-identify picks the
        # CloudStack datasource by this product name in stock cloud images.
        argv += ["-smbios", "type=1,manufacturer=Apache Software Foundation,"
                 f"product=CloudStack KVM Hypervisor,serial={spec.uuid}"]  # fmt: skip
        argv += ["-smbios", f"type=11,value=cumulo.hostname={hostname}"]
        argv += _disk_args(spec.disks, boot_from_disk=not spec.boot.get("kernel"))
        argv += _nic_args(spec.nics, taps)
        argv += _boot_args(spec.boot)
        return argv

    def _spawn(self, argv: list[str], run: RunDir) -> None:
        """QEMU forks itself away (``-daemonize``); its launcher exits once devices are up,
        so a bad disk or busy tap fails here, with QEMU's own message."""
        with run.log.open("ab") as log:
            try:
                done = subprocess.run(
                    self._ns(argv),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                    timeout=60,
                    check=False,
                )
            except FileNotFoundError as exc:
                raise DriverError(f"{argv[0]} is not installed on this host") from exc
            except subprocess.TimeoutExpired as exc:
                raise DriverTimeout("QEMU did not finish starting in 60 s") from exc
        if done.returncode != 0:
            raise DriverError(_tail(run.log))

    def _kill(self, run: RunDir) -> None:
        """QMP ``quit``, then SIGKILL: used when a soft stop timed out or was not wanted."""
        pid = live_pid(run)
        if pid is None:
            return
        with contextlib.suppress(QmpError):
            qmp(run.qmp, "quit", timeout=2.0)
        if _wait_exit(pid, 5.0):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        if not _wait_exit(pid, 10.0):
            raise DriverTimeout(f"QEMU pid {pid} did not exit after SIGKILL")

    def _clear_runtime(self, run: RunDir) -> None:
        """Taps, pid file and sockets of a QEMU that is gone; the spec and logs stay."""
        for tap in _read_taps(run):
            self._ip("link", "del", "dev", tap, check=False)
            sg_nft.remove(tap, self.netns)  # its security-group table goes with it (issue 7)
        for path in (run.pid, run.qmp, run.vnc, run.qga):
            path.unlink(missing_ok=True)

    def _plug(self, nic: NicSpec, tap: str) -> None:
        """A persistent tap for the NIC, on ``nic.bridge`` when one is given."""
        if not _MAC.match(nic.mac):
            raise DriverError(f"NIC {nic.nic_id} has an invalid MAC address {nic.mac!r}")
        if nic.bridge and not self._is_bridge(nic.bridge):
            raise DriverError(f"bridge {nic.bridge} does not exist on this host")
        if not self._link_exists(tap):
            self._ip("tuntap", "add", "dev", tap, "mode", "tap")
        if nic.security_group is not None:  # filtered before the tap carries a frame
            try:
                sg_nft.apply_port(nic.security_group, tap, self.netns)
            except (RuntimeError, ValueError) as exc:
                raise DriverError(f"security groups of NIC {nic.nic_id}: {exc}") from exc
        if nic.bridge:
            self._ip("link", "set", "dev", tap, "master", nic.bridge)
        self._ip("link", "set", "dev", tap, "up")

    def _is_bridge(self, name: str) -> bool:
        links = self._ip_json("-d", "link", "show", "dev", name)
        return bool(links) and links[0].get("linkinfo", {}).get("info_kind") == "bridge"

    def _link_exists(self, name: str) -> bool:
        return bool(self._ip_json("link", "show", "dev", name))

    def _ip_json(self, *args: str) -> list[dict[str, Any]]:
        out = self._ip("-j", *args, check=False)
        try:
            data = json.loads(out) if out.strip() else []
        except ValueError:
            return []
        return data if isinstance(data, list) else []

    def _ip(self, *args: str, check: bool = True) -> str:
        argv = ["ip", *(("-n", self.netns) if self.netns else ()), *args]
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
        if check and done.returncode != 0:
            raise DriverError(f"{' '.join(argv)} failed: {done.stderr.strip()}")
        return done.stdout

    def _ns(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *argv] if self.netns else argv

    def _stats_of(self, name: str, run: RunDir, pid: int) -> VmStats:
        cpu_ns, rss_kib = _proc_usage(pid)
        disks = _block_totals(run)
        nics = []
        for nic_id, tap in _nic_taps(run):
            tap_rx, tap_tx = self._tap_bytes(tap)
            nics.append(NicStats(nic_id, tap_tx, tap_rx))  # what the tap sends, the guest gets
        rx, tx = sum(n.rx_bytes for n in nics), sum(n.tx_bytes for n in nics)
        return VmStats(
            name=name,
            cpu_time_ns=cpu_ns,
            memory_kib=rss_kib,
            disk_read_bytes=disks["rd_bytes"],
            disk_write_bytes=disks["wr_bytes"],
            disk_read_ops=disks["rd_operations"],
            disk_write_ops=disks["wr_operations"],
            net_rx_bytes=rx,
            net_tx_bytes=tx,
            nics=tuple(nics),
        )

    def _tap_bytes(self, tap: str) -> tuple[int, int]:
        links = self._ip_json("-s", "link", "show", "dev", tap)
        if not links:
            return 0, 0
        stats = links[0].get("stats64", {})
        return int(stats.get("rx", {}).get("bytes", 0)), int(stats.get("tx", {}).get("bytes", 0))


# -- pieces of the QEMU command line ------------------------------------------------------

CDROM_DEVICE = 3  # CloudStack's device id of the CD-ROM (data disks skip it)
CDROM_ID = "cdrom0"  # its qdev id: attachIso changes the medium of this device


def _disk_args(disks: tuple[DiskSpec, ...], *, boot_from_disk: bool) -> list[str]:
    args: list[str] = []
    boot_index = 0
    for disk in sorted(disks, key=lambda d: d.device_id):
        drive_id = f"disk{disk.device_id}"
        if disk.kind == "ISO":
            args += ["-drive", f"file={opt(disk.path)},if=none,id={drive_id},media=cdrom,"
                     "readonly=on,format=raw",
                     "-device", f"ide-cd,drive={drive_id},id={CDROM_ID}"]  # fmt: skip
            continue
        args += ["-drive", f"file={opt(disk.path)},if=none,id={drive_id},format=qcow2,"
                 "discard=unmap"]  # fmt: skip
        device = f"virtio-blk-pci,drive={drive_id}"
        if disk.kind == "DATADISK":  # the same serial hot-plug gives it (qemu_volumes)
            device += f",serial={disk_serial(disk.volume_id)}"
        if disk.kind == "ROOT" and boot_from_disk:  # -kernel claims bootindex 0 itself
            device += f",bootindex={boot_index}"
            boot_index += 1
        args += ["-device", device]
    if not any(d.kind == "ISO" for d in disks):  # an empty drive attachIso can fill later
        args += ["-drive", f"if=none,id=disk{CDROM_DEVICE},media=cdrom,readonly=on",
                 "-device", f"ide-cd,drive=disk{CDROM_DEVICE},id={CDROM_ID}"]  # fmt: skip
    return args


def _nic_args(nics: tuple[NicSpec, ...], taps: list[str]) -> list[str]:
    args: list[str] = []
    for index, (nic, tap) in enumerate(zip(sorted(nics, key=_nic_order), taps, strict=True)):
        args += ["-netdev", f"tap,id=net{index},ifname={tap},script=no,downscript=no",
                 "-device", f"virtio-net-pci,netdev=net{index},mac={nic.mac.lower()}"]  # fmt: skip
    return args


def _boot_args(boot: dict[str, str]) -> list[str]:
    """Direct kernel boot when the template's details name a kernel; the disk boots otherwise."""
    if not boot.get("kernel"):
        return []
    args = ["-kernel", boot["kernel"]]
    if boot.get("initrd"):
        args += ["-initrd", boot["initrd"]]
    if boot.get("cmdline"):
        args += ["-append", boot["cmdline"]]
    return args


def _ensure_disk(disk: DiskSpec) -> None:
    if disk.kind == "ISO":
        if not Path(disk.path).is_file():
            raise DriverError(f"ISO {disk.path} is not on this host")
        return
    if disk.template_path:
        qcow2.ensure_clone(Path(disk.path), Path(disk.template_path), disk.size_bytes)
    elif not Path(disk.path).exists():
        qcow2.ensure_blank(Path(disk.path), disk.size_bytes)


def _nic_order(nic: NicSpec) -> int:
    return nic.device_id


def _sorted_nics(spec: VmSpec) -> list[NicSpec]:
    return sorted(spec.nics, key=_nic_order)


def tap_name(vm: str, device_id: int) -> str:
    """Stable and at most 15 characters (IFNAMSIZ), so a restarted agent finds its taps."""
    return f"ct{hashlib.sha1(vm.encode()).hexdigest()[:8]}n{device_id}"[:15]


# -- processes -----------------------------------------------------------------------------


def _wait_exit(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _proc_usage(pid: int) -> tuple[int, int]:
    """CPU time (user + system, ns) and resident memory (KiB) of the QEMU process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0, 0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    cpu_ns = ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    rss = next(
        (int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0
    )
    return cpu_ns, rss


def _block_totals(run: RunDir) -> dict[str, int]:
    totals = dict.fromkeys(("rd_bytes", "wr_bytes", "rd_operations", "wr_operations"), 0)
    try:
        devices = qmp(run.qmp, "query-blockstats", timeout=2.0)
    except QmpError:
        return totals
    for device in devices:
        for key in totals:
            totals[key] += int(device.get("stats", {}).get(key, 0))
    return totals


def _read_taps(run: RunDir) -> list[str]:
    try:
        return [str(t) for t in json.loads(run.spec.read_text()).get("taps", [])]
    except (OSError, ValueError):
        return []


def _nic_taps(run: RunDir) -> list[tuple[str, str]]:
    """(NIC id, tap) of each of the VM's NICs, from the spec it was started with."""
    try:
        recorded = json.loads(run.spec.read_text())
    except (OSError, ValueError):
        return []
    spec, taps = recorded.get("spec", {}), set(recorded.get("taps", []))
    name = str(spec.get("name", ""))
    pairs = [
        (str(n.get("nic_id", "")), tap_name(name, int(n.get("device_id", 0))))
        for n in spec.get("nics", [])
    ]
    return [(nic_id, tap) for nic_id, tap in pairs if tap in taps]


def _tail(path: Path, limit: int = 600) -> str:
    try:
        text = path.read_text(errors="replace").strip()
    except OSError:
        return "QEMU failed without a message"
    return text[-limit:] or "QEMU failed without a message"


# -- the host ------------------------------------------------------------------------------


def _cpu_mhz() -> int:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("cpu MHz"):
                return int(float(line.split(":")[1]))
    return 0


def _memory_bytes() -> int:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def qemu_version(qemu_binary: str = QEMU) -> str:
    try:
        out = subprocess.run(
            [qemu_binary, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""
    match = re.search(r"version (\S+)", out)
    return match.group(1) if match else ""


# -- the accelerator probe -----------------------------------------------------------------


def probe_accelerator(
    state_dir: Path,
    probe_boot: dict[str, str] | None,
    *,
    qemu_binary: str = QEMU,
    timeout_s: float = 15.0,
) -> str:
    """``kvm`` only when a guest really boots under KVM; ``/dev/kvm`` existing proves nothing
    (on the build machines it is PVM and stock kernels crash or crawl: compute-probe §4).

    The answer is cached in the state dir, keyed by the QEMU version and host kernel, because
    a failing probe costs its whole timeout.
    """
    cache = Path(state_dir) / "accelerator.json"
    key = {"qemu": qemu_version(qemu_binary), "host_kernel": os.uname().release}
    with contextlib.suppress(OSError, ValueError):
        cached = json.loads(cache.read_text())
        if cached.get("key") == key and cached.get("accelerator") in ("kvm", "tcg"):
            return str(cached["accelerator"])
    if not os.path.exists("/dev/kvm") or not probe_boot:
        return "tcg"  # not cached: a later call with a probe image may still prove KVM
    argv = [qemu_binary, "-machine", "pc", "-accel", "kvm", "-m", "128", "-nodefaults",
            "-display", "none", "-serial", "stdio", "-no-reboot"]  # fmt: skip
    argv += _boot_args(probe_boot)
    ready = boot_until_marker(argv, READY_MARKER, timeout_s) is not None
    accelerator = "kvm" if ready else "tcg"
    Path(state_dir).mkdir(parents=True, exist_ok=True)
    write_json(cache, {"key": key, "accelerator": accelerator, "probed_at": time.time()})
    return accelerator


def _built_probe_boot(data_dir: Path) -> dict[str, str] | None:
    """Direct-boot details of the tiny image in ``data_dir`` (no root disk), if it is built."""
    tiny = data_dir / "images" / "tiny"
    try:
        manifest = json.loads((tiny / "tiny.json").read_text())
    except (OSError, ValueError):
        return None
    cmdline = str(manifest.get("cmdline", "")).replace(" root=/dev/vda2", "")
    kernel, initrd = tiny / str(manifest["kernel"]), tiny / str(manifest["initrd"])
    return {"kernel": str(kernel), "initrd": str(initrd), "cmdline": cmdline}


def boot_until_marker(argv: list[str], marker: bytes, timeout_s: float) -> float | None:
    """Run a QEMU whose serial is stdout; seconds until ``marker`` appeared, or None.

    The process is always killed and reaped before returning.
    """
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)  # fmt: skip
    assert proc.stdout is not None
    seen = b""
    try:
        while time.monotonic() - start < timeout_s:
            ready, _, _ = select.select([proc.stdout], [], [], 0.2)
            if not ready:
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                return None
            seen = (seen + chunk)[-4096:]
            if marker in seen:
                return time.monotonic() - start
        return None
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


_opt = opt  # the name tests/agent/test_qemu_argv.py knows
