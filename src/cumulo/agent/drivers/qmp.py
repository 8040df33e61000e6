"""A small synchronous QMP client: one connection per exchange.

QEMU's QMP socket takes one client at a time. Connecting for each exchange (greeting,
``qmp_capabilities``, the command) keeps no state in the driver, so a restarted agent talks
to a VM it re-adopted exactly as to one it started, and a hung exchange never blocks the
next one for longer than its timeout.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any


class QmpError(Exception):
    """QMP did not answer, or answered with an error."""


def qmp(
    path: Path, command: str, arguments: dict[str, Any] | None = None, *, timeout: float = 5.0
) -> Any:
    """Run one QMP command and return its ``return`` value."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            reader = sock.makefile("rb")
            _expect(reader, "QMP")
            _send(sock, {"execute": "qmp_capabilities"})
            _expect(reader, "return")
            message: dict[str, Any] = {"execute": command}
            if arguments:
                message["arguments"] = arguments
            _send(sock, message)
            return _expect(reader, "return")
    except (OSError, ValueError) as exc:
        raise QmpError(f"QMP {command} on {path.name}: {exc}") from exc


def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.sendall(json.dumps(message).encode() + b"\n")


def _expect(reader: Any, key: str) -> Any:
    """The next reply carrying ``key``; asynchronous events in between are skipped."""
    while True:
        line = reader.readline()
        if not line:
            raise QmpError("connection closed")
        reply = json.loads(line)
        if "error" in reply:
            error = reply["error"]
            raise QmpError(f"{error.get('class')}: {error.get('desc')}")
        if key in reply:
            return reply[key]
