"""Usage through the real `cs` client: a VM deployed, stopped and destroyed on a simulated
zone, its usage generated for the last hour and listed; who may call the usage commands."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cs import CloudStackException

from tests.integration.tenants import World, client, error, make_domain, make_tenant, make_world
from tests.support.cloud import Cloud
from tests.support.simzone import IMAGE, SimZone, build, http_files

FORMAT = "%Y-%m-%d %H:%M:%S"


@pytest.fixture(scope="module")
def sim(cloud: Cloud, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimZone]:
    root = tmp_path_factory.mktemp("usagefiles")
    with http_files({"sim.qcow2": IMAGE}, root) as url:
        yield build(cloud, tmp_path_factory.mktemp("usagework"), url, hosts=1)


@pytest.fixture(scope="module")
def world(cloud: Cloud) -> World:
    return make_world(cloud)


@pytest.fixture(scope="module")
def used_vm(sim: SimZone, world: World) -> dict[str, Any]:
    """A VM that ran about two seconds, then sat stopped over two, then was destroyed (records
    hold whole seconds: the stopped time must outweigh a second lost to rounding)."""
    user = world.user.cs
    job = sim.deploy(world.user.keys)
    assert job["jobstatus"] == 1, job
    vm: dict[str, Any] = job["jobresult"]["virtualmachine"]
    time.sleep(2.2)
    user.stopVirtualMachine(id=vm["id"], fetch_result=True)
    time.sleep(2.2)
    user.destroyVirtualMachine(id=vm["id"], fetch_result=True)
    return vm


def last_hour() -> dict[str, str]:
    now = datetime.now(UTC).replace(microsecond=0)
    return {
        "startdate": (now - timedelta(hours=1)).strftime(FORMAT),
        "enddate": now.strftime(FORMAT),
    }


def records(cs: Any, period: dict[str, str], **filters: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = cs.listUsageRecords(**period, **filters).get("usagerecord", [])
    return found


def test_generate_then_list_shows_running_and_allocated_hours(
    cloud: Cloud, used_vm: dict[str, Any], world: World
) -> None:
    admin = client(cloud, cloud.admin)
    period = last_hour()
    assert admin.generateUsageRecords(**period)["success"] in (True, "true")
    running = records(admin, period, type=1, usageid=used_vm["id"])
    allocated = records(admin, period, type=2, usageid=used_vm["id"])
    assert len(running) == 1 and len(allocated) == 1, (running, allocated)
    run, alloc = running[0], allocated[0]
    assert 2 / 3600 <= float(run["rawusage"]) < 60 / 3600
    assert float(run["rawusage"]) < float(alloc["rawusage"]) < 120 / 3600
    assert run["usage"] == f"{run['rawusage']} Hrs"
    for rec in (run, alloc):
        assert rec["virtualmachineid"] == used_vm["id"] and rec["name"] == used_vm["name"]
        assert rec["accountid"] == world.user.account_id and rec["account"] == world.user.name
        assert rec["domainid"] == world.user.domain_id
        assert rec["offeringid"] == used_vm["serviceofferingid"]
        assert rec["templateid"] == used_vm["templateid"]
        assert rec["zoneid"] == used_vm["zoneid"]
        assert rec["startdate"].startswith(period["startdate"].replace(" ", "T"))
    # The root volume, created with the VM, is metered too (type 6, with its size).
    volumes = records(admin, period, type=6, accountid=world.user.account_id)
    assert [v["size"] > 0 and "ROOT-" in v["description"] for v in volumes] == [True]
    # The same period again: the same records, not twice as many.
    admin.generateUsageRecords(**period)
    again = records(admin, period, type=1, usageid=used_vm["id"])
    assert [r["rawusage"] for r in again] == [run["rawusage"]]


def test_domain_admin_sees_only_its_domain(
    cloud: Cloud, used_vm: dict[str, Any], world: World
) -> None:
    period = last_hour()
    client(cloud, cloud.admin).generateUsageRecords(**period)
    mine = records(world.da.cs, period, usageid=used_vm["id"], type=2)
    assert [r["virtualmachineid"] for r in mine] == [used_vm["id"]]
    stranger = make_tenant(cloud, make_domain(cloud)["id"], account_type=2)
    assert records(stranger.cs, period, usageid=used_vm["id"], type=2) == []
    status, body = error(
        stranger.raw("listUsageRecords", domainid=world.domain["id"], **period), "listUsageRecords"
    )
    assert status == 531, body


def test_a_user_cannot_call_the_usage_commands(used_vm: dict[str, Any], world: World) -> None:
    period = last_hour()
    for command, params in (
        ("listUsageRecords", period),
        ("generateUsageRecords", period),
        ("removeRawUsageRecords", {"interval": "1"}),
        ("listUsageTypes", {}),
    ):
        status, _ = error(world.user.raw(command, **params), command)
        assert status == 432, command
    with pytest.raises(CloudStackException):
        world.da.cs.generateUsageRecords(**period)  # root admin only
    # Nothing was generated by the refused calls: no period ends at a refused call's time.


def test_usage_types_and_bad_input(cloud: Cloud) -> None:
    admin = client(cloud, cloud.admin)
    types = admin.listUsageTypes()["usagetype"]
    by_id = {t["usagetypeid"]: t for t in types}
    assert by_id[1]["name"] == "RUNNING_VM" and by_id[6]["description"] == "Volume Usage"
    now = datetime.now(UTC)
    future = {
        "startdate": now.strftime(FORMAT),
        "enddate": (now + timedelta(hours=2)).strftime(FORMAT),
    }
    status, _ = error(
        cloud.signed("generateUsageRecords", cloud.admin, **future), "generateUsageRecords"
    )
    assert status == 431
    assert records(admin, future) == []  # nothing was written for the refused period
    status, _ = error(
        cloud.signed("removeRawUsageRecords", cloud.admin, interval="0"), "removeRawUsageRecords"
    )
    assert status == 431
