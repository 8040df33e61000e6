"""The hypervisor-driver interface every host runs behind.

Orchestration never talks to a driver directly: it sends ``agentrpc`` commands to a host and
the host's agent calls its driver. The simulator and the QEMU driver implement this same
interface, so nothing above the agent knows which one it talks to.

Calls are blocking (an agent runs them in worker threads) and idempotent: starting a running
VM returns its status, stopping or destroying a missing VM succeeds. A driver raises
``DriverError`` with a message meant for the cloud user's job result.
"""

from __future__ import annotations

import socket
from typing import Protocol

from cumulo.agentrpc.messages import DiskSpec, HostInfo, VmSpec, VmStats, VmStatus


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


class VolumeDriver(Protocol):
    """Block storage on a host: volume files on primary storage, hot-plug, and exports.

    Kept apart from ``HypervisorDriver`` so a driver gains it when it implements it (the
    simulator now, QEMU through QMP ``blockdev-add``/``device_add``/``block_resize`` next);
    the executor refuses volume commands on a driver without it. Every call is idempotent:
    creating an existing volume of the same size, deleting a missing one, attaching an
    attached disk all succeed. Exports write to a temporary name and rename when complete.
    """

    def create_volume(
        self, volume_id: str, path: str, size_bytes: int, fmt: str, source_url: str | None
    ) -> int:
        """Create the volume file (from a snapshot export when ``source_url``); its size."""

    def attach_disk(self, vm_name: str, disk: DiskSpec) -> None:
        """Hot-plug the disk into the running VM."""

    def detach_disk(self, vm_name: str, volume_id: str, path: str) -> None:
        """Hot-unplug the disk from the running VM; a disk not attached is success."""

    def resize_volume(
        self, path: str, current_bytes: int, new_bytes: int, shrink_ok: bool, vm_name: str | None
    ) -> int:
        """Resize the volume (online through the VM when it runs); its new size."""

    def delete_volume(self, path: str) -> None:
        """Remove the volume file; a missing file is success."""

    def migrate_volume(self, path: str, target_path: str) -> str:
        """Copy the detached volume to ``target_path``, then remove the source; the new path."""

    def backup_snapshot(
        self, snapshot_id: str, path: str, store_url: str, install_path: str, vm_name: str | None
    ) -> dict[str, int | str]:
        """Export a point-in-time copy; ``size``, ``physical_size`` and ``checksum``."""

    def revert_snapshot(self, path: str, source_url: str) -> int:
        """Overwrite the volume with the export at ``source_url``; the volume's size now."""

    def export_template(
        self,
        template_id: str,
        store_url: str,
        install_path: str,
        path: str | None,
        source_url: str | None,
    ) -> dict[str, int | str]:
        """Write a template image from a volume or an export; ``size`` … as backup_snapshot."""


class VmSnapshotDriver(Protocol):
    """VM snapshots: every disk of a VM (and optionally its memory) at one instant, kept as a
    named internal snapshot (``tag``) on the VM's own disks. ``vm_name`` is the running VM to
    work through, None for a stopped VM's disk files. Idempotent: taking an existing tag again
    replaces it, deleting a missing one succeeds; reverting to a missing one is an error.
    """

    def create_vm_snapshot(
        self, vm_name: str | None, tag: str, disk_paths: tuple[str, ...], memory: bool
    ) -> None:
        """Take the snapshot on every disk at once (with RAM and device state if ``memory``)."""

    def revert_vm_snapshot(
        self, vm_name: str | None, tag: str, disk_paths: tuple[str, ...], memory: bool
    ) -> None:
        """Put every disk (and, with ``memory`` on a running VM, the guest) back to ``tag``."""

    def delete_vm_snapshot(
        self, vm_name: str | None, tag: str, disk_paths: tuple[str, ...]
    ) -> None:
        """Remove ``tag`` from every disk."""


class IsoDriver(Protocol):
    """The CD-ROM drive of a running VM (``attachIso``/``detachIso``)."""

    def change_iso(self, vm_name: str, path: str | None) -> None:
        """Insert the ISO file at ``path`` (None: eject); the same medium again is success."""


class ConsoleDriver(Protocol):
    """A VM's graphical console: a connected stream socket speaking RFB (VNC).

    The agent pipes it to a WebSocket the management server proxies to the user's browser
    (noVNC), so a driver only has to hand out the socket: QEMU's VNC server listens on a Unix
    socket per VM; the simulator answers with a small fake RFB server.
    """

    def open_console(self, name: str) -> socket.socket:
        """A new connection to the VM's VNC server; DriverError when it is not running."""
