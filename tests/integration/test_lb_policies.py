# ruff: noqa: F811  (the ``net`` and ``tenant`` fixtures are imported and used by name)
"""Load balancer stickiness and health check policies through `cs` on a simulated zone, and
libcloud's CloudStack load balancer driver against the same rules: create, list, delete,
one policy of each kind per rule, bad input refused with its code and nothing written."""

from __future__ import annotations

from typing import Any

from libcloud.compute.base import NodeLocation
from libcloud.loadbalancer.base import Algorithm, Member
from libcloud.loadbalancer.providers import get_driver
from libcloud.loadbalancer.types import Provider

from tests.integration.tenants import Tenant, error, uniq
from tests.integration.test_networks import make_network, net, tenant  # noqa: F401
from tests.support.netzone import NetZone


def _job(tenant: Tenant, command: str, **params: Any) -> dict[str, Any]:
    done = tenant.cloud.wait_job(tenant.call(command, **params)["jobid"], tenant.keys)
    assert done["jobstatus"] == 1, done
    result: dict[str, Any] = done["jobresult"]
    return result


def _rule(net: NetZone, tenant: Tenant, gateway: str) -> tuple[dict[str, Any], dict[str, Any]]:
    network = make_network(net, tenant, gateway=gateway, netmask="255.255.255.0")
    made = net.sim.deploy(tenant.keys, networkids=network["id"], name=uniq("vm"))
    assert made["jobstatus"] == 1, made
    ip = _job(tenant, "associateIpAddress", networkid=network["id"])["ipaddress"]
    lb = _job(tenant, "createLoadBalancerRule", publicipid=ip["id"], name=uniq("lb"),
              algorithm="roundrobin", privateport=80, publicport=80)["loadbalancer"]  # fmt: skip
    return network, lb


def test_stickiness_and_health_check_policies(net: NetZone, tenant: Tenant) -> None:
    _network, lb = _rule(net, tenant, "10.48.0.1")
    made = _job(
        tenant,
        "createLBStickinessPolicy",
        lbruleid=lb["id"],
        methodname="LbCookie",
        name="sticky",
        **{"param[0].name": "cookieName", "param[0].value": "CUMULO"},
    )
    policies = made["stickinesspolicies"]
    assert policies["lbruleid"] == lb["id"]
    [policy] = policies["stickinesspolicy"]
    assert (policy["methodname"], policy["name"]) == ("LbCookie", "sticky")
    assert policy["params"] == {"cookieName": "CUMULO"}
    listed = tenant.call("listLBStickinessPolicies", lbruleid=lb["id"])["stickinesspolicies"]
    assert [p["id"] for p in listed[0]["stickinesspolicy"]] == [policy["id"]]
    # one per rule; unknown method or parameter refused, nothing written
    for params in (
        {"methodname": "SourceBased", "name": "again"},
        {"methodname": "Magic", "name": "x"},
        {"methodname": "SourceBased", "name": "x", "param[0].name": "evil", "param[0].value": "1"},
    ):
        code, _ = error(tenant.raw("createLBStickinessPolicy", lbruleid=lb["id"], **params),
                        "createLBStickinessPolicy")  # fmt: skip
        assert code == 431, params
    listed = tenant.call("listLBStickinessPolicies", lbruleid=lb["id"])["stickinesspolicies"]
    assert len(listed[0]["stickinesspolicy"]) == 1
    assert _job(tenant, "deleteLBStickinessPolicy", id=policy["id"])["success"] is True
    listed = tenant.call("listLBStickinessPolicies", lbruleid=lb["id"])["stickinesspolicies"]
    assert listed[0]["stickinesspolicy"] == []

    health = _job(tenant, "createLBHealthCheckPolicy", lbruleid=lb["id"], pingpath="/",
                  intervaltime=3, responsetimeout=2, healthythreshold=1,
                  unhealthythreshold=2)["healthcheckpolicies"]  # fmt: skip
    [check] = health["healthcheckpolicy"]
    assert (check["pingpath"], check["healthcheckinterval"], check["unhealthcheckthresshold"]) == (
        "/",
        3,
        2,
    )
    for bad in ({"pingpath": "no-slash"}, {"intervaltime": 0}, {"pingpath": "/again"}):
        code, _ = error(tenant.raw("createLBHealthCheckPolicy", lbruleid=lb["id"], **bad),
                        "createLBHealthCheckPolicy")  # fmt: skip
        assert code == 431, bad
    listed = tenant.call("listLBHealthCheckPolicies", lbruleid=lb["id"])["healthcheckpolicies"]
    assert [p["id"] for p in listed[0]["healthcheckpolicy"]] == [check["id"]]
    # deleting the rule takes its policies with it
    _job(tenant, "deleteLoadBalancerRule", id=lb["id"])
    code, _ = error(tenant.raw("listLBHealthCheckPolicies", id=check["id"]),
                    "listLBHealthCheckPolicies")  # fmt: skip
    assert code in (431, 530)


def test_libcloud_load_balancer_driver(net: NetZone, tenant: Tenant) -> None:
    network = make_network(net, tenant, gateway="10.49.0.1", netmask="255.255.255.0")
    vms = []
    for _ in range(2):
        made = net.sim.deploy(tenant.keys, networkids=network["id"], name=uniq("vm"))
        assert made["jobstatus"] == 1, made
        vms.append(made["jobresult"]["virtualmachine"])
    cls = get_driver(Provider.CLOUDSTACK)
    driver = cls(tenant.keys.api_key, tenant.keys.secret, host="127.0.0.1",
                 port=tenant.cloud.port, path="/client/api", secure=False)  # fmt: skip
    name = uniq("lclb")
    zone = NodeLocation(net.sim.zone["id"], net.sim.zone["name"], "", None)
    balancer = driver.create_balancer(name, [], protocol="tcp", port=80,
                                      algorithm=Algorithm.ROUND_ROBIN, location=zone,
                                      private_port=80, network_id=network["id"])  # fmt: skip
    assert balancer.name == name
    listed = {b.id: b for b in driver.list_balancers()}
    assert balancer.id in listed
    for vm in vms:
        driver.balancer_attach_member(balancer, Member(vm["id"], None, 80))
    instances = tenant.call("listLoadBalancerRuleInstances", id=balancer.id)
    assert {v["id"] for v in instances["loadbalancerruleinstance"]} == {v["id"] for v in vms}
    assert {m.id for m in driver.balancer_list_members(balancer)} == {v["id"] for v in vms}
    assert driver.balancer_detach_member(balancer, Member(vms[0]["id"], None, 80))
    instances = tenant.call("listLoadBalancerRuleInstances", id=balancer.id)
    assert [v["id"] for v in instances["loadbalancerruleinstance"]] == [vms[1]["id"]]
    driver.destroy_balancer(balancer)  # libcloud returns nothing: the rule and address go
    public = tenant.call("listPublicIpAddresses", associatednetworkid=network["id"])
    assert balancer.ip not in {p["ipaddress"] for p in public["publicipaddress"]}
    assert balancer.id not in {b.id for b in driver.list_balancers()}
