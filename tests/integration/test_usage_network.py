"""Usage of port-forwarding and load-balancer rules through the real `cs` client on a
simulated zone with networking: rules created, one deleted directly, one removed with its
address (disassociateIpAddress), usage generated for the last hour and listed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.integration.tenants import client, make_domain, make_tenant, uniq
from tests.support.cloud import Cloud
from tests.support.netzone import NetZone, add_networking
from tests.support.simzone import IMAGE, build, http_files

FORMAT = "%Y-%m-%d %H:%M:%S"


@pytest.fixture(scope="module")
def net(cloud: Cloud, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetZone]:
    root = tmp_path_factory.mktemp("usagenetfiles")
    with http_files({"sim.qcow2": IMAGE}, root) as url:
        sim = build(
            cloud,
            tmp_path_factory.mktemp("usagenet"),
            url,
            offering={"cpunumber": 1, "cpuspeed": 100, "memory": 64},
        )
        yield add_networking(sim, vnis=(7600, 7609), public=(200, 220))


def usage(cs: Any, period: dict[str, str], type: int, usageid: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = cs.listUsageRecords(**period, type=type, usageid=usageid).get(
        "usagerecord", []
    )
    return found


def secs(records: list[dict[str, Any]]) -> int:
    """Whole seconds of the one record (``rawusage`` is hours rounded to 6 digits)."""
    assert len(records) == 1, records
    return round(float(records[0]["rawusage"]) * 3600)


def test_rules_are_metered_until_deleted_directly_or_with_their_address(
    cloud: Cloud, net: NetZone
) -> None:
    tenant = make_tenant(cloud, make_domain(cloud)["id"])
    cs = client(cloud, tenant.keys)
    offering = cs.listNetworkOfferings(name="DefaultIsolatedNetworkOfferingWithSourceNatService")
    network = cs.createNetwork(
        name=uniq("net"),
        networkofferingid=offering["networkoffering"][0]["id"],
        zoneid=net.sim.zone["id"],
        gateway="10.71.0.1",
        netmask="255.255.255.0",
    )["network"]
    deployed = net.sim.deploy(tenant.keys, networkids=network["id"], name=uniq("vm"))
    assert deployed["jobstatus"] == 1, deployed
    vm = deployed["jobresult"]["virtualmachine"]

    def new_ip() -> dict[str, Any]:
        ip: dict[str, Any] = cs.associateIpAddress(networkid=network["id"], fetch_result=True)[
            "ipaddress"
        ]
        return ip

    def forward(ip: dict[str, Any]) -> dict[str, Any]:
        rule: dict[str, Any] = cs.createPortForwardingRule(
            ipaddressid=ip["id"], protocol="tcp", publicport=2222, privateport=22,
            virtualmachineid=vm["id"], fetch_result=True,
        )["portforwardingrule"]  # fmt: skip
        return rule

    kept_ip, gone_ip = new_ip(), new_ip()
    kept_pf, gone_pf = forward(kept_ip), forward(gone_ip)
    lb = cs.createLoadBalancerRule(
        name=uniq("lb"), publicipid=kept_ip["id"], publicport=80, privateport=8080,
        algorithm="roundrobin", fetch_result=True,
    )["loadbalancer"]  # fmt: skip
    time.sleep(2.2)
    cs.deleteLoadBalancerRule(id=lb["id"], fetch_result=True)
    cs.disassociateIpAddress(id=gone_ip["id"], fetch_result=True)  # its PF rule goes with it
    time.sleep(2.2)

    admin = client(cloud, cloud.admin)
    now = datetime.now(UTC).replace(microsecond=0)
    period = {
        "startdate": (now - timedelta(hours=1)).strftime(FORMAT),
        "enddate": now.strftime(FORMAT),
    }
    assert admin.generateUsageRecords(**period)["success"] in (True, "true")
    lb_rec = usage(admin, period, 11, lb["id"])
    kept_rec = usage(admin, period, 12, kept_pf["id"])
    gone_rec = usage(admin, period, 12, gone_pf["id"])
    # Closed intervals: about 2 s each; the kept rule is still open at the period's end (over
    # 4.4 s after it was made, less up to a second of truncating `now` to whole seconds).
    assert 2 <= secs(lb_rec) < 60
    assert 2 <= secs(gone_rec) < 60
    assert secs(kept_rec) >= 3 and secs(kept_rec) > secs(gone_rec)
    assert secs(kept_rec) < 120
    for rec in lb_rec + kept_rec + gone_rec:
        assert rec["accountid"] == tenant.account_id and rec["account"] == tenant.name
        assert rec["domainid"] == tenant.domain_id and rec["zoneid"] == net.sim.zone["id"]
    assert lb_rec[0]["description"] == f"Load Balancing Policy: {lb['name']} usage time"
    assert kept_rec[0]["usagetype"] == 12 and lb_rec[0]["usagetype"] == 11
    # The firewall rules the PF/LB rules opened are not billed: only the rules themselves.
    pf_ids = {
        r["usageid"]
        for r in admin.listUsageRecords(**period, type=12, accountid=tenant.account_id)[
            "usagerecord"
        ]
    }
    assert pf_ids == {kept_pf["id"], gone_pf["id"]}
    lb_ids = {
        r["usageid"]
        for r in admin.listUsageRecords(**period, type=11, accountid=tenant.account_id)[
            "usagerecord"
        ]
    }
    assert lb_ids == {lb["id"]}
    # The VM's NIC on the network (type 13): billed to the VM by the network's offering.
    nic_rec = usage(admin, period, 13, vm["id"])
    assert 3 <= secs(nic_rec) < 300
    assert nic_rec[0]["offeringid"] == offering["networkoffering"][0]["id"]
    assert nic_rec[0]["virtualmachineid"] == vm["id"]


def last_hour() -> dict[str, str]:
    now = datetime.now(UTC).replace(microsecond=0)
    return {
        "startdate": (now - timedelta(hours=1)).strftime(FORMAT),
        "enddate": now.strftime(FORMAT),
    }


def test_expunge_and_delete_network_close_every_interval(cloud: Cloud, net: NetZone) -> None:
    """A VM expunged (its PF rule, NIC) and then its network deleted (an LB rule on the
    network's address): billed up to then, nothing in the next period."""
    tenant = make_tenant(cloud, make_domain(cloud)["id"])
    cs = client(cloud, tenant.keys)
    offering = cs.listNetworkOfferings(name="DefaultIsolatedNetworkOfferingWithSourceNatService")
    network = cs.createNetwork(
        name=uniq("net"),
        networkofferingid=offering["networkoffering"][0]["id"],
        zoneid=net.sim.zone["id"],
        gateway="10.72.0.1",
        netmask="255.255.255.0",
    )["network"]
    deployed = net.sim.deploy(tenant.keys, networkids=network["id"], name=uniq("vm"))
    assert deployed["jobstatus"] == 1, deployed
    vm = deployed["jobresult"]["virtualmachine"]
    ip = cs.associateIpAddress(networkid=network["id"], fetch_result=True)["ipaddress"]
    pf = cs.createPortForwardingRule(
        ipaddressid=ip["id"], protocol="tcp", publicport=2222, privateport=22,
        virtualmachineid=vm["id"], fetch_result=True,
    )["portforwardingrule"]  # fmt: skip
    lb = cs.createLoadBalancerRule(
        name=uniq("lb"), publicipid=ip["id"], publicport=80, privateport=8080,
        algorithm="roundrobin", fetch_result=True,
    )["loadbalancer"]  # fmt: skip
    time.sleep(1.2)
    admin = client(cloud, cloud.admin)
    admin.destroyVirtualMachine(id=vm["id"], expunge=True, fetch_result=True)
    cs.deleteNetwork(id=network["id"], fetch_result=True)
    assert cs.listNetworks(id=network["id"]).get("network", []) == []
    time.sleep(1.2)
    first = last_hour()
    admin.generateUsageRecords(**first)
    time.sleep(2.2)
    # The next period, from where the first ended: closed intervals bill nothing in it.
    later = {"startdate": first["enddate"], "enddate": last_hour()["enddate"]}
    assert later["startdate"] < later["enddate"]
    admin.generateUsageRecords(**later)
    for type_, usageid in ((12, pf["id"]), (11, lb["id"]), (13, vm["id"])):
        assert 1 <= secs(usage(admin, first, type_, usageid)) < 60, type_
        assert usage(admin, later, type_, usageid) == [], type_
