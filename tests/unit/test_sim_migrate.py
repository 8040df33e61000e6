"""MigrateVm on simulated hosts: the VM moves from the source driver to the target's, a resent
command is harmless, injected faults answer as a failing host would, and a real agent (no
peers) refuses it."""

from __future__ import annotations

import pytest

from cumulo.agent.drivers.sim import SimDriver
from cumulo.agent.executor import execute
from cumulo.agent.simulated import Fault, SimTransport
from cumulo.agentrpc.hub import CommandTimeout, HostRef
from cumulo.agentrpc.messages import MigrateVm, PowerState, VmSpec

SPEC = VmSpec(name="i-2-9-VM", uuid="u-9", vcpus=1, cpu_mhz=500, memory_mib=512)


def ref(uuid: str) -> HostRef:
    return HostRef(uuid=uuid, name=f"host-{uuid}", hypervisor="Simulator", zone="z")


def command(target: str = "b", request_id: str = "r1") -> MigrateVm:
    return MigrateVm(request_id=request_id, spec=SPEC, target_host=target)


def test_the_vm_moves_to_the_target_and_a_resend_is_harmless() -> None:
    sim = SimTransport()
    sim.driver(ref("a")).start(SPEC)
    answer = sim.send(ref("a"), command(), 5)
    assert answer.ok and answer.result["power"] == "Running"
    assert sim.driver(ref("a")).status(SPEC.name).power == PowerState.MISSING
    assert sim.driver(ref("b")).status(SPEC.name).power == PowerState.RUNNING
    again = sim.send(ref("a"), command(request_id="r2"), 5)
    assert again.ok and sim.driver(ref("b")).status(SPEC.name).power == PowerState.RUNNING


def test_a_vm_running_nowhere_is_not_migrated() -> None:
    sim = SimTransport()
    answer = sim.send(ref("a"), command(), 5)
    assert not answer.ok and "not running" in answer.error
    assert sim.driver(ref("b")).status(SPEC.name).power == PowerState.MISSING


def test_injected_failure_leaves_the_vm_on_the_source() -> None:
    sim = SimTransport(
        lambda host, kind: Fault(result="fail") if kind == "MigrateCommand" else None
    )
    sim.driver(ref("a")).start(SPEC)
    answer = sim.send(ref("a"), command(), 5)
    assert not answer.ok and "MigrateCommand failed" in answer.error
    assert sim.driver(ref("a")).status(SPEC.name).power == PowerState.RUNNING
    assert sim.driver(ref("b")).status(SPEC.name).power == PowerState.MISSING


def test_a_lost_answer_still_moved_the_vm() -> None:
    sim = SimTransport(lambda host, kind: Fault(timeout=True))
    sim.driver(ref("a")).start(SPEC)
    with pytest.raises(CommandTimeout):
        sim.send(ref("a"), command(), 5)
    assert sim.driver(ref("b")).status(SPEC.name).power == PowerState.RUNNING


def test_a_host_without_peers_refuses_migration() -> None:
    driver = SimDriver("solo")
    driver.start(SPEC)
    answer = execute(driver, command())
    assert not answer.ok and "cannot migrate" in answer.error
    assert driver.status(SPEC.name).power == PowerState.RUNNING
