"""Guest networking on real hosts: two KVM host namespaces, VXLAN between them, a router
namespace with dnsmasq and source NAT, an "internet" namespace, through the whole stack.

Topology (all made here, all removed at the end, even on failure):

- an underlay bridge in the root namespace holding the management server's address; each
  host namespace has a veth on it with its registered address (its VXLAN VTEP);
- an "internet" namespace with the public gateway address on a bridge, and an HTTP server
  answering with the client's address (so source NAT is visible); each host namespace has
  its public bridge ``pub0`` (the Public traffic type's KVM label) joined to it;
- blackhole routes in the root namespace for the guest and public ranges, so nothing sent
  to a tenant address can leave the machine. Every probe runs inside a namespace.

Checked: two VMs on one isolated network on different hosts get the addresses the cloud
allocated over DHCP, the router resolves their names, they exchange HTTP over VXLAN; a VM
reaches the internet through source NAT as the source NAT address; a deleted router
namespace is rebuilt by the reconciler and restartNetwork(cleanup) rebuilds it too; after
expunge and deleteNetwork no namespace, link, nftables table or dnsmasq process is left.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pytest

from cumulo.agent.images.tiny import TinyImage, build_tiny
from tests.integration.tenants import make_tenant
from tests.integration.test_agent import AgentProc, NetCloud, Site, add_kvm_host, wait_for
from tests.integration.test_kvm_vms import qemu_pids, serial
from tests.support.cloud import Cloud, make_cloud
from tests.support.simzone import http_files, uniq

pytestmark = [pytest.mark.vm, pytest.mark.net, pytest.mark.slow]

PUBLIC_GW = "198.51.100.1"
PUBLIC_NET = "198.51.100.0/24"
ECHO_SERVER = r"""
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"from={self.client_address[0]}\n".encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body)))
        self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer((sys.argv[1], 80), H).serve_forever()
"""


def sh(*argv: str, check: bool = True, timeout: float = 30) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done.stdout


def in_ns(ns: str, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", ns, *argv],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def ns_get(ns: str, url: str, timeout: float = 20) -> str | None:
    """HTTP GET from inside ``ns`` (never from the root namespace)."""
    done = in_ns(ns, "timeout", str(timeout), "busybox", "wget", "-q", "-O", "-", url,
                 timeout=timeout + 5)  # fmt: skip
    return done.stdout if done.returncode == 0 else None


@dataclass
class Lab:
    tag: str
    octet: int
    underlay: str
    server_ip: str
    hosts: list[tuple[str, str]]  # (namespace, address)
    internet: str
    guest_prefix: str  # "10.241.<octet>"
    procs: list[subprocess.Popen[bytes]]


def _blackhole(net: str) -> bool:
    if sh("ip", "route", "show", net).strip():
        return False
    sh("ip", "route", "add", "blackhole", net)
    return True


@contextlib.contextmanager
def lab() -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    tag = uuid.uuid4().hex[:5]
    octet = int(tag[:2], 16) % 200 + 20
    lab = Lab(
        tag=tag, octet=octet, underlay=f"cnu{tag}", server_ip=f"10.232.{octet}.1",
        hosts=[(f"cnh{tag}a", f"10.232.{octet}.2"), (f"cnh{tag}b", f"10.232.{octet}.3")],
        internet=f"cni{tag}", guest_prefix=f"10.241.{octet}", procs=[],
    )  # fmt: skip
    added: list[str] = []
    try:
        for net in (f"10.241.{octet}.0/24", f"10.242.{octet}.0/24", PUBLIC_NET):
            if _blackhole(net):
                added.append(net)
        sh("ip", "link", "add", lab.underlay, "type", "bridge")
        sh("ip", "addr", "add", f"{lab.server_ip}/24", "dev", lab.underlay)
        sh("ip", "link", "set", lab.underlay, "up")
        sh("ip", "netns", "add", lab.internet)
        sh("ip", "-n", lab.internet, "link", "set", "lo", "up")
        sh("ip", "-n", lab.internet, "link", "add", "inet0", "type", "bridge")
        sh("ip", "-n", lab.internet, "addr", "add", f"{PUBLIC_GW}/24", "dev", "inet0")
        sh("ip", "-n", lab.internet, "link", "set", "inet0", "up")
        for index, (ns, address) in enumerate(lab.hosts):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            outer = f"cnu{tag}{index}"
            sh("ip", "link", "add", outer, "type", "veth", "peer", "name", "mgmt0", "netns", ns)
            sh("ip", "link", "set", outer, "master", lab.underlay, "up")
            sh("ip", "-n", ns, "addr", "add", f"{address}/24", "dev", "mgmt0")
            sh("ip", "-n", ns, "link", "set", "mgmt0", "up")
            sh("ip", "-n", ns, "link", "add", "pub0", "type", "bridge")
            sh("ip", "-n", ns, "link", "set", "pub0", "up")
            sh("ip", "-n", ns, "link", "add", "uplink0", "type", "veth", "peer", "name",
               f"up{index}", "netns", lab.internet)  # fmt: skip
            sh("ip", "-n", ns, "link", "set", "uplink0", "master", "pub0", "up")
            sh("ip", "-n", lab.internet, "link", "set", f"up{index}", "master", "inet0", "up")
        echo = subprocess.Popen(
            ["ip", "netns", "exec", lab.internet, sys.executable, "-c", ECHO_SERVER, PUBLIC_GW],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        lab.procs.append(echo)
        wait_for(lambda: ns_get(lab.internet, f"http://{PUBLIC_GW}/", 5) is not None, 20, "echo")
        yield lab
    finally:
        for proc in lab.procs:
            proc.kill()
            proc.wait()
        for ns, _ in lab.hosts:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", lab.internet], capture_output=True, check=False)
        for index in range(len(lab.hosts)):
            subprocess.run(["ip", "link", "del", f"cnu{tag}{index}"], capture_output=True)
        subprocess.run(["ip", "link", "del", lab.underlay], capture_output=True, check=False)
        for net in added:
            subprocess.run(["ip", "route", "del", "blackhole", net], capture_output=True)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyImage:
    return build_tiny(tmp_path_factory.mktemp("tiny-net-images"))


@dataclass
class Stack:
    cloud: Cloud
    lab: Lab
    zone: dict[str, Any]
    hosts: list[dict[str, Any]]
    agents: list[AgentProc]
    states: list[Path]
    template: dict[str, Any]
    offering: dict[str, Any]
    router_namespaces: list[str]


def _zone(cloud: Cloud, lab: Lab) -> tuple[dict[str, Any], Site]:
    c = cloud.call
    zone = c("createZone", name=uniq("knz"), networktype="Advanced", dns1="10.0.0.1",
             internaldns1="10.0.0.2")["zone"]  # fmt: skip
    physical = c("createPhysicalNetwork", zoneid=zone["id"], name=uniq("kpn"),
                 isolationmethods="VXLAN", vlan="8000-8099")  # fmt: skip
    physical = cloud.wait_job(physical["jobid"])["jobresult"]["physicalnetwork"]
    for kind, label in (("Guest", None), ("Public", "pub0")):
        extra = {"kvmnetworklabel": label} if label else {}
        job = c("addTrafficType", physicalnetworkid=physical["id"], traffictype=kind, **extra)
        cloud.wait_job(job["jobid"])
    cloud.wait_job(c("updatePhysicalNetwork", id=physical["id"], state="Enabled")["jobid"])
    c("createVlanIpRange", zoneid=zone["id"], physicalnetworkid=physical["id"], vlan="untagged",
      forvirtualnetwork=True, startip="198.51.100.10", endip="198.51.100.50",
      gateway=PUBLIC_GW, netmask="255.255.255.0")  # fmt: skip
    pod = c("createPod", zoneid=zone["id"], name=uniq("knp"))["pod"]
    made = c("addCluster", zoneid=zone["id"], podid=pod["id"], clustername=uniq("knc"),
             hypervisor="KVM")["cluster"]  # fmt: skip
    cluster = made[0] if isinstance(made, list) else made
    return zone, Site(zone["id"], pod["id"], cluster["id"])


@pytest.fixture
def stack(tmp_path_factory: pytest.TempPathFactory, tiny: TinyImage) -> Iterator[Stack]:
    with lab() as net:
        base = make_cloud(tmp_path_factory.mktemp("kvmnet-cloud"), CUMULO_API__HOST=net.server_ip)
        cloud = NetCloud(
            **{f.name: getattr(base, f.name) for f in fields(Cloud)}, address=net.server_ip
        )
        cloud.start()
        agents: list[AgentProc] = []
        states: list[Path] = []
        routers: list[str] = []
        try:
            zone, site = _zone(cloud, net)
            work = tmp_path_factory.mktemp("kvmnet-work")
            hosts = []
            for ns, address in net.hosts:
                host = add_kvm_host(cloud, site, address)
                agent = AgentProc(cloud, work, host["agenttoken"])
                state = agent.dir / "state"
                argv = agent.argv
                argv[argv.index("--server") + 1] = f"http://{net.server_ip}:{cloud.port}"
                argv[argv.index("--driver") + 1] = "qemu"
                argv += ["--pool", str(agent.dir / "pool"), "--accelerator", "tcg"]
                # nsenter, not ``ip netns exec``: the agent must share the root mount
                # namespace, or the router namespaces it adds are invisible outside it.
                argv[:0] = ["nsenter", f"--net=/run/netns/{ns}"]
                agents.append(agent.start())
                states.append(state)
                hosts.append(host)
            for host in hosts:
                wait_for(lambda h=host: _host_up(cloud, h["id"]), 60, "host Up")
            store = work / "store"
            store.mkdir()
            cloud.call("addImageStore", name=uniq("d"), provider="Directory",
                       zoneid=zone["id"], url=f"file://{store}")  # fmt: skip
            (work / "served").mkdir()
            with http_files({"tiny.qcow2": tiny.disk.read_bytes()}, work / "served") as url:
                template = cloud.call(
                    "registerTemplate", name=uniq("tiny"), displaytext="tiny",
                    url=f"{url}/tiny.qcow2", zoneid=zone["id"], format="QCOW2",
                    hypervisor="KVM", ispublic=True, checksum=f"{{SHA-256}}{tiny.sha256}",
                )["template"][0]  # fmt: skip
                wait_for(
                    lambda: cloud.call("listTemplates", id=template["id"],
                                       templatefilter="all")["template"][0]["isready"],
                    60, "template ready",
                )  # fmt: skip
            cloud.call("updateZone", id=zone["id"], allocationstate="Enabled")
            offering = cloud.call(
                "createServiceOffering", name=uniq("so"), displaytext="tiny", cpunumber=1,
                cpuspeed=500, memory=128,
            )["serviceoffering"]  # fmt: skip
            yield Stack(cloud, net, zone, hosts, agents, states, template, offering, routers)
        finally:
            for state in states:
                for pid in qemu_pids(state):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            for agent in agents:
                agent.stop()
            _kill_leftovers(states)
            cloud.stop()
            for ns in routers:
                subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
                shutil.rmtree(f"/etc/netns/{ns}", ignore_errors=True)


def _host_up(cloud: Cloud, host_id: str) -> bool:
    return bool(cloud.call("listHosts", id=host_id)["host"][0]["state"] == "Up")


def _router_namespaces() -> set[str]:
    out = sh("ip", "netns", "list", check=False)
    return {line.split()[0] for line in out.splitlines() if line.startswith("cr-")}


def _pids(states: list[Path], word: str = "") -> list[int]:
    """Live processes (not the agents) whose command line names one of our agents' state
    dirs and ``word``: dnsmasq, the router's HTTP services, haproxy, QEMU."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            stat = (proc / "stat").read_text().split(")")[-1].split()[0]
            if stat == "Z" or " agent --server" in cmd or word not in cmd:
                continue
            if any(str(s) in cmd for s in states):
                pids.append(int(proc.name))
    return pids


def _dnsmasq_pids(states: list[Path]) -> list[int]:
    return _pids(states, "dnsmasq")


def _kill_leftovers(states: list[Path]) -> None:
    for pid in _pids(states):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def job(cloud: Cloud, cmd: str, timeout: float = 240, **params: Any) -> dict[str, Any]:
    done = cloud.wait_job(cloud.call(cmd, **params)["jobid"], timeout=timeout)
    assert done["jobstatus"] == 1, done.get("jobresult")
    result: dict[str, Any] = done["jobresult"]
    return result


def guest_ip(state: Path, name: str) -> str | None:
    for line in serial(state, name).splitlines():
        if "GUEST-READY" in line and " ip=" in line:
            return line.split(" ip=")[1].split("/")[0].split()[0]
    return None


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


def _leftovers(ns: str) -> set[str]:
    names = {line.split(":")[1].strip().split("@")[0] for line in
             sh("ip", "-n", ns, "-o", "link", "show").splitlines()}  # fmt: skip
    return {n for n in names if n.startswith(("brvx", "vxlan", "crg", "crp", "ct"))}


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
