"""A VM's run directory on a host, and the few helpers that read it.

The QEMU driver and its volume and migration parts all find a VM through these files (the
driver has no other memory across agent restarts), so they live apart from the driver: every
part imports them from here and none imports another part for them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


class RunDir:
    """The files of one VM; their names are the driver's only memory across restarts."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.spec = root / "vm.json"
        self.pid = root / "qemu.pid"
        self.qmp = root / "qmp.sock"
        self.vnc = root / "vnc.sock"
        self.qga = root / "qga.sock"  # the guest agent's channel (qemu-guest-agent)
        self.serial = root / "serial.log"
        self.log = root / "qemu.log"


def opt(value: object) -> str:
    """QEMU option values escape a comma by doubling it."""
    return str(value).replace(",", ",,")


def live_pid(run: RunDir) -> int | None:
    """The VM's QEMU pid when it is alive and really is that VM's QEMU (pids get reused)."""
    try:
        pid = int(run.pid.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    if opt(run.qmp).encode() not in cmdline or not pid_alive(pid):
        return None
    return pid


def pid_alive(pid: int) -> bool:
    """Alive and not a zombie: a killed QEMU may linger unreaped under a non-reaping init."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)
