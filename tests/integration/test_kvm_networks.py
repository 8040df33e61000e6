"""Guest networking on real hosts: two KVM host namespaces, VXLAN between them, a router
namespace with dnsmasq and source NAT, an "internet" namespace, through the whole stack.

Topology: ``tests/support/kvmnet.py`` (host namespaces on an underlay bridge, an "internet"
namespace behind each host's public bridge, blackhole routes for every tenant range; all
removed at the end, even on failure).

Checked: two VMs on one isolated network on different hosts get the addresses the cloud
allocated over DHCP, the router resolves their names, they exchange HTTP over VXLAN; a VM
reaches the internet through source NAT as the source NAT address; a deleted router
namespace is rebuilt by the reconciler and restartNetwork(cleanup) rebuilds it too; after
expunge and deleteNetwork no namespace, link, nftables table or dnsmasq process is left.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cumulo.agent.images.tiny import TinyImage, build_tiny
from tests.integration.tenants import make_tenant
from tests.integration.test_agent import wait_for
from tests.support.kvmnet import (
    PUBLIC_GW,
    Stack,
    guest_ip,
    in_ns,
    job,
    kvm_stack,
    ns_get,
    sh,
)
from tests.support.kvmnet import cloud_pids as _pids
from tests.support.kvmnet import dnsmasq_pids as _dnsmasq_pids
from tests.support.kvmnet import guest_links as _leftovers
from tests.support.kvmnet import host_up as _host_up
from tests.support.kvmnet import router_namespaces as _router_namespaces
from tests.support.simzone import uniq

pytestmark = [pytest.mark.vm, pytest.mark.net, pytest.mark.slow]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyImage:
    return build_tiny(tmp_path_factory.mktemp("tiny-net-images"))


@pytest.fixture
def stack(tmp_path_factory: pytest.TempPathFactory, tiny: TinyImage) -> Iterator[Stack]:
    with kvm_stack(tmp_path_factory.mktemp, tiny) as built:
        yield built


def test_two_hosts_one_network_dhcp_dns_vxlan_snat_rebuild_and_no_leaks(stack: Stack) -> None:
    c, lab_ = stack.cloud.call, stack.lab
    name = "DefaultIsolatedNetworkOfferingWithSourceNatService"
    offering = c("listNetworkOfferings", name=name)["networkoffering"][0]
    network = c("createNetwork", name=uniq("kn"), displaytext="kvm net", zoneid=stack.zone["id"],
                networkofferingid=offering["id"], gateway=f"{lab_.guest_prefix}.1",
                netmask="255.255.255.0", networkdomain="kvm.internal")["network"]  # fmt: skip
    router_ns = f"cr-{network['id']}"
    stack.router_namespaces.append(router_ns)
    vms = []
    for index, host in enumerate(stack.hosts):
        vm = job(stack.cloud, "deployVirtualMachine", zoneid=stack.zone["id"],
                 templateid=stack.template["id"], serviceofferingid=stack.offering["id"],
                 networkids=network["id"], hostid=host["id"],
                 name=f"web{index}-{lab_.tag}")["virtualmachine"]  # fmt: skip
        assert vm["hostid"] == host["id"]
        vms.append(vm)
    ips = [vm["nic"][0]["ipaddress"] for vm in vms]
    assert all(ip.startswith(lab_.guest_prefix + ".") for ip in ips), ips
    for vm, state, ip in zip(vms, stack.states, ips, strict=True):
        wait_for(lambda v=vm, s=state: guest_ip(s, v["instancename"]) is not None, 180,
                 "GUEST-READY with a lease")  # fmt: skip
        assert guest_ip(state, vm["instancename"]) == ip, "the lease is the allocated address"

    routers = c("listRouters", networkid=network["id"], listall=True)["router"]
    assert len(routers) == 1 and routers[0]["state"] == "Running", routers
    assert routers[0]["hostid"] == stack.hosts[0]["id"]
    assert routers[0]["guestipaddress"] == f"{lab_.guest_prefix}.1"
    snat = c("listPublicIpAddresses", associatednetworkid=network["id"], issourcenat=True,
             listall=True)["publicipaddress"][0]["ipaddress"]  # fmt: skip
    assert routers[0]["publicip"] == snat
    assert router_ns in _router_namespaces()

    # DNS: the router answers the VMs' names (asked from inside its namespace)
    for vm, ip in zip(vms, ips, strict=True):
        answer = in_ns(router_ns, "busybox", "nslookup", vm["name"], f"{lab_.guest_prefix}.1")
        assert ip in answer.stdout.split("Name:", 1)[-1], (answer, _router_files(stack))
    # East-west over VXLAN: VM0 (host a) fetches VM1 (host b), and the router (host a) too
    fetched = ns_get(router_ns, f"http://{ips[0]}/cgi-bin/fetch?{ips[1]}")
    assert fetched is not None and f"OK hostname={vms[1]['name']}" in fetched, fetched
    assert ns_get(router_ns, f"http://{ips[1]}/") == f"hostname={vms[1]['name']}\n"
    # Source NAT: VM1 (on the host without the router) reaches the internet as the SNAT IP
    out = ns_get(router_ns, f"http://{ips[1]}/cgi-bin/fetch?{PUBLIC_GW}")
    assert out is not None and f"OK from={snat}" in out, out
    # Isolation from the internet side: the guest range is not routed there
    assert ns_get(lab_.internet, f"http://{ips[0]}/", 5) is None
    # The metadata service on the router answers the VM by its source address
    meta = ns_get(router_ns, f"http://{ips[1]}/cgi-bin/fetch?{lab_.guest_prefix}.1/latest/"
                  "meta-data/instance-id")  # fmt: skip
    assert meta is not None and f"OK {vms[1]['id']}" in meta, meta

    # Port forwarding through the router (nftables DNAT, ingress firewall opened with it),
    # reached from the internet; removing the firewall rule closes it again
    snat_id = c("listPublicIpAddresses", ipaddress=snat, listall=True)["publicipaddress"][0]["id"]
    job(stack.cloud, "createPortForwardingRule", ipaddressid=snat_id, privateport=80,
        publicport=8080, protocol="tcp", virtualmachineid=vms[0]["id"])  # fmt: skip
    wait_for(
        lambda: ns_get(lab_.internet, f"http://{snat}:8080/", 5) == f"hostname={vms[0]['name']}\n",
        60, "port forward reachable from the internet",
    )  # fmt: skip
    (rule,) = c("listFirewallRules", ipaddressid=snat_id, listall=True)["firewallrule"]
    job(stack.cloud, "deleteFirewallRule", id=rule["id"])
    wait_for(lambda: ns_get(lab_.internet, f"http://{snat}:8080/", 5) is None, 60,
             "port forward closed by the firewall")  # fmt: skip

    # Load balancing (haproxy in the router) over both VMs, on an address associated now
    lb_ip = job(stack.cloud, "associateIpAddress", networkid=network["id"])["ipaddress"]
    lb = job(stack.cloud, "createLoadBalancerRule", publicipid=lb_ip["id"], name=uniq("lb"),
             algorithm="roundrobin", privateport=80, publicport=8081)["loadbalancer"]  # fmt: skip
    job(stack.cloud, "assignToLoadBalancerRule", id=lb["id"],
        virtualmachineids=",".join(vm["id"] for vm in vms))  # fmt: skip
    seen: set[str] = set()

    def both_answer() -> bool:
        got = ns_get(lab_.internet, f"http://{lb_ip['ipaddress']}:8081/", 5)
        if got:
            seen.add(got.strip())
        return len(seen) == 2

    wait_for(both_answer, 90, "both backends answer through the load balancer")
    assert seen == {f"hostname={vm['name']}" for vm in vms}

    # The router namespace deleted behind the cloud's back: the reconciler rebuilds it
    sh("ip", "netns", "del", router_ns)
    wait_for(lambda: router_ns in _router_namespaces(), 60, "router namespace rebuilt")
    wait_for(
        lambda: "OK from=" in (ns_get(router_ns, f"http://{ips[0]}/cgi-bin/fetch?{PUBLIC_GW}",
                                      10) or ""),
        60, "connectivity back after the rebuild",
    )  # fmt: skip
    assert len(_dnsmasq_pids(stack.states)) == 1, "the old dnsmasq went with the old namespace"

    # restartNetwork with cleanup builds the router again from scratch (a new dnsmasq)
    before = _dnsmasq_pids(stack.states)
    job(stack.cloud, "restartNetwork", id=network["id"], cleanup=True)
    wait_for(lambda: _dnsmasq_pids(stack.states) not in ([], before), 60, "a new dnsmasq")
    wait_for(lambda: ns_get(router_ns, f"http://{ips[1]}/", 10) is not None, 60, "back")

    # Everything goes: VMs expunged, network deleted, nothing left on either host
    for vm in vms:
        job(stack.cloud, "destroyVirtualMachine", id=vm["id"], expunge=True)
    job(stack.cloud, "deleteNetwork", id=network["id"])
    wait_for(lambda: router_ns not in _router_namespaces(), 60, "router namespace removed")
    wait_for(lambda: not _pids(stack.states), 30, "no dnsmasq, HTTP service or QEMU left")
    for ns, _ in lab_.hosts:
        wait_for(lambda n=ns: _leftovers(n) == set(), 60, f"no guest links left on {ns}")
        assert sh("ip", "netns", "exec", ns, "nft", "list", "tables").strip() == ""
    assert not Path(f"/etc/netns/{router_ns}").exists()
    assert not c("listRouters", networkid=network["id"], listall=True).get("router")


def _router_files(stack: Stack) -> str:
    """The router's dnsmasq configuration and log, for a failure message."""
    texts = []
    for state in stack.states:
        for path in sorted(state.glob("routers/*/dnsmasq.*")):
            texts.append(f"{path}:\n{path.read_text(errors='replace')[-3000:]}")
    return "\n".join(texts)


def _no_links_left(stack: Stack) -> None:
    for ns, _ in stack.lab.hosts:
        wait_for(lambda n=ns: _leftovers(n) == set(), 60, f"no guest links left on {ns}")
        assert sh("ip", "netns", "exec", ns, "nft", "list", "tables").strip() == ""


def test_two_tenants_networks_are_isolated_and_routers_outlive_agent_restarts(
    stack: Stack,
) -> None:
    c, lab_ = stack.cloud.call, stack.lab
    name = "DefaultIsolatedNetworkOfferingWithSourceNatService"
    offering = c("listNetworkOfferings", name=name)["networkoffering"][0]
    other = make_tenant(stack.cloud)
    nets = [
        c("createNetwork", name=uniq("ka"), displaytext="a", zoneid=stack.zone["id"],
          networkofferingid=offering["id"], gateway=f"10.241.{lab_.octet}.1",
          netmask="255.255.255.0")["network"],
        other.call("createNetwork", name=uniq("kb"), displaytext="b", zoneid=stack.zone["id"],
                   networkofferingid=offering["id"], gateway=f"10.242.{lab_.octet}.1",
                   netmask="255.255.255.0")["network"],
    ]  # fmt: skip
    spaces = [f"cr-{n['id']}" for n in nets]
    stack.router_namespaces.extend(spaces)
    a = job(stack.cloud, "deployVirtualMachine", zoneid=stack.zone["id"],
            templateid=stack.template["id"], serviceofferingid=stack.offering["id"],
            networkids=nets[0]["id"], hostid=stack.hosts[0]["id"])["virtualmachine"]  # fmt: skip
    b = other.call("deployVirtualMachine", zoneid=stack.zone["id"],
                   templateid=stack.template["id"], serviceofferingid=stack.offering["id"],
                   networkids=nets[1]["id"])  # fmt: skip
    done = stack.cloud.wait_job(b["jobid"], timeout=240)
    assert done["jobstatus"] == 1, done.get("jobresult")
    b = c("listVirtualMachines", id=b["id"], listall=True)["virtualmachine"][0]
    ips = [a["nic"][0]["ipaddress"], b["nic"][0]["ipaddress"]]
    for vm, ip in zip((a, b), ips, strict=True):
        state = stack.states[[h["id"] for h in stack.hosts].index(vm["hostid"])]
        wait_for(lambda v=vm, s=state: guest_ip(s, v["instancename"]) is not None, 180,
                 "GUEST-READY with a lease")  # fmt: skip
        assert guest_ip(state, vm["instancename"]) == ip
    for space, ip, vm in zip(spaces, ips, (a, b), strict=True):
        assert ns_get(space, f"http://{ip}/") == f"hostname={vm['name']}\n"
    # neither guest nor router reaches the other tenant's guest
    for space, (src, dst) in zip(spaces, ((ips[0], ips[1]), (ips[1], ips[0])), strict=True):
        out = ns_get(space, f"http://{src}/cgi-bin/fetch?{dst}")
        assert out is not None and out.startswith("FAIL"), out
        assert ns_get(space, f"http://{dst}/", 5) is None

    # agents killed and started again: the routers run on, nothing is rebuilt needlessly
    before = sorted(_dnsmasq_pids(stack.states))
    assert len(before) == 2
    for agent in stack.agents:
        agent.kill9()
        agent.start()
    for host in stack.hosts:
        wait_for(lambda h=host: _host_up(stack.cloud, h["id"]), 60, "host Up again")
    for space, ip, vm in zip(spaces, ips, (a, b), strict=True):
        assert ns_get(space, f"http://{ip}/") == f"hostname={vm['name']}\n"
    assert sorted(_dnsmasq_pids(stack.states)) == before

    for vm in (a, b):
        job(stack.cloud, "destroyVirtualMachine", id=vm["id"], expunge=True)
    for network in nets:
        job(stack.cloud, "deleteNetwork", id=network["id"])
    wait_for(lambda: not set(spaces) & _router_namespaces(), 60, "router namespaces removed")
    wait_for(lambda: not _pids(stack.states), 30, "no process left")
    _no_links_left(stack)
