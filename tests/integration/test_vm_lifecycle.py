"""The VM lifecycle on simulated hosts through the real `cs` client: deploy, start, stop,
reboot, destroy, recover, expunge; states, capacity and resource counts after each step."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.tenants import Tenant, error, make_domain, make_tenant
from tests.support.cloud import Cloud
from tests.support.simzone import IMAGE, SimZone, build, http_files

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def sim(cloud: Cloud, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimZone]:
    root = tmp_path_factory.mktemp("vmfiles")
    with http_files({"sim.qcow2": IMAGE}, root) as url:
        yield build(cloud, tmp_path_factory.mktemp("vmwork"), url)


@pytest.fixture(scope="module")
def tenant(cloud: Cloud) -> Tenant:
    return make_tenant(cloud, make_domain(cloud)["id"])


def counts(cloud: Cloud, tenant: Tenant) -> dict[str, int]:
    """The stored counts, as listAccounts shows them (storage in GiB)."""
    account = cloud.call("listAccounts", tenant.keys)["account"][0]
    names = {
        "user_vm": "vm",
        "volume": "volume",
        "cpu": "cpu",
        "memory": "memory",
        "primary_storage": "primarystorage",
    }
    return {name: int(account[f"{prefix}total"]) for name, prefix in names.items()}


def used(sim: SimZone) -> tuple[int, int]:
    caps = sim.capacity_used()
    return caps["1"], caps["0"]  # CPU MHz, memory bytes


def test_deploy_runs_the_vm_and_takes_capacity_and_counts(sim: SimZone, tenant: Tenant) -> None:
    cpu0, mem0 = used(sim)
    before = counts(sim.cloud, tenant)
    job = sim.deploy(tenant.keys, name="web-1", displayname="Web one")
    assert job["jobstatus"] == 1, job
    vm = job["jobresult"]["virtualmachine"]
    assert (vm["name"], vm["displayname"], vm["state"]) == ("web-1", "Web one", "Running")
    assert vm["zoneid"] == sim.zone["id"] and vm["templateid"] == sim.template["id"]
    assert vm["serviceofferingid"] == sim.offering["id"]
    assert (vm["cpunumber"], vm["cpuspeed"], vm["memory"]) == (1, 500, 512)
    assert vm["password"] and vm["passwordenabled"] is True  # shown once, on deploy
    assert "hostid" not in vm and "instancename" not in vm  # admin-only fields
    listed = sim.vm(vm["id"])
    assert listed["hostid"] in {h["id"] for h in sim.hosts}
    assert listed["instancename"].startswith("i-") and "password" not in listed
    assert used(sim) == (cpu0 + 500, mem0 + 512 * MIB)
    after = counts(sim.cloud, tenant)
    assert after["user_vm"] == before["user_vm"] + 1
    assert after["cpu"] == before["cpu"] + 1 and after["memory"] == before["memory"] + 512
    assert after["volume"] == before["volume"] + 1


def test_stop_start_reboot(sim: SimZone, tenant: Tenant) -> None:
    vm = sim.deploy(tenant.keys)["jobresult"]["virtualmachine"]
    cpu0, mem0 = used(sim)
    stopped = sim.cloud.wait_job(
        sim.call("stopVirtualMachine", tenant.keys, id=vm["id"])["jobid"], tenant.keys
    )
    assert stopped["jobresult"]["virtualmachine"]["state"] == "Stopped"
    assert used(sim) == (cpu0 - 500, mem0 - 512 * MIB)
    assert "hostid" not in sim.vm(vm["id"])
    started = sim.cloud.wait_job(
        sim.call("startVirtualMachine", tenant.keys, id=vm["id"])["jobid"], tenant.keys
    )
    assert started["jobresult"]["virtualmachine"]["state"] == "Running"
    assert used(sim) == (cpu0, mem0)
    rebooted = sim.cloud.wait_job(
        sim.call("rebootVirtualMachine", tenant.keys, id=vm["id"])["jobid"], tenant.keys
    )
    assert (
        rebooted["jobstatus"] == 1 and rebooted["jobresult"]["virtualmachine"]["state"] == "Running"
    )


def test_illegal_transitions_are_refused_at_once(sim: SimZone, tenant: Tenant) -> None:
    vm = sim.deploy(tenant.keys, startvm=False)["jobresult"]["virtualmachine"]
    assert vm["state"] == "Stopped"
    resp = sim.cloud.signed("rebootVirtualMachine", tenant.keys, id=vm["id"])
    code, body = error(resp, "rebootVirtualMachine")
    assert code == 431 and "Stopped" in body["errortext"]
    assert sim.vm(vm["id"], tenant.keys)["state"] == "Stopped"


def test_destroy_recover_expunge_gives_everything_back(
    sim: SimZone, tenant: Tenant, cloud: Cloud
) -> None:
    before = counts(cloud, tenant)
    cpu0, mem0 = used(sim)
    vm = sim.deploy(tenant.keys)["jobresult"]["virtualmachine"]
    job = cloud.wait_job(sim.call("destroyVirtualMachine", tenant.keys, id=vm["id"])["jobid"])
    assert job["jobresult"]["virtualmachine"]["state"] == "Destroyed"
    assert used(sim) == (cpu0, mem0)
    mid = counts(cloud, tenant)
    assert mid["user_vm"] == before["user_vm"] and mid["volume"] == before["volume"] + 1
    # Users do not see destroyed VMs; admins do, and may recover them.
    assert not sim.call("listVirtualMachines", tenant.keys, id=vm["id"]).get("virtualmachine")
    recovered = sim.call("recoverVirtualMachine", id=vm["id"])["virtualmachine"]
    assert recovered["state"] == "Stopped"
    assert counts(cloud, tenant)["user_vm"] == before["user_vm"] + 1
    job = cloud.wait_job(sim.call("destroyVirtualMachine", id=vm["id"], expunge=True)["jobid"])
    assert job["jobstatus"] == 1, job
    assert not sim.call("listVirtualMachines", id=vm["id"], listall=True).get("virtualmachine")
    after = counts(cloud, tenant)
    assert {k: after[k] for k in ("user_vm", "volume", "cpu", "memory", "primary_storage")} == {
        k: before[k] for k in ("user_vm", "volume", "cpu", "memory", "primary_storage")
    }


def test_user_may_not_expunge_without_the_setting(sim: SimZone, tenant: Tenant) -> None:
    vm = sim.deploy(tenant.keys, startvm=False)["jobresult"]["virtualmachine"]
    resp = sim.cloud.signed("destroyVirtualMachine", tenant.keys, id=vm["id"], expunge="true")
    assert error(resp, "destroyVirtualMachine")[0] == 531
    assert sim.vm(vm["id"], tenant.keys)["state"] == "Stopped"


def test_bad_deploys_are_refused_and_write_nothing(
    sim: SimZone, tenant: Tenant, cloud: Cloud
) -> None:
    before = counts(cloud, tenant)
    listed = len(sim.call("listVirtualMachines", tenant.keys).get("virtualmachine", []))
    bad: list[tuple[dict[str, Any], int]] = [
        ({"templateid": "7d6c0e3c-54c9-4f1f-8d89-000000000000"}, 431),
        ({"name": "9starts-with-digit"}, 431),
        ({"keypair": "no-such-key"}, 431),
        ({"userdata": "not base64!!"}, 431),
        ({"hostid": sim.hosts[0]["id"]}, 531),
    ]
    for params, code in bad:
        args = {
            "zoneid": sim.zone["id"],
            "templateid": sim.template["id"],
            "serviceofferingid": sim.offering["id"],
            **params,
        }
        resp = cloud.signed("deployVirtualMachine", tenant.keys, **args)
        assert error(resp, "deployVirtualMachine")[0] == code, params
    assert counts(cloud, tenant) == before
    assert len(sim.call("listVirtualMachines", tenant.keys).get("virtualmachine", [])) == listed


def test_name_must_be_unique_in_the_account(sim: SimZone, tenant: Tenant) -> None:
    sim.deploy(tenant.keys, name="twin", startvm=False)
    resp = sim.cloud.signed(
        "deployVirtualMachine",
        tenant.keys,
        zoneid=sim.zone["id"],
        templateid=sim.template["id"],
        serviceofferingid=sim.offering["id"],
        name="twin",
    )
    assert error(resp, "deployVirtualMachine")[0] == 431
