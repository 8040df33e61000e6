"""Public IPs and the rules recorded for a network's router, through `cs` and libcloud:
associate/disassociate/list, the public IP limit, firewall and egress rules, port forwarding
(conflicts refused with 537), static NAT and load balancing; bad input is refused with its
error code and changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.integration.tenants import Tenant, error, make_domain, make_tenant, uniq
from tests.support.cloud import Cloud
from tests.support.netzone import NetZone, add_networking, libcloud_driver
from tests.support.simzone import IMAGE, build, http_files


@pytest.fixture(scope="module")
def net(cloud: Cloud, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetZone]:
    root = tmp_path_factory.mktemp("ipfiles")
    with http_files({"sim.qcow2": IMAGE}, root) as url:
        sim = build(
            cloud,
            tmp_path_factory.mktemp("ips"),
            url,
            offering={"cpunumber": 1, "cpuspeed": 100, "memory": 64},
        )
        yield add_networking(sim, vnis=(7100, 7199), public=(10, 40))


@dataclass
class Setup:
    tenant: Tenant
    network: dict[str, Any]
    vms: list[dict[str, Any]]

    def call(self, command: str, **params: Any) -> dict[str, Any]:
        return self.tenant.call(command, **params)

    def job(self, command: str, **params: Any) -> dict[str, Any]:
        submitted = self.tenant.call(command, **params)
        return self.tenant.cloud.wait_job(submitted["jobid"], self.tenant.keys)

    def fails(self, command: str, **params: Any) -> int:
        code, _ = error(self.tenant.raw(command, **params), command)
        return code

    def new_ip(self) -> dict[str, Any]:
        done = self.job("associateIpAddress", networkid=self.network["id"])
        assert done["jobstatus"] == 1, done
        ip: dict[str, Any] = done["jobresult"]["ipaddress"]
        return ip


@pytest.fixture(scope="module")
def setup(net: NetZone, cloud: Cloud) -> Setup:
    tenant = make_tenant(cloud, make_domain(cloud)["id"])
    offering = cloud.call(
        "listNetworkOfferings", name="DefaultIsolatedNetworkOfferingWithSourceNatService"
    )["networkoffering"][0]
    network = tenant.call(
        "createNetwork",
        name=uniq("net"),
        networkofferingid=offering["id"],
        zoneid=net.sim.zone["id"],
        gateway="10.70.0.1",
        netmask="255.255.255.0",
    )["network"]
    vms = [
        net.sim.deploy(tenant.keys, networkids=network["id"], name=uniq("vm"))["jobresult"][
            "virtualmachine"
        ]
        for _ in range(3)
    ]
    return Setup(tenant, network, vms)


def rules(s: Setup, command: str, key: str, **params: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = s.call(command, **params).get(key, [])
    return found


def test_source_nat_address_is_listed_and_cannot_be_released(setup: Setup) -> None:
    found = setup.call("listPublicIpAddresses", associatednetworkid=setup.network["id"])
    [snat] = found["publicipaddress"]
    assert snat["issourcenat"] is True and snat["associatednetworkid"] == setup.network["id"]
    assert snat["state"] == "Allocated" and snat["account"] == setup.tenant.name
    assert setup.fails("disassociateIpAddress", id=snat["id"]) == 431
    assert setup.call("listPublicIpAddresses", id=snat["id"])["count"] == 1


def test_associate_list_disassociate(setup: Setup) -> None:
    ip = setup.new_ip()
    assert ip["issourcenat"] is False and ip["ipaddress"].startswith("203.0.113.")
    assert ip["associatednetworkid"] == setup.network["id"]
    listed = setup.call("listPublicIpAddresses", ipaddress=ip["ipaddress"])["publicipaddress"]
    assert [i["id"] for i in listed] == [ip["id"]]
    other = make_tenant(setup.tenant.cloud, setup.tenant.domain_id)
    assert other.call("listPublicIpAddresses", id=ip["id"]) == {}
    code, _ = error(other.raw("disassociateIpAddress", id=ip["id"]), "disassociateIpAddress")
    assert code == 531
    done = setup.job("disassociateIpAddress", id=ip["id"])
    assert done["jobstatus"] == 1, done
    assert setup.call("listPublicIpAddresses", id=ip["id"]) == {}


def test_associate_bad_input_takes_nothing(setup: Setup) -> None:
    before = setup.call("listPublicIpAddresses")["count"]
    assert setup.fails("associateIpAddress") == 431  # neither zone nor network
    assert (
        setup.fails("associateIpAddress", networkid="7d4e3c1a-0000-4000-8000-000000000000") == 431
    )
    assert setup.call("listPublicIpAddresses")["count"] == before


def test_public_ip_limit(net: NetZone, cloud: Cloud) -> None:
    tenant = make_tenant(cloud, make_domain(cloud)["id"])
    cloud.call(
        "updateResourceLimit",
        account=tenant.account["name"],
        domainid=tenant.domain_id,
        resourcetype=1,
        max=1,
    )
    first = tenant.call("associateIpAddress", zoneid=net.sim.zone["id"])
    assert cloud.wait_job(first["jobid"], tenant.keys)["jobstatus"] == 1
    code, _ = error(
        tenant.raw("associateIpAddress", zoneid=net.sim.zone["id"]), "associateIpAddress"
    )
    assert code == 532
    assert tenant.call("listPublicIpAddresses")["count"] == 1


def test_port_forwarding_and_conflicts(setup: Setup) -> None:
    ip = setup.new_ip()
    vm = setup.vms[0]
    made = setup.job(
        "createPortForwardingRule",
        ipaddressid=ip["id"],
        protocol="tcp",
        publicport=2222,
        privateport=22,
        virtualmachineid=vm["id"],
    )
    assert made["jobstatus"] == 1, made
    rule = made["jobresult"]["portforwardingrule"]
    assert (rule["publicport"], rule["privateport"], rule["protocol"]) == ("2222", "22", "tcp")
    assert rule["vmguestip"] == vm["nic"][0]["ipaddress"] and rule["ipaddress"] == ip["ipaddress"]
    # openfirewall (the default) opened the public port
    fw = rules(setup, "listFirewallRules", "firewallrule", ipaddressid=ip["id"])
    assert [(f["protocol"], f["startport"], f["endport"]) for f in fw] == [("tcp", 2222, 2222)]
    conflicts = [
        {"publicport": 2222, "privateport": 80},
        {"publicport": 2200, "publicendport": 2230, "privateport": 2200, "privateendport": 2230},
    ]
    for extra in conflicts:
        code = setup.fails(
            "createPortForwardingRule",
            ipaddressid=ip["id"],
            protocol="tcp",
            virtualmachineid=setup.vms[1]["id"],
            **extra,
        )
        assert code == 537
    bad = [
        {"protocol": "icmp", "publicport": 1, "privateport": 1},
        {"protocol": "tcp", "publicport": 0, "privateport": 22},
        {"protocol": "tcp", "publicport": 70000, "privateport": 22},
        {"protocol": "tcp", "publicport": 30, "publicendport": 20, "privateport": 22},
        {"protocol": "tcp", "publicport": 30, "publicendport": 31, "privateport": 22},
        {"protocol": "tcp", "publicport": 30, "privateport": 22, "cidrlist": "10.0.0.0/99"},
    ]
    for extra in bad:
        code = setup.fails(
            "createPortForwardingRule",
            ipaddressid=ip["id"],
            virtualmachineid=setup.vms[1]["id"],
            **extra,
        )
        assert code == 431, extra
    listed = rules(setup, "listPortForwardingRules", "portforwardingrule", ipaddressid=ip["id"])
    assert [r["id"] for r in listed] == [rule["id"]]
    udp = setup.job(
        "createPortForwardingRule",
        ipaddressid=ip["id"],
        protocol="udp",
        publicport=2222,
        privateport=22,
        virtualmachineid=setup.vms[1]["id"],
    )
    assert udp["jobstatus"] == 1  # same port, other protocol: no conflict
    assert setup.job("deletePortForwardingRule", id=rule["id"])["jobstatus"] == 1
    left = rules(setup, "listPortForwardingRules", "portforwardingrule", ipaddressid=ip["id"])
    assert [r["protocol"] for r in left] == ["udp"]


def test_firewall_rules_validated_and_conflicts_refused(setup: Setup) -> None:
    ip = setup.new_ip()
    made = setup.job(
        "createFirewallRule",
        ipaddressid=ip["id"],
        protocol="tcp",
        startport=80,
        endport=81,
        cidrlist="198.51.100.0/24,192.0.2.0/24",
    )
    rule = made["jobresult"]["firewallrule"]
    assert rule["cidrlist"] == "198.51.100.0/24,192.0.2.0/24" and rule["traffictype"] == "Ingress"
    icmp = setup.job(
        "createFirewallRule", ipaddressid=ip["id"], protocol="icmp", icmptype=8, icmpcode=0
    )
    assert icmp["jobresult"]["firewallrule"]["icmptype"] == 8
    assert (
        setup.fails(
            "createFirewallRule",
            ipaddressid=ip["id"],
            protocol="tcp",
            startport=80,
            endport=81,
            cidrlist="192.0.2.0/24,198.51.100.0/24",
        )
        == 537
    )
    for extra in (
        {"protocol": "gre"},
        {"protocol": "tcp", "startport": 90, "endport": 80},
        {"protocol": "icmp", "startport": 80},
        {"protocol": "icmp", "icmptype": 300},
        {"protocol": "tcp", "startport": 22, "icmptype": 8},
        {"protocol": "tcp", "startport": 22, "cidrlist": "not-a-cidr"},
    ):
        assert setup.fails("createFirewallRule", ipaddressid=ip["id"], **extra) == 431, extra
    assert len(rules(setup, "listFirewallRules", "firewallrule", ipaddressid=ip["id"])) == 2
    assert setup.job("deleteFirewallRule", id=rule["id"])["jobstatus"] == 1
    assert len(rules(setup, "listFirewallRules", "firewallrule", ipaddressid=ip["id"])) == 1


def test_egress_rules(setup: Setup) -> None:
    made = setup.job(
        "createEgressFirewallRule",
        networkid=setup.network["id"],
        protocol="tcp",
        startport=443,
        endport=443,
        destcidrlist="0.0.0.0/0",
    )
    rule = made["jobresult"]["firewallrule"]
    assert rule["traffictype"] == "Egress" and rule["cidrlist"] == "10.70.0.0/24"
    code = setup.fails(
        "createEgressFirewallRule",
        networkid=setup.network["id"],
        protocol="tcp",
        startport=443,
        cidrlist="172.16.0.0/24",  # not inside the network
    )
    assert code == 431
    listed = rules(setup, "listEgressFirewallRules", "firewallrule", networkid=setup.network["id"])
    assert [r["id"] for r in listed] == [rule["id"]]
    assert setup.job("deleteEgressFirewallRule", id=rule["id"])["jobstatus"] == 1


def test_static_nat(setup: Setup) -> None:
    ip = setup.new_ip()
    vm = setup.vms[2]
    assert setup.call("enableStaticNat", ipaddressid=ip["id"], virtualmachineid=vm["id"])["success"]
    shown = setup.call("listPublicIpAddresses", id=ip["id"])["publicipaddress"][0]
    assert shown["isstaticnat"] is True and shown["virtualmachineid"] == vm["id"]
    assert shown["vmipaddress"] == vm["nic"][0]["ipaddress"]
    code = setup.fails(
        "createPortForwardingRule",
        ipaddressid=ip["id"],
        protocol="tcp",
        publicport=80,
        privateport=80,
        virtualmachineid=vm["id"],
    )
    assert code == 537
    snat = setup.call(
        "listPublicIpAddresses", associatednetworkid=setup.network["id"], issourcenat=True
    )["publicipaddress"][0]
    assert setup.fails("enableStaticNat", ipaddressid=snat["id"], virtualmachineid=vm["id"]) == 431
    assert setup.job("disableStaticNat", ipaddressid=ip["id"])["jobstatus"] == 1
    shown = setup.call("listPublicIpAddresses", id=ip["id"])["publicipaddress"][0]
    assert shown["isstaticnat"] is False and "virtualmachineid" not in shown
    assert setup.fails("disableStaticNat", ipaddressid=ip["id"]) == 431


def test_load_balancer_rules(setup: Setup) -> None:
    ip = setup.new_ip()
    made = setup.job(
        "createLoadBalancerRule",
        name="web",
        publicipid=ip["id"],
        publicport=80,
        privateport=8080,
        algorithm="leastconn",
    )
    assert made["jobstatus"] == 1, made
    lb = made["jobresult"]["loadbalancer"]
    assert (lb["publicip"], lb["publicport"], lb["privateport"]) == (ip["ipaddress"], "80", "8080")
    for extra in ({"algorithm": "random"}, {"publicport": 0}, {"name": ""}):
        params = {
            "name": "x",
            "publicipid": ip["id"],
            "publicport": 81,
            "privateport": 81,
            "algorithm": "roundrobin",
            **extra,
        }
        assert setup.fails("createLoadBalancerRule", **params) == 431, extra
    assert (
        setup.fails(
            "createLoadBalancerRule",
            name="dup",
            publicipid=ip["id"],
            publicport=80,
            privateport=80,
            algorithm="source",
        )
        == 537
    )
    ids = ",".join(v["id"] for v in setup.vms)
    assert (
        setup.job("assignToLoadBalancerRule", id=lb["id"], virtualmachineids=ids)["jobstatus"] == 1
    )
    members = setup.call("listLoadBalancerRuleInstances", id=lb["id"])
    assert {m["id"] for m in members["loadbalancerruleinstance"]} == {v["id"] for v in setup.vms}
    again = setup.fails(
        "assignToLoadBalancerRule", id=lb["id"], virtualmachineids=setup.vms[0]["id"]
    )
    assert again == 431
    removed = setup.job(
        "removeFromLoadBalancerRule", id=lb["id"], virtualmachineids=setup.vms[0]["id"]
    )
    assert removed["jobstatus"] == 1
    assert setup.call("listLoadBalancerRuleInstances", id=lb["id"])["count"] == 2
    by_vm = setup.call("listLoadBalancerRules", virtualmachineid=setup.vms[1]["id"])
    assert [r["id"] for r in by_vm["loadbalancerrule"]] == [lb["id"]]
    assert setup.call("listLoadBalancerRules", virtualmachineid=setup.vms[0]["id"]) == {}
    assert setup.job("deleteLoadBalancerRule", id=lb["id"])["jobstatus"] == 1
    assert setup.call("listLoadBalancerRules", id=lb["id"]) == {}


def test_libcloud_ip_and_rule_calls(setup: Setup) -> None:
    driver = libcloud_driver(setup.tenant.cloud, setup.tenant.keys)
    zone = next(z for z in driver.list_locations() if z.id == setup.network["zoneid"])
    address = driver.ex_allocate_public_ip(network_id=setup.network["id"], location=zone)
    assert address.address in {a.address for a in driver.ex_list_public_ips()}
    node = next(n for n in driver.list_nodes() if n.id == setup.vms[0]["id"])
    pf = driver.ex_create_port_forwarding_rule(node, address, 22, 2022, "tcp")
    listed = setup.call("listPortForwardingRules", id=pf.id)["portforwardingrule"]
    assert listed[0]["publicport"] == "2022"
    fw = driver.ex_create_firewall_rule(address, "0.0.0.0/0", "tcp", start_port=443, end_port=443)
    assert fw.id in {r.id for r in driver.ex_list_firewall_rules()}
    assert driver.ex_delete_firewall_rule(fw) is True
    assert driver.ex_release_public_ip(address) is True
    assert address.address not in {a.address for a in driver.ex_list_public_ips()}


def test_other_accounts_and_other_networks_are_refused(setup: Setup, net: NetZone) -> None:
    ip = setup.new_ip()
    other = make_tenant(setup.tenant.cloud, setup.tenant.domain_id)
    code, _ = error(
        other.raw("createFirewallRule", ipaddressid=ip["id"], protocol="tcp", startport=1),
        "createFirewallRule",
    )
    assert code == 531
    # a VM of the same account on another network can't be a backend or a forward target
    offering = setup.tenant.cloud.call(
        "listNetworkOfferings", name="DefaultIsolatedNetworkOfferingWithSourceNatService"
    )["networkoffering"][0]
    elsewhere = setup.call(
        "createNetwork",
        name=uniq("net"),
        networkofferingid=offering["id"],
        zoneid=net.sim.zone["id"],
        gateway="10.71.0.1",
        netmask="255.255.255.0",
    )["network"]
    stranger = net.sim.deploy(setup.tenant.keys, networkids=elsewhere["id"])["jobresult"][
        "virtualmachine"
    ]
    code = setup.fails(
        "createPortForwardingRule",
        ipaddressid=ip["id"],
        protocol="tcp",
        publicport=8000,
        privateport=80,
        virtualmachineid=stranger["id"],
    )
    assert code == 431
    lb = setup.job(
        "createLoadBalancerRule",
        name="only-here",
        publicipid=ip["id"],
        publicport=443,
        privateport=443,
        algorithm="source",
    )["jobresult"]["loadbalancer"]
    code = setup.fails("assignToLoadBalancerRule", id=lb["id"], virtualmachineids=stranger["id"])
    assert code == 431
    assert setup.call("listLoadBalancerRuleInstances", id=lb["id"]) == {}
    assert rules(setup, "listPortForwardingRules", "portforwardingrule", ipaddressid=ip["id"]) == []
