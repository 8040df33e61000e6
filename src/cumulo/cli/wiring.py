"""Putting a management server's parts together: what only a process entry point may know.

The services reach hosts through ``rt.hub`` without knowing what carries a command; here the
Simulator hypervisor's in-process transport is registered, with the configureSimulator rules
as its faults (services.infra.sim_mocks) adapted to the transport's ``Fault``.
"""

from __future__ import annotations

from cumulo.agent.simulated import Fault, SimTransport
from cumulo.agentrpc.hub import HostRef
from cumulo.services.runtime import Runtime


def wire_simulator(rt: Runtime) -> SimTransport:
    def faults(host: HostRef, kind: str) -> Fault | None:
        rule = rt.mocks.rule_for(
            kind, zone=host.zone, pod=host.pod, cluster=host.cluster, host=host.uuid
        )
        if rule is None:
            return None
        return Fault(wait_ms=rule.wait_ms, result=rule.result, timeout=rule.timeout)

    transport = SimTransport(faults)
    rt.hub.register("Simulator", transport)
    return transport
