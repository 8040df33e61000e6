"""The simulator's admin commands: configureSimulator, querySimulatorMock, cleanupSimulatorMock.

A rule makes simulated hosts in its scope slow or failing for one agent command (see
services.infra.sim_mocks); tests and operators use them to prove that orchestration reacts
to each failure correctly.
"""

from __future__ import annotations

from typing import Annotated, Any

from sqlalchemy import select

from cumulo.api.cloudstack.registry import Kind, Param, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx, Success
from cumulo.db.models_compute import SimulatorMock
from cumulo.db.models_infra import Cluster, Host, Pod, Zone
from cumulo.services.access import ROOT_ADMIN
from cumulo.services.errors import ParamError
from cumulo.services.infra import sim_mocks

MOCK_FIELDS = ("id", "zoneid", "podid", "clusterid", "hostid", "name", "count")


def _find(session: Any, model: Any, uuid: str | None, what: str) -> Any:
    if uuid is None:
        return None
    row = session.scalar(select(model).where(model.uuid == uuid, model.removed.is_(None)))
    if row is None:
        raise ParamError(f"Unable to find {what} with id {uuid}")
    return row


def _uuid(session: Any, model: Any, pk: int | None) -> str | None:
    return None if pk is None else session.scalar(select(model.uuid).where(model.id == pk))


def mock_response(session: Any, mock: SimulatorMock) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": mock.uuid,
        "name": mock.command,
        "zoneid": _uuid(session, Zone, mock.zone_id),
    }
    for key, model, pk in (
        ("podid", Pod, mock.pod_id),
        ("clusterid", Cluster, mock.cluster_id),
        ("hostid", Host, mock.host_id),
    ):
        value = _uuid(session, model, pk)
        if value is not None:
            out[key] = value
    if mock.count is not None:
        out["count"] = mock.count
    return out


@command(
    "configureSimulator",
    kind=Kind.SYNC,
    description="configure simulator",
    response="simulatormock",
    roles=ROOT_ADMIN,
    event="SIMULATOR.CONFIGURE",
    entity="SimulatorMock",
    fields=MOCK_FIELDS,
)
def configure_simulator(
    ctx: Ctx,
    name: Annotated[str, Param("which command needs to be configured", required=True)],
    value: Annotated[
        str,
        Param("configuration options for this command, which is separated by ;", required=True),
    ],
    zoneid: Annotated[UUIDStr | None, Param("configure range: in a zone", entity="Zone")] = None,
    podid: Annotated[UUIDStr | None, Param("configure range: in a pod", entity="Pod")] = None,
    clusterid: Annotated[
        UUIDStr | None, Param("configure range: in a cluster", entity="Cluster")
    ] = None,
    hostid: Annotated[UUIDStr | None, Param("configure range: in a host", entity="Host")] = None,
    count: Annotated[int | None, Param("number of times the mock is active")] = None,
    jsonresponse: Annotated[
        str | None, Param("agent command response to be returned", since="4.5")
    ] = None,
) -> dict[str, Any]:
    s = ctx.session
    host = _find(s, Host, hostid, "host")
    cluster = _find(s, Cluster, clusterid, "cluster") or (
        s.get(Cluster, host.cluster_id) if host else None
    )
    pod = _find(s, Pod, podid, "pod") or (s.get(Pod, cluster.pod_id) if cluster else None)
    zone = _find(s, Zone, zoneid, "zone") or (s.get(Zone, pod.zone_id) if pod else None)
    if zone is None:
        raise ParamError("configureSimulator needs a zoneid (or a pod, cluster or host in one)")
    scope = sim_mocks.Scope(zone=zone, pod=pod, cluster=cluster, host=host)
    mock = sim_mocks.create(s, scope, name, value, count, jsonresponse)
    ctx.runtime.mocks.invalidate()
    ctx.event_resource = (mock.uuid, mock.command)
    return mock_response(s, mock)


@command(
    "querySimulatorMock",
    kind=Kind.SYNC,
    description="query simulator mock",
    response="simulatormock",
    roles=ROOT_ADMIN,
    fields=MOCK_FIELDS,
)
def query_simulator_mock(
    ctx: Ctx,
    id: Annotated[UUIDStr, Param("id of the configured mock", required=True)],
) -> dict[str, Any]:
    return mock_response(ctx.session, sim_mocks.find(ctx.session, id))


@command(
    "cleanupSimulatorMock",
    kind=Kind.SYNC,
    description="clean up a simulator mock",
    roles=ROOT_ADMIN,
    event="SIMULATOR.CLEANUP",
    entity="SimulatorMock",
)
def cleanup_simulator_mock(
    ctx: Ctx,
    id: Annotated[UUIDStr, Param("id of the configured mock", required=True)],
) -> Success:
    mock = sim_mocks.find(ctx.session, id)
    sim_mocks.cleanup(mock)
    ctx.runtime.mocks.invalidate()
    ctx.event_resource = (mock.uuid, mock.command)
    return Success()
