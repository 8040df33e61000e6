"""Sending a command to a host and getting its answer, whatever carries it.

Orchestration calls ``Hub.send(host, command)``; a transport registered per hypervisor type
carries it: the in-process simulator for ``Simulator`` hosts, the agent WebSocket for ``KVM``
hosts. Failures come back as exceptions with a clear text, never as silence:
``HostUnreachable`` (no agent connected, or the host is down) and ``CommandTimeout`` (sent,
but no answer in time: the command may or may not have run, so the caller must ask the host
again before deciding). A host that answered ``ok=False`` raises ``CommandFailed``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol

from cumulo.agentrpc.messages import Answer, Command


@dataclass(frozen=True)
class HostRef:
    """Who a command is for, with the scope configureSimulator rules match on."""

    uuid: str
    name: str
    hypervisor: str
    zone: str = ""
    pod: str = ""
    cluster: str = ""
    address: str = ""


class HubError(Exception):
    pass


class HostUnreachable(HubError):
    """Nothing could be sent: no agent is connected for the host, or it is down."""


class CommandTimeout(HubError):
    """Sent, but no answer in time: whether it ran is unknown until the host is asked."""


class CommandFailed(HubError):
    """The host carried the command out and reported failure."""


class Transport(Protocol):
    def send(self, host: HostRef, command: Command, timeout_s: float) -> Answer:
        """Deliver and wait for the answer; raise HostUnreachable or CommandTimeout."""


class Hub:
    def __init__(self) -> None:
        self._transports: dict[str, Transport] = {}
        self._lock = threading.Lock()

    def register(self, hypervisor: str, transport: Transport) -> None:
        with self._lock:
            self._transports[hypervisor.lower()] = transport

    def transport(self, hypervisor: str) -> Transport:
        with self._lock:
            found = self._transports.get(hypervisor.lower())
        if found is None:
            raise HostUnreachable(f"no transport for {hypervisor} hosts on this server")
        return found

    def send(self, host: HostRef, command: Command, timeout_s: float = 60.0) -> Answer:
        """The host's answer to ``command``; raises CommandFailed when it says it failed."""
        answer = self.transport(host.hypervisor).send(host, command, timeout_s)
        if not answer.ok:
            raise CommandFailed(answer.error or f"{command.kind} failed on host {host.name}")
        return answer
