"""The network commands an agent carries out: segments and routers on this host.

A simulated host records them and answers as a real one would (nothing is applied there);
a QEMU host applies them with ``host_net`` and ``router_ns`` in the driver's namespace.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from cumulo.agent.network import sg_nft
from cumulo.agent.network.host_net import Ip, ensure_segment, remove_segment
from cumulo.agent.network.router_ns import PublicSide, Router, routers_on
from cumulo.agentrpc.messages import (
    ApplyRouter,
    ApplySecurityGroups,
    Command,
    DestroyRouter,
    EnsureSegment,
    ReleaseSegment,
    router_config_from_wire,
)

NETWORK_COMMANDS = (EnsureSegment, ReleaseSegment, ApplyRouter, DestroyRouter, ApplySecurityGroups)

# One network change at a time on a host: the agent runs commands in a thread pool, and a
# reconciler's verify can arrive while a VM start's apply of the same router is running.
_LOCK = threading.Lock()


def run(command: Command, state_dir: Path, netns: str | None = None) -> dict[str, Any]:
    """Carry out one network command on this host; the answer says what was done."""
    with _LOCK:
        return _run(command, state_dir, netns)


def _run(command: Command, state_dir: Path, netns: str | None) -> dict[str, Any]:
    ip = Ip(netns)
    if isinstance(command, EnsureSegment):
        return ensure_segment(ip, command.vni, command.local_vtep, command.peers)
    if isinstance(command, ReleaseSegment):
        # The server releases a segment only on a host that must keep nothing of the network:
        # a router of it still here is stale (a DestroyRouter lost while the agent was down,
        # a router moved away, an old VNI) and goes first, or its leg would hold the bridge.
        stale = [Router(n, state_dir, ip).destroy() for n in routers_on(state_dir, command.vni)]
        return {"removed": remove_segment(ip, command.vni), "stale_routers": stale}
    if isinstance(command, ApplyRouter):
        public = (
            PublicSide(command.public_bridge, command.public_prefix, command.public_gateway)
            if command.public_bridge
            else None
        )
        router = Router(command.network_id, state_dir, ip)
        return router.apply(
            router_config_from_wire(command.config), public, command.local_vtep, command.peers
        )
    if isinstance(command, DestroyRouter):
        return Router(command.network_id, state_dir, ip).destroy()
    if isinstance(command, ApplySecurityGroups):
        return _security_groups(command, netns)
    raise ValueError(f"not a network command: {command.kind}")


def _security_groups(command: ApplySecurityGroups, netns: str | None) -> dict[str, Any]:
    """Each filtered tap's table as wanted; a tap that is not there (VM stopped meanwhile)
    gets none, so a late rule change cannot leave a table behind."""
    from cumulo.agent.drivers.qemu import tap_name  # the driver names the taps

    result: dict[str, str] = {}
    for port in command.ports:
        tap = tap_name(command.vm_name, int(port.get("device_id", 0)))
        if Ip(netns).exists(tap):
            result[tap] = sg_nft.apply_port(port, tap, netns)
        else:
            sg_nft.remove(tap, netns)
            result[tap] = "absent"
    return {"ports": result}


def record(command: Command) -> dict[str, Any]:
    """What a simulated host answers: the command is recorded by the server, not applied."""
    if isinstance(command, ApplyRouter):
        return {"namespace": f"cr-{command.network_id}", "changed": True, "simulated": True}
    return {"simulated": True}
