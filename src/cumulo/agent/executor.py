"""Carrying out one agent command on a hypervisor driver, as an Answer.

Shared by the real agent (over the WebSocket) and the in-process simulator, so a command
means the same thing on every host. Driver errors become ``ok=False`` answers with the
driver's text; anything unexpected is a failed answer too, never an exception to the caller.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
from collections.abc import Callable
from typing import Any

from cumulo.agent.drivers import qemu_migration
from cumulo.agent.drivers.base import (
    ConsoleDriver,
    DriverError,
    HypervisorDriver,
    IsoDriver,
    VmSnapshotDriver,
    VolumeDriver,
)
from cumulo.agent.drivers.qemu import QemuDriver
from cumulo.agent.network import commands as network
from cumulo.agentrpc.messages import (
    Answer,
    AttachDisk,
    BackupSnapshot,
    ChangeIso,
    Command,
    CreateVmSnapshot,
    CreateVolume,
    DeleteVmSnapshot,
    DeleteVolume,
    DestroyVm,
    DetachDisk,
    ExportTemplate,
    FetchDisk,
    GetVmStats,
    GetVmStatus,
    MigrateVm,
    MigrateVolume,
    PowerState,
    PrepareTemplate,
    RebootVm,
    ResizeVolume,
    RevertSnapshot,
    RevertVmSnapshot,
    StageDisk,
    StartVm,
    StopVm,
    VmSnapshotCommand,
    VmStatus,
    to_wire,
)

log = logging.getLogger(__name__)

# How a host reaches the driver of another host to hand a running VM over (the simulator's
# transport provides one). A real agent has none and refuses ``MigrateVm``: its VMs on local
# storage move by stop-and-copy (``StageDisk`` here, ``FetchDisk`` there, then ``StartVm``),
# which the management server orchestrates.
PeerLookup = Callable[[str], HypervisorDriver]


def _status(status: VmStatus) -> dict[str, Any]:
    return to_wire(status)


def _migrate(driver: HypervisorDriver, command: MigrateVm, peers: PeerLookup | None) -> VmStatus:
    """Hand the VM to the target host: it runs there, then it is gone here.

    Idempotent: a resent command whose first copy already moved the VM finds it missing here
    and running on the target, and answers that. Disks stay where they are (shared storage).
    """
    if peers is None:
        raise DriverError("this host cannot migrate VMs")
    target = peers(command.target_host)
    name = command.spec.name
    here = driver.status(name).power
    if here != PowerState.RUNNING:
        there = target.status(name)
        if there.power == PowerState.RUNNING:
            return there
        raise DriverError(f"VM {name} is not running on this host; it cannot be migrated")
    moved = target.start(command.spec)
    driver.destroy(name)
    return moved


def _run(
    driver: HypervisorDriver, command: Command, peers: PeerLookup | None = None
) -> dict[str, Any]:
    if isinstance(command, StartVm):
        return _status(driver.start(command.spec))
    if isinstance(command, StopVm):
        return _status(
            driver.stop(command.name, forced=command.forced, timeout_s=command.timeout_s)
        )
    if isinstance(command, RebootVm):
        return _status(driver.reboot(command.name))
    if isinstance(command, DestroyVm):
        driver.destroy(command.name, command.disk_paths)
        return {}
    if isinstance(command, GetVmStatus):
        return _status(driver.status(command.name))
    if isinstance(command, GetVmStats):
        return {"stats": [dataclasses.asdict(s) for s in driver.stats(command.names)]}
    if isinstance(command, PrepareTemplate):
        path = driver.prepare_template(
            command.template_id, command.source_url, command.checksum, command.pool_path
        )
        return {"path": path}
    if isinstance(command, MigrateVm):
        return _status(_migrate(driver, command, peers))
    if isinstance(command, StageDisk | FetchDisk):
        return _run_copy(driver, command)
    if isinstance(command, VOLUME_COMMANDS):
        return _run_volume(_volumes(driver, command), command)
    if isinstance(command, VmSnapshotCommand):
        return _run_vm_snapshot(driver, command)
    if isinstance(command, ChangeIso):
        if not hasattr(driver, "change_iso"):
            raise DriverError(f"this host's driver cannot carry out {command.kind}")
        iso: IsoDriver = driver  # type: ignore[assignment]
        iso.change_iso(command.vm_name, command.path)
        return {}
    if isinstance(command, network.NETWORK_COMMANDS):  # guest networking (issue 7)
        if isinstance(driver, QemuDriver):
            return network.run(command, driver.state_dir, driver.netns)
        return network.record(command)
    raise DriverError(f"unsupported command {command.kind}")


def _run_copy(driver: HypervisorDriver, command: StageDisk | FetchDisk) -> dict[str, Any]:
    """A disk step of a stop-and-copy migration; only QEMU hosts have disks to copy."""
    if not isinstance(driver, QemuDriver):
        raise DriverError(f"this host's driver cannot carry out {command.kind}")
    if isinstance(command, StageDisk):
        return dict(qemu_migration.stage_disk(driver, command))
    return dict(qemu_migration.fetch_disk(command))


VOLUME_COMMANDS = (
    CreateVolume,
    AttachDisk,
    DetachDisk,
    ResizeVolume,
    DeleteVolume,
    MigrateVolume,
    BackupSnapshot,
    RevertSnapshot,
    ExportTemplate,
)


def _volumes(driver: HypervisorDriver, command: Command) -> VolumeDriver:
    """The driver's block-storage side; drivers without one refuse volume commands."""
    if not hasattr(driver, "create_volume"):
        raise DriverError(f"this host's driver cannot carry out {command.kind} yet")
    return driver  # type: ignore[return-value]


def _run_volume(driver: VolumeDriver, command: Command) -> dict[str, Any]:
    """One block-storage command on the driver; the answer carries what the server records."""
    if isinstance(command, CreateVolume):
        size = driver.create_volume(
            command.volume_id, command.path, command.size_bytes, command.format, command.source_url
        )
        return {"path": command.path, "size": size}
    if isinstance(command, AttachDisk):
        driver.attach_disk(command.vm_name, command.disk)
        return {}
    if isinstance(command, DetachDisk):
        driver.detach_disk(command.vm_name, command.volume_id, command.path)
        return {}
    if isinstance(command, ResizeVolume):
        size = driver.resize_volume(
            command.path,
            command.current_bytes,
            command.new_bytes,
            command.shrink_ok,
            command.vm_name,
        )
        return {"size": size}
    if isinstance(command, DeleteVolume):
        driver.delete_volume(command.path)
        return {}
    if isinstance(command, MigrateVolume):
        return {"path": driver.migrate_volume(command.path, command.target_path)}
    if isinstance(command, BackupSnapshot):
        return dict(
            driver.backup_snapshot(
                command.snapshot_id,
                command.path,
                command.store_url,
                command.install_path,
                command.vm_name,
            )
        )
    if isinstance(command, RevertSnapshot):
        return {"size": driver.revert_snapshot(command.path, command.source_url)}
    if isinstance(command, ExportTemplate):
        return dict(
            driver.export_template(
                command.template_id,
                command.store_url,
                command.install_path,
                command.path,
                command.source_url,
            )
        )
    raise DriverError(f"unsupported command {command.kind}")


def _run_vm_snapshot(driver: HypervisorDriver, command: VmSnapshotCommand) -> dict[str, Any]:
    """A VM snapshot taken, reverted to or deleted on every disk of the VM."""
    if not hasattr(driver, "create_vm_snapshot"):
        raise DriverError(f"this host's driver cannot carry out {command.kind}")
    snaps: VmSnapshotDriver = driver  # type: ignore[assignment]
    args = (command.vm_name, command.tag, command.disk_paths)
    if isinstance(command, CreateVmSnapshot):
        snaps.create_vm_snapshot(*args, command.memory)
    elif isinstance(command, RevertVmSnapshot):
        snaps.revert_vm_snapshot(*args, command.memory)
    elif isinstance(command, DeleteVmSnapshot):
        snaps.delete_vm_snapshot(*args)
    else:
        raise DriverError(f"unsupported command {command.kind}")
    return {}


def console_socket(driver: HypervisorDriver, name: str) -> socket.socket:
    """A connection to the VM's console (``OpenConsole``); the agent pipes it to the WebSocket
    it dials back, so this is the only part of that command a driver does."""
    if not hasattr(driver, "open_console"):
        raise DriverError("this host's driver has no console")
    console: ConsoleDriver = driver  # type: ignore[assignment]
    return console.open_console(name)


def execute(driver: HypervisorDriver, command: Command, peers: PeerLookup | None = None) -> Answer:
    try:
        return Answer(request_id=command.request_id, ok=True, result=_run(driver, command, peers))
    except DriverError as err:
        return Answer(request_id=command.request_id, ok=False, error=str(err))
    except Exception as err:  # a host must answer, whatever went wrong
        log.exception("agent command failed unexpectedly", extra={"kind": command.kind})
        return Answer(request_id=command.request_id, ok=False, error=f"{command.kind}: {err}")
