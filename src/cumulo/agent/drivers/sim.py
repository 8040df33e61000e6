"""The simulator hypervisor: VMs that exist only in memory, fast enough for 10,000 hosts.

A ``SimDriver`` is one simulated host. It keeps its VMs' power states and invents stable
statistics, so orchestration, metering and the scale benchmark run without QEMU. It has no
faults of its own: latency and failures are injected around it (``SimTransport``) by the
rules an admin sets with configureSimulator, exactly where a real host would be slow or fail.
The same driver also runs inside ``cumulo agent --driver sim`` to test the agent protocol.
"""

from __future__ import annotations

import threading
import time
import zlib

from cumulo.agent.drivers.base import DriverError
from cumulo.agentrpc.messages import HostInfo, PowerState, VmSpec, VmStats, VmStatus


class SimDriver:
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
        self._lock = threading.Lock()

    def host_info(self) -> HostInfo:
        return self._info

    def start(self, spec: VmSpec) -> VmStatus:
        with self._lock:
            self._vms[spec.name] = spec
            if self._power.get(spec.name) != PowerState.RUNNING:
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
        del disk_paths
        with self._lock:
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
                out.append(
                    VmStats(
                        name=name,
                        cpu_time_ns=int(up * rate * 1e7),
                        memory_kib=spec.memory_mib * 1024,
                        disk_read_bytes=int(up * rate * 4096),
                        disk_write_bytes=int(up * rate * 2048),
                        disk_read_ops=int(up * rate),
                        disk_write_ops=int(up * rate / 2),
                        net_rx_bytes=int(up * rate * 1500),
                        net_tx_bytes=int(up * rate * 900),
                    )
                )
            return out

    def prepare_template(
        self, template_id: str, source_url: str, checksum: str, pool_path: str
    ) -> str:
        del source_url, checksum
        with self._lock:
            path = f"{pool_path.rstrip('/')}/{template_id}.qcow2"
            self._templates[template_id] = path
            return path
