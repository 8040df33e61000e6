"""VM statistics: agents push samples, the server keeps the latest and cumulative totals,
and listVirtualMachines shows CloudStack's stats fields.

The server is this module's own: ``vm.stats.interval`` is set to half a second before any
agent registers (an agent learns the interval when it registers).
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_agent import AgentProc, KvmZone, kvm_zone, wait_state
from tests.integration.test_kvm_vms import (  # noqa: F401  (fixtures)
    host_netns,
    job,
    kvm,
    tiny,
)
from tests.support.cloud import Cloud, make_cloud
from tests.support.simzone import IMAGE, build, http_files

STATS = (
    "cpuused",
    "networkkbsread",
    "networkkbswrite",
    "diskkbsread",
    "diskkbswrite",
    "diskioread",
    "diskiowrite",
    "memorykbs",
)


@pytest.fixture(scope="module")
def scloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    c = make_cloud(tmp_path_factory.mktemp("stats-cloud"))
    c.start()
    try:
        c.call("updateConfiguration", name="vm.stats.interval", value="500")
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def kz(scloud: Cloud, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KvmZone]:
    agents: list[AgentProc] = []
    try:
        yield kvm_zone(scloud, agents, tmp_path_factory.mktemp("stats-kz"), "10.79.0.11")
    finally:
        for agent in agents:
            agent.stop()


def listed(cloud: Cloud, vm_id: str) -> dict[str, Any]:
    (vm,) = cloud.call("listVirtualMachines", id=vm_id, listall=True)["virtualmachine"]
    return dict(vm)


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout} s")


def totals(cloud: Cloud, vm_id: str) -> dict[str, int]:
    """The cumulative counters metering will read, straight from the database."""
    with sqlite3.connect(f"file:{cloud.data_dir / 'cumulo.db'}?mode=ro", uri=True) as conn:
        conn.row_factory = sqlite3.Row
        row = conn.execute(
            "SELECT s.* FROM vm_stats s JOIN vm_instances v ON v.id = s.vm_id WHERE v.uuid = ?",
            (vm_id,),
        ).fetchone()
    assert row is not None, "no stats row"
    return {k: int(row[k]) for k in row.keys() if k.startswith("total_")}  # noqa: SIM118


def cpu(vm: dict[str, Any]) -> float:
    return float(str(vm.get("cpuused", "0%"))[:-1])


def job_ok(cloud: Cloud, cmd: str, **params: Any) -> dict[str, Any]:
    done = cloud.wait_job(cloud.call(cmd, **params)["jobid"], timeout=60)
    assert done["jobstatus"] == 1, done
    return done


def test_an_agent_pushes_stats_that_list_virtual_machines_shows(scloud: Cloud, kz: KvmZone) -> None:
    result = kz.deploy(scloud)
    assert result["jobstatus"] == 1, result
    vm = result["jobresult"]["virtualmachine"]
    wait_until(lambda: cpu(listed(scloud, vm["id"])) > 0, 20, "two samples (CPU use)")
    first = listed(scloud, vm["id"])
    assert set(STATS) <= set(first), first
    assert re.fullmatch(r"\d{1,3}\.\d\d%", first["cpuused"]), first["cpuused"]
    assert 0.0 < float(first["cpuused"][:-1]) <= 100.0
    assert first["memorykbs"] == 256 * 1024  # the offering's 256 MiB
    wait_until(
        lambda: listed(scloud, vm["id"])["networkkbsread"] > first["networkkbsread"],
        10,
        "counters grow",
    )

    before = totals(scloud, vm["id"])
    job_ok(scloud, "stopVirtualMachine", id=vm["id"])
    stopped = totals(scloud, vm["id"])
    assert all(stopped[k] >= before[k] for k in before)
    shown = listed(scloud, vm["id"])  # what it used stays; no CPU or memory use while stopped
    assert "cpuused" not in shown and "memorykbs" not in shown
    assert shown["networkkbsread"] >= first["networkkbsread"]
    job_ok(scloud, "startVirtualMachine", id=vm["id"])  # counters restart at zero on the host
    wait_until(
        lambda: totals(scloud, vm["id"])["total_disk_read_ops"] > stopped["total_disk_read_ops"],
        20,
        "samples after the restart",
    )
    after = totals(scloud, vm["id"])
    assert all(after[k] >= stopped[k] for k in stopped), "totals never go down"


def test_simulated_hosts_are_sampled_by_the_server(scloud: Cloud, tmp_path: Path) -> None:
    with http_files({"sim.qcow2": IMAGE}, tmp_path) as url:
        zone = build(scloud, tmp_path, url, hosts=1)
    done = zone.deploy()
    assert done["jobstatus"] == 1, done
    vm = done["jobresult"]["virtualmachine"]
    wait_until(lambda: listed(scloud, vm["id"]).get("diskioread", 0) > 0, 20, "sampled")
    shown = listed(scloud, vm["id"])
    assert shown["memorykbs"] == 512 * 1024
    assert shown["networkkbswrite"] >= 0 and shown["cpuused"].endswith("%")


def test_list_virtual_machines_metrics_derives_cloudstack_totals(
    scloud: Cloud, kz: KvmZone
) -> None:
    result = kz.deploy(scloud)
    assert result["jobstatus"] == 1, result
    vm = result["jobresult"]["virtualmachine"]
    wait_until(lambda: listed(scloud, vm["id"]).get("diskioread", 0) > 0, 20, "sampled")
    body = scloud.call("listVirtualMachinesMetrics", id=vm["id"], listall=True)
    assert body["count"] == 1
    (metrics,) = body["virtualmachine"]
    plain = listed(scloud, vm["id"])
    assert metrics["id"] == vm["id"] and metrics["state"] == "Running"
    assert metrics["cputotal"] == "0.5 Ghz"  # 1 vCPU x 500 MHz
    assert metrics["memorytotal"] == "0.25 GiB"  # 256 MiB
    for field in ("networkread", "networkwrite", "diskread", "diskwrite"):
        assert re.fullmatch(r"\d+\.\d\d MiB", metrics[field]), metrics[field]
    assert metrics["diskiopstotal"] >= metrics["diskioread"] >= 0
    assert metrics["diskiopstotal"] == metrics["diskioread"] + metrics["diskiowrite"]
    assert plain["diskioread"] >= metrics["diskioread"]  # sampled again meanwhile, never less
    missing = scloud.signed("listVirtualMachinesMetrics", id="not-a-uuid")
    assert missing.status_code == 431


@pytest.mark.vm
@pytest.mark.net
@pytest.mark.slow
def test_a_real_qemu_vm_reports_its_counters(
    kvm: tuple[Cloud, dict[str, Any], AgentProc, Path, Path],  # noqa: F811
) -> None:
    """The QEMU driver's counters (/proc CPU time, QMP block stats, tap bytes) reach the API."""
    cloud, ctx, agent, _, _ = kvm
    cloud.call("updateConfiguration", name="vm.stats.interval", value="1000")
    agent.stop()  # the interval is told at registration: dial in again
    agent.start()
    wait_state(cloud, ctx["host"]["id"], "Up", 60)
    vm = job(
        cloud,
        "deployVirtualMachine",
        zoneid=ctx["zone"]["id"],
        templateid=ctx["template"]["id"],
        serviceofferingid=ctx["offering"]["id"],
    )["jobresult"]["virtualmachine"]
    wait_until(lambda: listed(cloud, vm["id"]).get("diskkbsread", 0) > 0, 60, "disk reads")
    wait_until(lambda: cpu(listed(cloud, vm["id"])) > 0, 30, "CPU use")
    shown = listed(cloud, vm["id"])
    assert shown["memorykbs"] > 0 and shown["diskioread"] > 0
    assert set(STATS) <= set(shown)
