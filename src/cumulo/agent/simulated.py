"""Simulated hosts inside the management server: the Simulator hypervisor's transport.

One ``SimDriver`` per simulated host, created on first use (a host that exists only as a
row costs nothing until a VM lands on it). Before a command reaches the driver the
configureSimulator rules for its scope apply, as a real host would misbehave:

- ``wait``: the answer comes that many milliseconds later (beyond the command's timeout it
  never comes: CommandTimeout);
- ``result:fail``: the host answers that the command failed, and did nothing;
- ``result:fault``: the host raises an internal error (also a failed answer);
- ``timeout``: the host carries the command out but its answer is lost (CommandTimeout), so
  orchestration must ask the host what really happened.

The rules come from a callback the server wires (``faults``): this module knows nothing of
the database.

``MigrateVm`` is sent to the source host and names the target by uuid; the transport lends the
executor the target's driver, so the VM starts there and leaves the source, as a live
migration between two real hosts would end.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from cumulo.agent.drivers.sim import SimDriver
from cumulo.agent.executor import execute
from cumulo.agentrpc.hub import CommandTimeout, HostRef
from cumulo.agentrpc.messages import Answer, Command


@dataclass(frozen=True)
class Fault:
    wait_ms: int = 0
    result: str | None = None  # "fail" | "fault" | None
    timeout: bool = False


FaultLookup = Callable[[HostRef, str], Fault | None]


def no_faults(host: HostRef, kind: str) -> Fault | None:
    del host, kind
    return None


class SimTransport:
    def __init__(self, faults: FaultLookup = no_faults) -> None:
        self._faults = faults
        self._hosts: dict[str, SimDriver] = {}
        self._lock = threading.Lock()

    def driver(self, host: HostRef) -> SimDriver:
        with self._lock:
            found = self._hosts.get(host.uuid)
            if found is None:
                found = self._hosts[host.uuid] = SimDriver(host.name)
            return found

    def _peer(self, host_uuid: str) -> SimDriver:
        """Another simulated host, for MigrateVm (the source hands the VM to it directly)."""
        with self._lock:
            found = self._hosts.get(host_uuid)
            if found is None:
                found = self._hosts[host_uuid] = SimDriver(host_uuid)
            return found

    def send(self, host: HostRef, command: Command, timeout_s: float) -> Answer:
        fault = self._faults(host, command.kind)
        if fault is not None and fault.wait_ms:
            delay = fault.wait_ms / 1000
            time.sleep(min(delay, timeout_s))
            if delay > timeout_s:
                raise CommandTimeout(
                    f"{command.kind} to host {host.name} timed out after {timeout_s:g} s"
                )
        if fault is not None and fault.result in ("fail", "fault"):
            text = "failed" if fault.result == "fail" else "hit an internal fault"
            return Answer(
                request_id=command.request_id,
                ok=False,
                error=f"Simulated {command.kind} {text} on host {host.name}",
            )
        answer = execute(self.driver(host), command, self._peer)
        if fault is not None and fault.timeout:
            raise CommandTimeout(f"{command.kind} to host {host.name}: no answer (simulated)")
        return answer
