"""Frames: what the agent and server accept, and what they refuse as protocol errors."""

from __future__ import annotations

import json

import pytest

from cumulo.agent.agent import agent_url, power_changes
from cumulo.agentrpc.messages import HostInfo, PowerState, StartVm, VmSpec, VmStatus, to_wire
from cumulo.agentrpc.wire import (
    MAX_FRAME,
    ProtocolError,
    decode,
    encode,
    host_info_from_wire,
    vm_statuses_from_wire,
)


def test_a_command_frame_round_trips() -> None:
    command = StartVm("r-1", VmSpec(name="i-2-3-VM", uuid="u", vcpus=1, cpu_mhz=500, memory_mib=64))
    frame = decode(encode("command", command=to_wire(command)))
    assert frame.type == "command"
    assert frame.body["command"]["kind"] == "StartCommand"
    assert frame.body["command"]["spec"]["name"] == "i-2-3-VM"


@pytest.mark.parametrize(
    "text",
    ["not json", "[1, 2]", json.dumps({"type": "hello"}), json.dumps({"no": "type"})],
)
def test_bad_frames_are_protocol_errors(text: str) -> None:
    with pytest.raises(ProtocolError):
        decode(text)


def test_an_oversized_frame_is_refused_before_parsing() -> None:
    with pytest.raises(ProtocolError, match="over the"):
        decode('{"type": "ping", "pad": "' + "x" * MAX_FRAME + '"}')


def test_unknown_frame_types_are_not_encoded() -> None:
    with pytest.raises(ProtocolError):
        encode("shutdown")


def test_host_info_ignores_unknown_fields_and_checks_sizes() -> None:
    info = HostInfo("h", cpus=2, cpu_mhz=1000, memory_bytes=1 << 30, hypervisor="KVM")
    wire = {**to_wire(info), "from_the_future": 1}
    assert host_info_from_wire(wire) == info
    bads: list[object] = [
        {**wire, "cpus": 0},
        {**wire, "memory_bytes": "lots"},
        {"hostname": "h"},
        [],
    ]
    for bad in bads:
        with pytest.raises(ProtocolError):
            host_info_from_wire(bad)


def test_vm_statuses_need_a_name_and_a_known_power_state() -> None:
    ok = vm_statuses_from_wire([{"name": "a", "power": "Running"}])
    assert ok == [VmStatus("a", PowerState.RUNNING)]
    for bad in ([{"power": "Running"}], [{"name": "a", "power": "Exploded"}], {"name": "a"}):
        with pytest.raises(ProtocolError):
            vm_statuses_from_wire(bad)


def test_power_changes_report_changed_and_vanished_vms_only() -> None:
    before = {"a": PowerState.RUNNING, "b": PowerState.RUNNING, "gone": PowerState.STOPPED}
    now = {
        "a": VmStatus("a", PowerState.RUNNING),
        "b": VmStatus("b", PowerState.STOPPED),
        "new": VmStatus("new", PowerState.RUNNING),
    }
    changed = {vm.name: vm.power for vm in power_changes(before, now)}
    assert changed == {
        "b": PowerState.STOPPED,
        "new": PowerState.RUNNING,
        "gone": PowerState.MISSING,
    }


@pytest.mark.parametrize(
    ("given", "url"),
    [
        ("http://10.0.0.1:8080", "ws://10.0.0.1:8080/agent/v1"),
        ("https://cloud.example/", "wss://cloud.example/agent/v1"),
        ("10.0.0.1:8080", "ws://10.0.0.1:8080/agent/v1"),
        ("ws://h:1/agent/v1", "ws://h:1/agent/v1"),
    ],
)
def test_agent_url_from_a_server_address(given: str, url: str) -> None:
    assert agent_url(given) == url
