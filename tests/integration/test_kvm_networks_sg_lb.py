# ruff: noqa: F811  (the ``stack`` fixture is imported and used as a parameter by name)
"""Security groups on real hosts: a shared network with the SecurityGroup service, two QEMU
guests on two host namespaces, filtered per tap by an nftables ``bridge`` table.

The stack (host namespaces, the "internet" namespace, blackhole routes for the guest and
public ranges, a server and two QEMU agents) is ``test_kvm_networks``' ``stack`` fixture;
everything is removed at the end even on failure. Every probe runs inside a namespace: the
network's router namespace (it holds the gateway address) or a guest, through its
``/cgi-bin/fetch`` probe, never the root namespace.
"""

from __future__ import annotations

import base64
import collections
from pathlib import Path
from typing import Any

import pytest

from cumulo.agent.drivers.qemu import tap_name
from cumulo.agent.network.sg_nft import table_name
from tests.integration.tenants import Tenant, make_tenant
from tests.integration.test_agent import wait_for
from tests.integration.test_kvm_networks import stack, tiny  # noqa: F401 - fixtures by name
from tests.support.cloud import Cloud
from tests.support.kvmnet import (
    PUBLIC_GW,
    Stack,
    guest_ip,
    job,
    no_leaks,
    ns_get,
    router_namespaces,
    sh,
)
from tests.support.netzone import libcloud_driver
from tests.support.simzone import uniq

PUBLIC_NET = "198.51.100.0/24"  # the lab's public range (blackholed in the root namespace)
pytestmark = [pytest.mark.vm, pytest.mark.net, pytest.mark.slow]

SG_OFFERING = "DefaultSharedNetworkOfferingWithSGService"


def _sg_tables(ns: str) -> set[str]:
    out = sh("ip", "netns", "exec", ns, "nft", "list", "tables", "bridge", check=False)
    return {line.split()[-1] for line in out.splitlines() if line.startswith("table")}


def _table(vm: dict[str, Any]) -> str:
    return table_name(tap_name(vm["instancename"], 0))


def _fetch(router_ns: str, via: str, target: str) -> str:
    """What guest ``via`` got fetching ``http://target/`` ("OK ..." or "FAIL ..."), asked
    through its own HTTP server; "" when ``via`` itself was not reachable."""
    return (ns_get(router_ns, f"http://{via}/cgi-bin/fetch?{target}", 15) or "").strip()


def _wait_job(cloud: Cloud, response: dict[str, Any]) -> dict[str, Any]:
    done = cloud.wait_job(response["jobid"], timeout=120)
    assert done["jobstatus"] == 1, done.get("jobresult")
    result: dict[str, Any] = done["jobresult"]
    return result


def _deploy(stack: Stack, tenant: Tenant, network: dict[str, Any], host: int, group: str,
            name: str) -> dict[str, Any]:  # fmt: skip
    made = stack.cloud.call(  # as the admin, to place it on a given host, for the tenant
        "deployVirtualMachine", zoneid=stack.zone["id"], templateid=stack.template["id"],
        serviceofferingid=stack.offering["id"], networkids=network["id"],
        securitygroupids=group, name=name, hostid=stack.hosts[host]["id"],
        account=tenant.name, domainid=tenant.domain_id,
    )  # fmt: skip
    done = stack.cloud.wait_job(made["jobid"], timeout=300)
    assert done["jobstatus"] == 1, done.get("jobresult")
    vm: dict[str, Any] = done["jobresult"]["virtualmachine"]
    return vm


def _state_of(stack: Stack, vm: dict[str, Any]) -> Path:
    return stack.states[[h["id"] for h in stack.hosts].index(vm["hostid"])]


def _ns_of(stack: Stack, vm: dict[str, Any]) -> str:
    return stack.lab.hosts[[h["id"] for h in stack.hosts].index(vm["hostid"])][0]


def test_security_groups_filter_real_guests_and_follow_them(stack: Stack) -> None:
    c, lab_ = stack.cloud.call, stack.lab
    gateway = f"{lab_.guest_prefix}.1"
    offering = c("listNetworkOfferings", name=SG_OFFERING)["networkoffering"][0]
    network = c("createNetwork", name=uniq("ksg"), displaytext="sg net",
                zoneid=stack.zone["id"], networkofferingid=offering["id"], gateway=gateway,
                netmask="255.255.255.0", startip=f"{lab_.guest_prefix}.10",
                endip=f"{lab_.guest_prefix}.60",
                networkdomain="sg.internal", vlan="vxlan://8099")["network"]  # fmt: skip
    router_ns = f"cr-{network['id']}"
    stack.router_namespaces.append(router_ns)
    tenant = make_tenant(stack.cloud)
    api = tenant.cs
    # "web" through libcloud, "client" through cs
    driver = libcloud_driver(stack.cloud, tenant.keys)
    web_name = uniq("web")
    web = driver.ex_create_security_group(web_name, description="web tier")
    client = api.createSecurityGroup(name=uniq("client"))["securitygroup"]
    a = _deploy(stack, tenant, network, 0, web["id"], f"sga-{lab_.tag}")
    b = _deploy(stack, tenant, network, 1, client["id"], f"sgb-{lab_.tag}")
    ips: dict[str, str] = {}
    for vm in (a, b):
        state = _state_of(stack, vm)
        wait_for(lambda v=vm, s=state: guest_ip(s, v["instancename"]) is not None, 240,
                 "GUEST-READY with a lease through the filtered port")  # fmt: skip
        leased = guest_ip(state, vm["instancename"])
        assert leased is not None and leased == vm["nic"][0]["ipaddress"]
        ips[vm["id"]] = leased
        assert _table(vm) in _sg_tables(_ns_of(stack, vm)), "filtered from the start"
    ip_a, ip_b = ips[a["id"]], ips[b["id"]]
    assert router_ns in router_namespaces()

    # default deny ingress: the router (on the same bridge) reaches neither guest
    assert ns_get(router_ns, f"http://{ip_a}/", 5) is None
    assert ns_get(router_ns, f"http://{ip_b}/", 5) is None

    # a CIDR rule (cs) opens client's port 80 to the router only
    _wait_job(stack.cloud, api.authorizeSecurityGroupIngress(
        securitygroupid=client["id"], protocol="tcp", startport=80, endport=80,
        cidrlist=f"{gateway}/32"))  # fmt: skip
    wait_for(lambda: ns_get(router_ns, f"http://{ip_b}/", 5) == f"hostname={b['name']}\n",
             60, "client reachable from the router after the CIDR rule")  # fmt: skip
    assert ns_get(router_ns, f"http://{ip_a}/", 5) is None, "web stays closed"
    assert _fetch(router_ns, ip_b, ip_a).startswith("FAIL"), "client cannot reach web yet"

    # a rule naming another group: web's port 80 open to client's members only
    made = _wait_job(stack.cloud, api.authorizeSecurityGroupIngress(
        securitygroupid=web["id"], protocol="tcp", startport=80, endport=80,
        usersecuritygrouplist=[{"account": tenant.name, "group": client["name"]}]))  # fmt: skip
    [group_rule] = made["securitygroup"]["ingressrule"]
    assert group_rule["securitygroupname"] == client["name"]
    wait_for(lambda: _fetch(router_ns, ip_b, ip_a) == f"OK hostname={a['name']}", 60,
             "web reachable from a client member")  # fmt: skip
    assert ns_get(router_ns, f"http://{ip_a}/", 5) is None, "the router is not a member"

    # revoked again: closed again
    _wait_job(stack.cloud, api.revokeSecurityGroupIngress(id=group_rule["ruleid"]))
    wait_for(lambda: _fetch(router_ns, ip_b, ip_a).startswith("FAIL"), 60,
             "web closed again after the revoke")  # fmt: skip

    # libcloud's ingress call: the whole guest range may reach web
    driver.ex_authorize_security_group_ingress(web_name, "tcp", f"{lab_.guest_prefix}.0/24",
                                               80, 80)  # fmt: skip
    listed = {g["name"]: g for g in driver.ex_list_security_groups()}
    assert listed[web_name]["ingressrule"][0]["cidr"] == f"{lab_.guest_prefix}.0/24"
    wait_for(lambda: _fetch(router_ns, ip_b, ip_a) == f"OK hostname={a['name']}", 60,
             "web open to the guest range")  # fmt: skip

    # egress: the first egress rule closes client's egress to everything else
    _wait_job(stack.cloud, api.authorizeSecurityGroupEgress(
        securitygroupid=client["id"], protocol="tcp", startport=80, endport=80,
        cidrlist=f"{gateway}/32"))  # fmt: skip
    wait_for(lambda: _fetch(router_ns, ip_b, ip_a).startswith("FAIL"), 60,
             "client's egress to web closed by the first egress rule")  # fmt: skip
    assert ns_get(router_ns, f"http://{ip_b}/", 5) == f"hostname={b['name']}\n", "replies pass"
    egress = _wait_job(stack.cloud, api.authorizeSecurityGroupEgress(
        securitygroupid=client["id"], protocol="tcp", startport=80, endport=80,
        cidrlist=f"{ip_a}/32"))["securitygroup"]["egressrule"]  # fmt: skip
    wait_for(lambda: _fetch(router_ns, ip_b, ip_a) == f"OK hostname={a['name']}", 60,
             "client's egress to web allowed by its rule")  # fmt: skip

    # the rules follow the VM: stopped, its table goes with its tap; started, it is back
    ns_b = _ns_of(stack, b)
    job(stack.cloud, "stopVirtualMachine", id=b["id"])
    wait_for(lambda: _table(b) not in _sg_tables(ns_b), 60, "table gone with the stopped VM")
    started = job(stack.cloud, "startVirtualMachine", id=b["id"], timeout=300)
    b = started["virtualmachine"]
    ns_b = _ns_of(stack, b)
    assert _table(b) in _sg_tables(ns_b)
    wait_for(lambda: ns_get(router_ns, f"http://{ip_b}/", 5) == f"hostname={b['name']}\n",
             240, "client back, its ingress rule still applied")  # fmt: skip
    wait_for(lambda: _fetch(router_ns, ip_b, ip_a) == f"OK hostname={a['name']}", 60,
             "client's egress rule still applied")  # fmt: skip
    for rule in egress:
        if rule["cidr"] == f"{ip_a}/32":
            _wait_job(stack.cloud, api.revokeSecurityGroupEgress(id=rule["ruleid"]))
    wait_for(lambda: _fetch(router_ns, ip_b, ip_a).startswith("FAIL"), 60,
             "egress revoked on the restarted VM")  # fmt: skip

    # expunged: tables, taps, router and processes all gone
    for vm in (a, b):
        job(stack.cloud, "destroyVirtualMachine", id=vm["id"], expunge=True)
    job(stack.cloud, "deleteNetwork", id=network["id"])
    assert driver.ex_delete_security_group(web_name) is True
    assert web_name not in {g["name"] for g in driver.ex_list_security_groups()}
    no_leaks(stack, [network["id"]])


def _isolated_offering(stack: Stack, *, egress_allow: bool) -> dict[str, Any]:
    made = stack.cloud.call(
        "createNetworkOffering", name=uniq("kno"), displaytext="static nat, egress",
        guestiptype="Isolated", traffictype="GUEST",
        supportedservices="Dhcp,Dns,SourceNat,StaticNat,Firewall,PortForwarding,Lb,UserData",
        egressdefaultpolicy=egress_allow,
    )["networkoffering"]  # fmt: skip
    stack.cloud.call("updateNetworkOffering", id=made["id"], state="Enabled")
    return made


def _boot(
    stack: Stack, network: dict[str, Any], host: int, name: str
) -> tuple[dict[str, Any], str]:
    vm = job(stack.cloud, "deployVirtualMachine", zoneid=stack.zone["id"],
             templateid=stack.template["id"], serviceofferingid=stack.offering["id"],
             networkids=network["id"], hostid=stack.hosts[host]["id"],
             name=name, timeout=300)["virtualmachine"]  # fmt: skip
    state = _state_of(stack, vm)
    wait_for(lambda: guest_ip(state, vm["instancename"]) is not None, 240, "GUEST-READY")
    leased = guest_ip(state, vm["instancename"])
    assert leased is not None and leased == vm["nic"][0]["ipaddress"]
    return vm, leased


def test_static_nat_and_egress_firewall_on_real_hosts(stack: Stack) -> None:
    c, lab_ = stack.cloud.call, stack.lab
    offering = _isolated_offering(stack, egress_allow=False)
    network = c("createNetwork", name=uniq("kst"), displaytext="static nat",
                zoneid=stack.zone["id"], networkofferingid=offering["id"],
                gateway=f"10.242.{lab_.octet}.1", netmask="255.255.255.0")["network"]  # fmt: skip
    router_ns = f"cr-{network['id']}"
    stack.router_namespaces.append(router_ns)
    vm, ip = _boot(stack, network, 1, f"snat-{lab_.tag}")
    snat = c("listPublicIpAddresses", associatednetworkid=network["id"], issourcenat=True,
             listall=True)["publicipaddress"][0]["ipaddress"]  # fmt: skip

    # egress default deny (the offering's policy): the guest cannot reach the internet
    assert _fetch(router_ns, ip, PUBLIC_GW).startswith("FAIL")
    egress = job(stack.cloud, "createEgressFirewallRule", networkid=network["id"],
                 protocol="tcp", startport=80, endport=80,
                 destcidrlist=PUBLIC_NET)["firewallrule"]  # fmt: skip
    wait_for(lambda: _fetch(router_ns, ip, PUBLIC_GW) == f"OK from={snat}", 60,
             "egress rule lets the guest out through source NAT")  # fmt: skip

    # static NAT: nothing reachable until a firewall rule opens the port
    public = job(stack.cloud, "associateIpAddress", networkid=network["id"])["ipaddress"]
    assert c("enableStaticNat", ipaddressid=public["id"], virtualmachineid=vm["id"])["success"]
    listed = c("listPublicIpAddresses", id=public["id"], listall=True)["publicipaddress"][0]
    assert listed["isstaticnat"] is True and listed["virtualmachineid"] == vm["id"]
    wait_for(lambda: _fetch(router_ns, ip, PUBLIC_GW) == f"OK from={public['ipaddress']}", 60,
             "the guest leaves as its static NAT address")  # fmt: skip
    assert ns_get(lab_.internet, f"http://{public['ipaddress']}/", 5) is None
    rule = job(stack.cloud, "createFirewallRule", ipaddressid=public["id"], protocol="tcp",
               startport=80, endport=80, cidrlist="0.0.0.0/0")["firewallrule"]  # fmt: skip
    page = f"http://{public['ipaddress']}/"
    wait_for(lambda: ns_get(lab_.internet, page, 5) == f"hostname={vm['name']}\n", 60,
             "static NAT reachable from the internet")  # fmt: skip
    job(stack.cloud, "disableStaticNat", ipaddressid=public["id"])
    wait_for(lambda: ns_get(lab_.internet, f"http://{public['ipaddress']}/", 5) is None, 60,
             "static NAT gone")  # fmt: skip
    wait_for(lambda: _fetch(router_ns, ip, PUBLIC_GW) == f"OK from={snat}", 60,
             "back to the source NAT address")  # fmt: skip
    job(stack.cloud, "deleteFirewallRule", id=rule["id"])

    # the egress rule removed: closed again
    job(stack.cloud, "deleteEgressFirewallRule", id=egress["id"])
    wait_for(lambda: _fetch(router_ns, ip, PUBLIC_GW).startswith("FAIL"), 60, "egress closed")

    job(stack.cloud, "destroyVirtualMachine", id=vm["id"], expunge=True)
    job(stack.cloud, "deleteNetwork", id=network["id"])
    no_leaks(stack, [network["id"]])


def _spread(lab_: Any, url: str, count: int) -> collections.Counter[str]:
    """Which guests answered ``count`` GETs of ``url`` from the internet ("-": failed)."""
    seen: collections.Counter[str] = collections.Counter()
    for _ in range(count):
        body = ns_get(lab_.internet, url, 5)
        seen[body.strip().removeprefix("hostname=") if body else "-"] += 1
    return seen


def test_load_balancing_three_vms_policies_and_secondary_ips(stack: Stack) -> None:
    c, lab_ = stack.cloud.call, stack.lab
    name = "DefaultIsolatedNetworkOfferingWithSourceNatService"
    offering = c("listNetworkOfferings", name=name)["networkoffering"][0]
    network = c("createNetwork", name=uniq("klb"), displaytext="lb", zoneid=stack.zone["id"],
                networkofferingid=offering["id"], gateway=f"{lab_.guest_prefix}.1",
                netmask="255.255.255.0")["network"]  # fmt: skip
    router_ns = f"cr-{network['id']}"
    stack.router_namespaces.append(router_ns)
    secondary = f"{lab_.guest_prefix}.200"
    # the guest configures its secondary address itself (DHCP gives the primary only)
    script = f"#!/bin/sh\nip addr add {secondary}/24 dev eth0\n"
    vms = []
    for index, host in enumerate((0, 1, 0)):
        extra = {"userdata": base64.b64encode(script.encode()).decode()} if index == 0 else {}
        vm = job(stack.cloud, "deployVirtualMachine", zoneid=stack.zone["id"],
                 templateid=stack.template["id"], serviceofferingid=stack.offering["id"],
                 networkids=network["id"], hostid=stack.hosts[host]["id"],
                 name=f"lb{index}-{lab_.tag}", timeout=300, **extra)["virtualmachine"]  # fmt: skip
        vms.append(vm)
    for vm in vms:
        state = _state_of(stack, vm)
        wait_for(lambda v=vm, s=state: guest_ip(s, v["instancename"]) is not None, 300,
                 "GUEST-READY")  # fmt: skip
    names = {vm["name"] for vm in vms}

    public = job(stack.cloud, "associateIpAddress", networkid=network["id"])["ipaddress"]
    url = f"http://{public['ipaddress']}/"
    lb = job(stack.cloud, "createLoadBalancerRule", publicipid=public["id"], name=uniq("lb"),
             algorithm="roundrobin", privateport=80, publicport=80)["loadbalancer"]  # fmt: skip
    job(stack.cloud, "assignToLoadBalancerRule", id=lb["id"],
        virtualmachineids=",".join(vm["id"] for vm in vms))  # fmt: skip
    wait_for(lambda: set(_spread(lab_, url, 6)) == names, 120, "all three in rotation")
    assert set(_spread(lab_, url, 9)) == names

    # source: one client, one backend; leastconn: still every answer from a member
    job(stack.cloud, "updateLoadBalancerRule", id=lb["id"], algorithm="source")
    wait_for(lambda: len(_spread(lab_, url, 6)) == 1, 60, "source algorithm pins the client")
    assert "-" not in _spread(lab_, url, 6)
    job(stack.cloud, "updateLoadBalancerRule", id=lb["id"], algorithm="leastconn")
    wait_for(lambda: len(_spread(lab_, url, 9)) > 1, 60, "leastconn spreads sequential GETs")
    assert set(_spread(lab_, url, 9)) <= names
    job(stack.cloud, "updateLoadBalancerRule", id=lb["id"], algorithm="roundrobin")

    # a SourceBased stickiness policy keeps the client on one backend despite round robin
    sticky = job(stack.cloud, "createLBStickinessPolicy", lbruleid=lb["id"], name="src",
                 methodname="SourceBased")["stickinesspolicies"]["stickinesspolicy"][0]  # fmt: skip
    wait_for(lambda: len(_spread(lab_, url, 6)) == 1, 60, "stickiness pins the client")
    job(stack.cloud, "deleteLBStickinessPolicy", id=sticky["id"])
    wait_for(lambda: set(_spread(lab_, url, 6)) == names, 60, "round robin again")

    # removeFromLoadBalancerRule takes one out of rotation
    job(stack.cloud, "removeFromLoadBalancerRule", id=lb["id"], virtualmachineids=vms[2]["id"])
    wait_for(lambda: set(_spread(lab_, url, 6)) == names - {vms[2]["name"]}, 60, "two left")

    # a dead backend (its VM stopped) is skipped by the health check: no failed request
    job(stack.cloud, "createLBHealthCheckPolicy", lbruleid=lb["id"], pingpath="/",
        intervaltime=2, responsetimeout=1, healthythreshold=1, unhealthythreshold=2)  # fmt: skip
    job(stack.cloud, "stopVirtualMachine", id=vms[1]["id"], forced=True)
    wait_for(lambda: _spread(lab_, url, 4) == {vms[0]["name"]: 4}, 60, "dead backend skipped")
    assert _spread(lab_, url, 10) == {vms[0]["name"]: 10}

    # secondary IP: reserved, listed, and the target of port forwarding and static NAT
    [nic] = c("listNics", virtualmachineid=vms[0]["id"])["nic"]
    added = job(stack.cloud, "addIpToNic", nicid=nic["id"], ipaddress=secondary)
    assert added["nicsecondaryip"]["ipaddress"] == secondary
    [nic] = c("listNics", virtualmachineid=vms[0]["id"])["nic"]
    assert [s["ipaddress"] for s in nic["secondaryip"]] == [secondary]
    assert ns_get(router_ns, f"http://{secondary}/", 10) == f"hostname={vms[0]['name']}\n", (
        "the guest answers on the address its user data added"
    )
    snat = c("listPublicIpAddresses", associatednetworkid=network["id"], issourcenat=True,
             listall=True)["publicipaddress"][0]  # fmt: skip
    job(stack.cloud, "createPortForwardingRule", ipaddressid=snat["id"], privateport=80,
        publicport=8080, protocol="tcp", virtualmachineid=vms[0]["id"],
        vmguestip=secondary)  # fmt: skip
    forwarded = f"http://{snat['ipaddress']}:8080/"
    wait_for(lambda: ns_get(lab_.internet, forwarded, 5) == f"hostname={vms[0]['name']}\n", 60,
             "port forward to the secondary IP")  # fmt: skip
    rules = c("listPortForwardingRules", ipaddressid=snat["id"], listall=True)
    assert rules["portforwardingrule"][0]["vmguestip"] == secondary
    other = job(stack.cloud, "associateIpAddress", networkid=network["id"])["ipaddress"]
    c("enableStaticNat", ipaddressid=other["id"], virtualmachineid=vms[0]["id"],
      vmguestip=secondary)  # fmt: skip
    job(stack.cloud, "createFirewallRule", ipaddressid=other["id"], protocol="tcp",
        startport=80, endport=80, cidrlist="0.0.0.0/0")  # fmt: skip
    nat_url = f"http://{other['ipaddress']}/"
    wait_for(lambda: ns_get(lab_.internet, nat_url, 5) == f"hostname={vms[0]['name']}\n", 60,
             "static NAT to the secondary IP")  # fmt: skip
    listed = c("listPublicIpAddresses", id=other["id"], listall=True)["publicipaddress"][0]
    assert listed["vmipaddress"] == secondary

    for vm in vms:
        job(stack.cloud, "destroyVirtualMachine", id=vm["id"], expunge=True)
    job(stack.cloud, "deleteNetwork", id=network["id"])
    no_leaks(stack, [network["id"]])
