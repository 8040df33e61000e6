"""Frames of the agent WebSocket: one JSON object per text message, named by ``type``.

The agent always dials in (``/agent/v1`` on any management server) with its host token in
the ``Authorization: Bearer`` header of the upgrade request; a bad token is refused before
the upgrade (HTTP 403), so a refused agent learns nothing and nothing is registered.

After the upgrade, in order::

    agent  -> server  {"type": "register", "host": HostInfo, "agent_version": str,
                       "vms": [VmStatus, ...]}
    server -> agent   {"type": "registered", "host_id": uuid, "name": str,
                       "ping_interval": seconds}
    then, in any order:
    agent  -> server  {"type": "ping"}                           every ping_interval
    server -> agent   {"type": "command", "command": Command}    (to_wire form, with kind)
    agent  -> server  {"type": "answer", "answer": Answer}       same request_id
    agent  -> server  {"type": "vm_report", "full": bool, "vms": [VmStatus, ...]}
    agent  -> server  {"type": "vm_stats", "vms": [VmStats, ...]}   every stats_interval

``registered`` may carry ``stats_interval`` (seconds; 0 or absent: no samples are pushed).
``vm_stats`` holds each running VM's counters since it started (``VmStats``); the server
turns differences between samples into cumulative usage.

A ``vm_report`` with ``full`` true lists every VM the host knows (sent on connect); otherwise
it lists only VMs whose power state changed since the last report (a VM that disappeared is
reported ``Missing``). Unknown frame types are protocol errors: the peer closes with 1002.

Consoles use a second WebSocket per session, dialled by the agent on ``OpenConsole`` to
``CONSOLE_PATH?token=<session secret>`` with the same ``Authorization: Bearer`` host token;
it carries raw RFB bytes as binary messages, no frames.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any

from cumulo.agentrpc.messages import (
    Answer,
    HostInfo,
    NicStats,
    PowerState,
    VmStats,
    VmStatus,
    to_wire,
)

PATH = "/agent/v1"
CONSOLE_PATH = "/agent/v1/console"
# A frame bigger than this is refused: commands and reports are small, and a peer that sends
# megabytes is broken or hostile.
MAX_FRAME = 1 << 20

FRAME_TYPES = frozenset(
    {"register", "registered", "ping", "command", "answer", "vm_report", "vm_stats"}
)


class ProtocolError(ValueError):
    """A frame that is not JSON, not an object, too big, or of an unknown type."""


@dataclass(frozen=True)
class Frame:
    type: str
    body: dict[str, Any]


def encode(frame_type: str, **body: Any) -> str:
    if frame_type not in FRAME_TYPES:
        raise ProtocolError(f"unknown frame type {frame_type!r}")
    return json.dumps({"type": frame_type, **body}, separators=(",", ":"))


def decode(text: str | bytes) -> Frame:
    if len(text) > MAX_FRAME:
        raise ProtocolError(f"frame of {len(text)} bytes is over the {MAX_FRAME} limit")
    try:
        data = json.loads(text)
    except ValueError as err:
        raise ProtocolError(f"frame is not JSON: {err}") from None
    if not isinstance(data, dict):
        raise ProtocolError("frame is not a JSON object")
    frame_type = data.pop("type", None)
    if frame_type not in FRAME_TYPES:
        raise ProtocolError(f"unknown frame type {frame_type!r}")
    return Frame(str(frame_type), data)


def host_info_from_wire(data: Any) -> HostInfo:
    """HostInfo from its JSON form; unknown fields are ignored (a newer agent may send more),
    missing required ones are a protocol error."""
    if not isinstance(data, dict):
        raise ProtocolError("host is not an object")
    known = {f.name for f in fields(HostInfo)}
    kwargs = {k: v for k, v in data.items() if k in known}
    if "pools" in kwargs:
        kwargs["pools"] = tuple(str(p) for p in kwargs["pools"] or ())
    if "pool_bytes" in kwargs:
        sizes = kwargs["pool_bytes"] or ()
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in sizes):
            raise ProtocolError("bad host info: pool_bytes must be sizes in bytes")
        kwargs["pool_bytes"] = tuple(sizes)
    try:
        info = HostInfo(**kwargs)
        _check_sizes(info)
    except (TypeError, ValueError) as err:
        raise ProtocolError(f"bad host info: {err}") from None
    return info


def _check_sizes(info: HostInfo) -> None:
    for name in ("cpus", "cpu_mhz", "memory_bytes"):
        value = getattr(info, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, not {value!r}")


def vm_status_from_wire(data: Any) -> VmStatus:
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise ProtocolError("VM status without a name")
    try:
        power = PowerState(str(data.get("power")))
    except ValueError:
        raise ProtocolError(f"unknown power state {data.get('power')!r}") from None
    host_ip = data.get("host_ip")
    return VmStatus(
        name=data["name"],
        power=power,
        host_ip=str(host_ip) if host_ip is not None else None,
        detail=str(data.get("detail", "")),
    )


def vm_statuses_from_wire(data: Any) -> list[VmStatus]:
    if not isinstance(data, list):
        raise ProtocolError("vms is not a list")
    return [vm_status_from_wire(item) for item in data]


def vm_statuses_to_wire(vms: list[VmStatus]) -> list[dict[str, Any]]:
    return [to_wire(vm) for vm in vms]


def vm_stats_from_wire(data: Any) -> list[VmStats]:
    """Samples from their JSON form: unknown counters are ignored (a newer agent may send
    more); a counter that is not a non-negative integer is a protocol error."""
    if not isinstance(data, list):
        raise ProtocolError("vms is not a list")
    known = {f.name for f in fields(VmStats)} - {"name", "nics"}
    out = []
    for item in data:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ProtocolError("VM stats without a name")
        counters = {k: v for k, v in item.items() if k in known}
        if not all(_count(v) for v in counters.values()):
            raise ProtocolError(f"bad counters for VM {item['name']}")
        nics = _nic_stats(item.get("nics") or [], item["name"])
        out.append(VmStats(name=item["name"], nics=nics, **counters))
    return out


def _nic_stats(data: Any, vm: str) -> tuple[NicStats, ...]:
    if not isinstance(data, (list, tuple)):  # tuples: a sample that never became JSON
        raise ProtocolError(f"nics of VM {vm} is not a list")
    out = []
    for nic in data:
        if not isinstance(nic, dict) or not isinstance(nic.get("nic_id"), str):
            raise ProtocolError(f"a NIC of VM {vm} has no id")
        rx, tx = nic.get("rx_bytes", 0), nic.get("tx_bytes", 0)
        if not (_count(rx) and _count(tx)):
            raise ProtocolError(f"bad NIC counters for VM {vm}")
        out.append(NicStats(nic["nic_id"], rx, tx))
    return tuple(out)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def answer_frame(answer: Answer) -> str:
    return encode("answer", answer=to_wire(answer))
