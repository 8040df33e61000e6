"""Injected host faults (configureSimulator) on start, stop and template copy, and racing
deploys: every job ends with a clear error, the VM lands in a correct state, and capacity,
pool allocation and resource counts are given back exactly."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest

from tests.integration.tenants import Tenant, make_domain, make_tenant
from tests.support.cloud import Cloud
from tests.support.simzone import IMAGE, SimZone, build, http_files

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with http_files({"sim.qcow2": IMAGE}, tmp_path_factory.mktemp("faultfiles")) as url:
        yield url


@pytest.fixture(scope="module")
def sim(cloud: Cloud, base_url: str, tmp_path_factory: pytest.TempPathFactory) -> SimZone:
    return build(cloud, tmp_path_factory.mktemp("faultwork"), base_url, hosts=2)


@pytest.fixture(scope="module")
def tenant(cloud: Cloud) -> Tenant:
    return make_tenant(cloud, make_domain(cloud)["id"])


@contextmanager
def mock(sim: SimZone, name: str, value: str, **scope: Any) -> Iterator[dict[str, Any]]:
    where = {"zoneid": sim.zone["id"], **scope}
    made = sim.call("configureSimulator", name=name, value=value, **where)["simulatormock"]
    try:
        yield made
    finally:
        sim.call("cleanupSimulatorMock", id=made["id"])


@contextmanager
def setting(cloud: Cloud, name: str, value: str) -> Iterator[None]:
    old = cloud.call("listConfigurations", name=name)["configuration"][0]["value"]
    cloud.call("updateConfiguration", name=name, value=value)
    try:
        yield
    finally:
        cloud.call("updateConfiguration", name=name, value=old)


def snapshot(sim: SimZone, tenant: Tenant) -> dict[str, Any]:
    account = sim.call("listAccounts", tenant.keys)["account"][0]
    pool = sim.call("listStoragePools", id=sim.pool["id"])["storagepool"][0]
    return {
        "capacity": sim.capacity_used(),
        "pool": pool["disksizeallocated"],
        **{k: account[k] for k in ("vmtotal", "cputotal", "memorytotal", "volumetotal")},
        "primary": account["primarystoragetotal"],
    }


def failed(job: dict[str, Any]) -> tuple[int, str]:
    assert job["jobstatus"] == 2, job
    return int(job["jobresult"]["errorcode"]), str(job["jobresult"]["errortext"])


def vm_of(sim: SimZone, job: dict[str, Any]) -> dict[str, Any]:
    return sim.vm(job["jobinstanceid"])


def test_start_failing_everywhere_fails_the_deploy_and_gives_all_back(
    sim: SimZone, tenant: Tenant
) -> None:
    before = snapshot(sim, tenant)
    with mock(sim, "StartCommand", "result:fail"):
        job = sim.deploy(tenant.keys)
    code, text = failed(job)
    assert code == 530 and "Simulated StartCommand failed" in text
    vm = vm_of(sim, job)
    assert vm["state"] == "Error" and "hostid" not in vm
    assert snapshot(sim, tenant) == before


def test_start_failing_on_one_host_moves_to_the_other(sim: SimZone, tenant: Tenant) -> None:
    bad, good = sim.hosts[0], sim.hosts[1]
    with mock(sim, "StartCommand", "result:fail", hostid=bad["id"]):
        for _ in range(3):
            job = sim.deploy(tenant.keys)
            assert job["jobstatus"] == 1, job
            assert vm_of(sim, job)["hostid"] == good["id"]


def test_admin_pinned_host_failing_is_not_retried_elsewhere(sim: SimZone, tenant: Tenant) -> None:
    bad = sim.hosts[0]
    before = snapshot(sim, tenant)
    with mock(sim, "StartCommand", "result:fail", hostid=bad["id"]) as made:
        job = sim.deploy(tenant.keys, startvm=False)
        vm_id = job["jobresult"]["virtualmachine"]["id"]
        start = sim.call("startVirtualMachine", id=vm_id, hostid=bad["id"])
        code, _ = failed(sim.cloud.wait_job(start["jobid"]))
        assert code == 530
        assert sim.vm(vm_id)["state"] == "Stopped"  # an existing VM goes back to Stopped
        assert sim.call("querySimulatorMock", id=made["id"])["simulatormock"]["name"] == (
            "StartCommand"
        )
    after = snapshot(sim, tenant)
    assert after["capacity"] == before["capacity"] and after["pool"] == before["pool"]


def test_counted_fault_applies_only_count_times(sim: SimZone, tenant: Tenant) -> None:
    with mock(sim, "StartCommand", "result:fail", count=1) as made:
        with setting(sim.cloud, "start.retry", "0"):
            first = sim.deploy(tenant.keys)
            second = sim.deploy(tenant.keys)
        assert failed(first)[0] == 530
        assert second["jobstatus"] == 1, second
        left = sim.call("querySimulatorMock", id=made["id"])["simulatormock"]
        assert left.get("count", 0) == 0


def test_lost_start_answer_is_settled_by_asking_the_host(sim: SimZone, tenant: Tenant) -> None:
    before = snapshot(sim, tenant)
    with mock(sim, "StartCommand", "timeout:true"):
        job = sim.deploy(tenant.keys)
    assert job["jobstatus"] == 1, job  # the host did start it: asked, and running
    vm = vm_of(sim, job)
    assert vm["state"] == "Running"
    assert snapshot(sim, tenant)["vmtotal"] == before["vmtotal"] + 1


def test_slow_start_waits_and_a_too_slow_one_times_out_cleanly(
    sim: SimZone, tenant: Tenant
) -> None:
    with mock(sim, "StartCommand", "wait:400"):
        began = time.monotonic()
        job = sim.deploy(tenant.keys)
        assert job["jobstatus"] == 1 and time.monotonic() - began >= 0.4
    before = snapshot(sim, tenant)
    with (
        setting(sim.cloud, "wait", "1"),
        setting(sim.cloud, "start.retry", "1"),
        mock(sim, "StartCommand", "wait:1500"),
    ):
        job = sim.deploy(tenant.keys)
    code, text = failed(job)
    assert code == 530 and "timed out" in text
    assert vm_of(sim, job)["state"] == "Error"
    assert snapshot(sim, tenant) == before


def test_stop_failure_keeps_the_vm_running_and_its_capacity(sim: SimZone, tenant: Tenant) -> None:
    vm = sim.deploy(tenant.keys)["jobresult"]["virtualmachine"]
    before = snapshot(sim, tenant)
    with mock(sim, "StopCommand", "result:fail"):
        job = sim.cloud.wait_job(sim.call("stopVirtualMachine", tenant.keys, id=vm["id"])["jobid"])
    code, text = failed(job)
    assert code == 530 and "Failed to stop" in text
    assert sim.vm(vm["id"])["state"] == "Running"
    assert snapshot(sim, tenant) == before
    with mock(sim, "StopCommand", "timeout:true"):  # stopped, answer lost: asked, stopped
        job = sim.cloud.wait_job(sim.call("stopVirtualMachine", tenant.keys, id=vm["id"])["jobid"])
    assert job["jobstatus"] == 1, job
    assert sim.vm(vm["id"])["state"] == "Stopped"
    cpu_after = snapshot(sim, tenant)["capacity"]["1"]
    assert cpu_after == before["capacity"]["1"] - 500


def test_template_copy_failure_releases_the_pool(
    sim: SimZone, tenant: Tenant, base_url: str
) -> None:
    fresh = sim.register_template(base_url)  # never copied to the pool yet
    before = snapshot(sim, tenant)
    with mock(sim, "CopyCommand", "result:fail"), setting(sim.cloud, "start.retry", "1"):
        job = sim.deploy(tenant.keys, templateid=fresh["id"])
    code, text = failed(job)
    assert code == 530 and "CopyCommand" in text
    assert vm_of(sim, job)["state"] == "Error"
    assert snapshot(sim, tenant) == before


def test_bad_mock_values_are_refused(sim: SimZone) -> None:
    for value in ("wait:soon", "result:maybe", "colour:blue"):
        resp = sim.cloud.signed(
            "configureSimulator", name="StartCommand", value=value, zoneid=sim.zone["id"]
        )
        assert resp.json()["configuresimulatorresponse"]["errorcode"] == 431


def test_fifty_racing_deploys_fill_exactly_forty_slots(
    cloud: Cloud, base_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    zone = build(
        cloud,
        tmp_path_factory.mktemp("race"),
        base_url,
        hosts=4,
        cpus=10,
        cpu_mhz=100,
        memory_mib=65536,
        offering={"cpunumber": 1, "cpuspeed": 100, "memory": 128},
    )
    tenant = make_tenant(cloud, make_domain(cloud)["id"])
    for rtype in (0, 2, 8, 9, 10):
        cloud.call("updateResourceLimit", resourcetype=rtype, max=-1, domainid=tenant.domain_id)
        cloud.call(
            "updateResourceLimit",
            resourcetype=rtype,
            max=-1,
            account=tenant.name,
            domainid=tenant.domain_id,
        )

    def deploy(_: int) -> dict[str, Any]:
        submitted = cloud.call(
            "deployVirtualMachine",
            tenant.keys,
            zoneid=zone.zone["id"],
            templateid=zone.template["id"],
            serviceofferingid=zone.offering["id"],
        )
        return cloud.wait_job(submitted["jobid"], tenant.keys, timeout=120)

    with ThreadPoolExecutor(max_workers=25) as pool:
        jobs = list(pool.map(deploy, range(50)))
    ok = [j for j in jobs if j["jobstatus"] == 1]
    bad = [j for j in jobs if j["jobstatus"] == 2]
    assert len(ok) == 40 and len(bad) == 10
    assert {j["jobresult"]["errorcode"] for j in bad} == {533}
    rows = cloud.call("listCapacity", zoneid=zone.zone["id"])["capacity"]
    cpu = next(r for r in rows if r["type"] == 1)
    assert int(cpu["capacityused"]) == int(cpu["capacitytotal"]) == 4000
    per_host = cloud.call("listHosts", clusterid=zone.cluster["id"])["host"]
    assert all(h["cpuallocatedvalue"] == 1000 for h in per_host), per_host
    account = cloud.call("listAccounts", tenant.keys)["account"][0]
    assert (account["vmtotal"], account["cputotal"], account["volumetotal"]) == (40, 40, 40)
    running = cloud.call("listVirtualMachines", tenant.keys, state="Running")
    assert running["count"] == 40
