"""The hypervisor-driver interface every host runs behind.

Orchestration never talks to a driver directly: it sends ``agentrpc`` commands to a host and
the host's agent calls its driver. The simulator and the QEMU driver implement this same
interface, so nothing above the agent knows which one it talks to.

Calls are blocking (an agent runs them in worker threads) and idempotent: starting a running
VM returns its status, stopping or destroying a missing VM succeeds. A driver raises
``DriverError`` with a message meant for the cloud user's job result.
"""

from __future__ import annotations

from typing import Protocol

from cumulo.agentrpc.messages import HostInfo, VmSpec, VmStats, VmStatus


class DriverError(Exception):
    """The hypervisor could not do what was asked; the text explains why."""


class DriverTimeout(DriverError):
    """The hypervisor did not finish in time; the VM's real state must be asked again."""


class HypervisorDriver(Protocol):
    def host_info(self) -> HostInfo:
        """The host's size and hypervisor, as registered with the management server."""

    def start(self, spec: VmSpec) -> VmStatus:
        """Define (if needed) and start the VM; a running VM is left alone."""

    def stop(self, name: str, *, forced: bool = False, timeout_s: float = 60.0) -> VmStatus:
        """ACPI power-down, then a hard stop after ``timeout_s`` (at once when forced)."""

    def reboot(self, name: str) -> VmStatus:
        """Reboot a running VM; refused (DriverError) when it is not running."""

    def destroy(self, name: str, disk_paths: tuple[str, ...] = ()) -> None:
        """Stop the VM if needed and remove its runtime files and the given disks."""

    def status(self, name: str) -> VmStatus:
        """The VM's power state; ``PowerState.MISSING`` when the host does not know it."""

    def list_vms(self) -> list[VmStatus]:
        """Every VM this host runs or knows, including ones re-adopted after a restart."""

    def stats(self, names: tuple[str, ...] = ()) -> list[VmStats]:
        """Counters of the named VMs (all running VMs when empty)."""

    def prepare_template(
        self, template_id: str, source_url: str, checksum: str, pool_path: str
    ) -> str:
        """Cache the template on primary storage (once) and return its path there."""
