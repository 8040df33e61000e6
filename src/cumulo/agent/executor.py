"""Carrying out one agent command on a hypervisor driver, as an Answer.

Shared by the real agent (over the WebSocket) and the in-process simulator, so a command
means the same thing on every host. Driver errors become ``ok=False`` answers with the
driver's text; anything unexpected is a failed answer too, never an exception to the caller.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from cumulo.agent.drivers.base import DriverError, HypervisorDriver
from cumulo.agentrpc.messages import (
    Answer,
    Command,
    DestroyVm,
    GetVmStats,
    GetVmStatus,
    MigrateVm,
    PrepareTemplate,
    RebootVm,
    StartVm,
    StopVm,
    VmStatus,
    to_wire,
)

log = logging.getLogger(__name__)


def _status(status: VmStatus) -> dict[str, Any]:
    return to_wire(status)


def _run(driver: HypervisorDriver, command: Command) -> dict[str, Any]:
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
        raise DriverError("live migration is carried out by the orchestration on this cloud")
    raise DriverError(f"unsupported command {command.kind}")


def execute(driver: HypervisorDriver, command: Command) -> Answer:
    try:
        return Answer(request_id=command.request_id, ok=True, result=_run(driver, command))
    except DriverError as err:
        return Answer(request_id=command.request_id, ok=False, error=str(err))
    except Exception as err:  # a host must answer, whatever went wrong
        log.exception("agent command failed unexpectedly", extra={"kind": command.kind})
        return Answer(request_id=command.request_id, ok=False, error=f"{command.kind}: {err}")
