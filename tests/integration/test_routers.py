"""Virtual routers on a simulated Advanced zone: placement on the first VM's host, the
``domainrouter`` object of listRouters, stopRouter/startRouter/rebootRouter/destroyRouter for
admins (users are refused), and the router gone once its network has no VM left. Simulated
hosts record the network commands and apply nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.tenants import Tenant, error, make_domain, make_tenant, uniq
from tests.support.cloud import Cloud
from tests.support.netzone import NetZone, add_networking
from tests.support.simzone import IMAGE, build, http_files

DEFAULT_ISOLATED = "DefaultIsolatedNetworkOfferingWithSourceNatService"


@pytest.fixture(scope="module")
def net(cloud: Cloud, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetZone]:
    root = tmp_path_factory.mktemp("routerfiles")
    with http_files({"sim.qcow2": IMAGE}, root) as url:
        sim = build(
            cloud, tmp_path_factory.mktemp("routers"), url, hosts=2, cpus=16, memory_mib=16384,
            offering={"cpunumber": 1, "cpuspeed": 100, "memory": 64},
        )  # fmt: skip
        yield add_networking(sim, vnis=(7200, 7209), public=(70, 90))


@pytest.fixture(scope="module")
def tenant(cloud: Cloud) -> Tenant:
    return make_tenant(cloud, make_domain(cloud)["id"])


def routers(cloud: Cloud, **params: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = cloud.call("listRouters", listall=True, **params).get(
        "router", []
    )
    return found


def run(cloud: Cloud, cmd: str, **params: Any) -> dict[str, Any]:
    done = cloud.wait_job(cloud.call(cmd, **params)["jobid"])
    assert done["jobstatus"] == 1, done
    result: dict[str, Any] = done["jobresult"]["router"]
    return result


def test_router_follows_the_network_and_admins_drive_it(
    net: NetZone, tenant: Tenant, cloud: Cloud
) -> None:
    offering = cloud.call("listNetworkOfferings", name=DEFAULT_ISOLATED)["networkoffering"][0]
    network = tenant.call(
        "createNetwork", name=uniq("rn"), displaytext="r", networkofferingid=offering["id"],
        zoneid=net.sim.zone["id"], gateway="10.60.0.1", netmask="255.255.255.0",
    )["network"]  # fmt: skip
    assert routers(cloud, networkid=network["id"]) == []  # nothing runs yet: no router
    job = net.sim.deploy(tenant.keys, networkids=network["id"], name=uniq("rvm"))
    assert job["jobstatus"] == 1, job
    vm = cloud.call("listVirtualMachines", id=job["jobresult"]["virtualmachine"]["id"],
                    listall=True)["virtualmachine"][0]  # the admin's view has the host  # fmt: skip
    [router] = routers(cloud, networkid=network["id"])
    snat = tenant.call("listPublicIpAddresses", associatednetworkid=network["id"])
    assert router["state"] == "Running" and router["role"] == "VIRTUAL_ROUTER"
    assert router["hostid"] == vm["hostid"]
    assert router["guestnetworkid"] == network["id"]
    assert router["guestipaddress"] == "10.60.0.1" and router["guestnetmask"] == "255.255.255.0"
    assert router["publicip"] == snat["publicipaddress"][0]["ipaddress"]
    assert router["account"] == tenant.account["name"] and router["isredundantrouter"] is False
    assert routers(cloud, id=router["id"], state="Running") == [router]
    assert routers(cloud, hostid=vm["hostid"], networkid=network["id"]) == [router]

    # a user may not see or drive routers (admin commands)
    assert error(tenant.raw("listRouters"), "listRouters")[0] == 432
    assert error(tenant.raw("stopRouter", id=router["id"]), "stopRouter")[0] == 432
    assert routers(cloud, id=router["id"])[0]["state"] == "Running"

    stopped = run(cloud, "stopRouter", id=router["id"])
    assert stopped["state"] == "Stopped" and "hostid" not in stopped
    started = run(cloud, "startRouter", id=router["id"])
    assert started["state"] == "Running" and started["hostid"] == vm["hostid"]
    rebooted = run(cloud, "rebootRouter", id=router["id"])
    assert rebooted["state"] == "Running" and rebooted["id"] == router["id"]
    gone = run(cloud, "destroyRouter", id=router["id"])
    assert gone["id"] == router["id"] and gone["state"] == "Destroyed"
    assert routers(cloud, id=router["id"]) == []

    # a VM start brings a (new) router back; the last VM gone takes it away
    cloud.wait_job(tenant.call("stopVirtualMachine", id=vm["id"])["jobid"])
    assert routers(cloud, networkid=network["id"]) == []
    cloud.wait_job(tenant.call("startVirtualMachine", id=vm["id"])["jobid"])
    [again] = routers(cloud, networkid=network["id"])
    assert again["id"] != router["id"] and again["state"] == "Running"
    cloud.wait_job(cloud.call("destroyVirtualMachine", id=vm["id"], expunge=True)["jobid"])
    assert routers(cloud, networkid=network["id"]) == []


def test_unknown_router_is_refused(cloud: Cloud) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    for cmd in ("stopRouter", "startRouter", "rebootRouter", "destroyRouter"):
        code, _ = error(cloud.signed(cmd, cloud.admin, id=missing), cmd)
        assert code == 431
