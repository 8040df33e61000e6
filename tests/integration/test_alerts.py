"""Alerts: raised for an internal job failure and a cluster over its capacity threshold on
simulated hosts, listed, archived and deleted by the root admin, and put on the event bus
(an AlertEvent reaches the root admin's Global webhook)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.tenants import error, make_tenant, uniq
from tests.integration.test_agent import (  # noqa: F401 (fixtures)
    AgentProc,
    Site,
    add_kvm_host,
    agents,
    kcloud,
    site,
    start_agent,
    wait_state,
)
from tests.integration.test_webhooks import Receiver, start_receiver
from tests.support.cloud import Cloud
from tests.support.simzone import IMAGE, SimZone, build, http_files


@pytest.fixture(scope="module")
def sim(cloud: Cloud, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimZone]:
    with http_files({"sim.qcow2": IMAGE}, tmp_path_factory.mktemp("alertfiles")) as url:
        yield build(
            cloud,
            tmp_path_factory.mktemp("alertwork"),
            url,
            hosts=1,
            cpus=2,
            cpu_mhz=1000,
            memory_mib=8192,
            offering={"cpunumber": 2, "cpuspeed": 1000, "memory": 512},
        )


@pytest.fixture(scope="module")
def admin_hook(cloud: Cloud) -> Iterator[Receiver]:
    rec = start_receiver()
    hook = cloud.call("createWebhook", name=uniq("ops"), payloadurl=rec.url, scope="Global")
    yield rec
    cloud.call("deleteWebhook", id=hook["webhook"]["id"])
    assert rec.server is not None
    rec.server.shutdown()
    rec.server.server_close()


def alerts(cloud: Cloud, **params: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = cloud.call("listAlerts", **params).get("alert", [])
    return found


def wait_alert(cloud: Cloud, pred: Any, timeout: float = 20, **params: Any) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for alert in alerts(cloud, **params):
            if pred(alert):
                return alert
        time.sleep(0.2)
    raise AssertionError(f"no such alert: {alerts(cloud, **params)}")


def test_internal_job_failure_raises_an_alert_on_the_bus(
    cloud: Cloud, sim: SimZone, admin_hook: Receiver
) -> None:
    tenant = make_tenant(cloud)
    mock = sim.call(
        "configureSimulator", name="StartCommand", value="result:fail", zoneid=sim.zone["id"]
    )["simulatormock"]
    try:
        job = sim.deploy(tenant.keys)
    finally:
        sim.call("cleanupSimulatorMock", id=mock["id"])
    assert job["jobstatus"] == 2 and job["jobresult"]["errorcode"] == 530
    alert = wait_alert(cloud, lambda a: job["jobid"] in a["description"], type="100")
    assert (alert["type"], alert["name"]) == (100, "ALERT.ASYNCJOB.FAILURE")
    assert alert["sent"]
    got = admin_hook.wait_for(
        lambda evs: any(e["category"] == "AlertEvent" and job["jobid"] in e["subject"] for e in evs)
    )
    body = next(e for e in got if e["category"] == "AlertEvent" and job["jobid"] in e["subject"])
    assert body["event"] == "ALERT.ASYNCJOB.FAILURE" and body["alertid"] == alert["id"]
    # the tenant's own stream of events never carries operator alerts
    assert "listAlerts" not in {a["name"] for a in tenant.call("listApis")["api"]}


def test_cluster_over_cpu_threshold_raises_an_alert(cloud: Cloud, sim: SimZone) -> None:
    cloud.call("updateConfiguration", name="capacity.check.period", value="1000")
    try:
        job = sim.deploy()  # 2 x 1000 MHz of a 2 x 1000 MHz host: 100 % > 75 %
        assert job["jobstatus"] == 1, job
        name = sim.cluster["name"]
        alert = wait_alert(cloud, lambda a: name in a["description"], type="1")
        assert alert["name"] == "ALERT.CPU" and "above 75%" in alert["description"]
        assert not [a for a in alerts(cloud, type="0") if name in a["description"]]
    finally:
        cloud.call("resetConfiguration", name="capacity.check.period")


def test_archive_and_delete_and_bad_input(cloud: Cloud, sim: SimZone) -> None:
    assert [t["name"] for t in cloud.call("listAlertTypes")["alerttype"]][:2] == [
        "ALERT.MEMORY",
        "ALERT.CPU",
    ]
    name = sim.cluster["name"]
    alert = wait_alert(cloud, lambda a: name in a["description"], type="1")
    missing = "0b5c5a40-0000-4000-8000-000000000000"
    code, _ = error(cloud.signed("archiveAlerts", ids=f"{alert['id']},{missing}"), "archiveAlerts")
    assert code == 530
    assert alerts(cloud, id=alert["id"]) and alert["id"] in {a["id"] for a in alerts(cloud)}
    code, _ = error(cloud.signed("deleteAlerts"), "deleteAlerts")
    assert code == 431
    tenant = make_tenant(cloud)
    code, _ = error(tenant.raw("deleteAlerts", ids=alert["id"]), "deleteAlerts")
    assert code == 432
    cloud.call("archiveAlerts", ids=alert["id"])
    assert alert["id"] not in {a["id"] for a in alerts(cloud)}
    assert alerts(cloud, id=alert["id"])  # named by id, an archived alert still shows
    code, _ = error(cloud.signed("deleteAlerts", ids=alert["id"]), "deleteAlerts")
    assert code == 530  # archived alerts are not deleted, as CloudStack
    assert alerts(cloud, id=alert["id"])


def test_host_disconnected_then_down_raises_alerts(
    kcloud: Cloud,  # noqa: F811 (the fixture imported above)
    site: Site,  # noqa: F811
    agents: list[AgentProc],  # noqa: F811
    tmp_path: Path,
) -> None:
    """A real agent (sim driver) is killed: the heartbeat monitor's Disconnected and Down
    transitions each raise an ALERT.COMPUTE.HOST alert naming the host."""
    host = add_kvm_host(kcloud, site, "10.77.9.21")
    agent = start_agent(agents, kcloud, tmp_path, host["agenttoken"])
    wait_state(kcloud, host["id"], "Up", 30)
    assert not [a for a in alerts(kcloud, type="7") if host["id"] in a["description"]]
    agent.kill9()
    wait_state(kcloud, host["id"], "Down", 20)
    found = wait_alert(
        kcloud, lambda a: host["id"] in a["description"] and "Down" in a["description"], type="7"
    )
    assert found["name"] == "ALERT.COMPUTE.HOST"
    assert [
        a for a in alerts(kcloud, type="7") if f"{host['id']}) is Disconnected" in a["description"]
    ]
