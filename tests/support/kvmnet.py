"""Guest networking on real hosts, shared by the KVM network tests and ``bench/net_bench.py``.

Topology (all made here, all removed at the end, even on failure):

- an underlay bridge in the root namespace holding the management server's address; each
  host namespace has a veth on it with its registered address (its VXLAN VTEP);
- an "internet" namespace with the public gateway address on a bridge, and an HTTP server
  answering with the client's address (so source NAT is visible); each host namespace has
  its public bridge ``pub0`` (the Public traffic type's KVM label) joined to it;
- blackhole routes in the root namespace for the guest and public ranges, so nothing sent
  to a tenant address can leave the machine. Every probe runs inside a namespace.

``kvm_stack`` adds a management server, two QEMU agents (one per host namespace, TCG), an
Advanced zone with VXLAN guest networking and the tiny template on top. It is a context
manager, not a pytest fixture, so the benchmark can build the same cloud outside pytest.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pytest

from cumulo.agent.images.tiny import TinyImage
from tests.integration.test_agent import AgentProc, NetCloud, Site, add_kvm_host, wait_for
from tests.integration.test_kvm_vms import qemu_pids, serial
from tests.support.cloud import Cloud, make_cloud
from tests.support.simzone import http_files, uniq

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


def blackhole(net: str) -> bool:
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
            if blackhole(net):
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


def kvm_zone(cloud: Cloud, lab: Lab) -> tuple[dict[str, Any], Site]:
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


@contextlib.contextmanager
def kvm_stack(mktemp: Callable[[str], Path], tiny: TinyImage) -> Iterator[Stack]:
    """Two KVM host namespaces with QEMU agents, a management server on the underlay, an
    Advanced zone with VXLAN guest and a public range, the tiny template and a 128 MiB
    offering; everything stopped and removed on the way out, even on failure."""
    with lab() as net:
        base = make_cloud(mktemp("kvmnet-cloud"), CUMULO_API__HOST=net.server_ip)
        cloud = NetCloud(
            **{f.name: getattr(base, f.name) for f in fields(Cloud)}, address=net.server_ip
        )
        cloud.start()
        agents: list[AgentProc] = []
        states: list[Path] = []
        routers: list[str] = []
        try:
            zone, site = kvm_zone(cloud, net)
            work = mktemp("kvmnet-work")
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
                wait_for(lambda h=host: host_up(cloud, h["id"]), 60, "host Up")
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
            kill_leftovers(states)
            cloud.stop()
            for ns in routers:
                subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
                shutil.rmtree(f"/etc/netns/{ns}", ignore_errors=True)


def host_up(cloud: Cloud, host_id: str) -> bool:
    return bool(cloud.call("listHosts", id=host_id)["host"][0]["state"] == "Up")


def router_namespaces() -> set[str]:
    out = sh("ip", "netns", "list", check=False)
    return {line.split()[0] for line in out.splitlines() if line.startswith("cr-")}


def cloud_pids(states: list[Path], word: str = "") -> list[int]:
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


def dnsmasq_pids(states: list[Path]) -> list[int]:
    return cloud_pids(states, "dnsmasq")


def kill_leftovers(states: list[Path]) -> None:
    for pid in cloud_pids(states):
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


GUEST_LINK_PREFIXES = ("brvx", "vxlan", "crg", "crp", "ct")


def guest_links(ns: str) -> set[str]:
    """Links in host namespace ``ns`` named like the ones the agent makes for guests."""
    names = {line.split(":")[1].strip().split("@")[0] for line in
             sh("ip", "-n", ns, "-o", "link", "show").splitlines()}  # fmt: skip
    return {n for n in names if n.startswith(GUEST_LINK_PREFIXES)}


def leaks(stack: Stack, network_ids: Iterable[str]) -> dict[str, Any]:
    """Everything of the cloud's still on the hosts: guest links and nftables tables in each
    host namespace, the networks' router namespaces (other tests' routers may run at the same
    time: only these), and dnsmasq/haproxy/HTTP/QEMU processes of our agents. Empty values
    everywhere when nothing leaked."""
    mine = {f"cr-{n}" for n in network_ids}
    found: dict[str, Any] = {
        "netns": sorted(router_namespaces() & mine),
        "processes": cloud_pids(stack.states),
    }
    for ns, _ in stack.lab.hosts:
        found[f"{ns} links"] = sorted(guest_links(ns))
        found[f"{ns} nft"] = sh("ip", "netns", "exec", ns, "nft", "list", "tables").split()
    return found


def no_leaks(stack: Stack, network_ids: Iterable[str], timeout: float = 60) -> None:
    """Wait until nothing of the cloud is left on the hosts; the leftovers when it fails."""
    ids = list(network_ids)
    with contextlib.suppress(AssertionError):
        wait_for(lambda: not any(leaks(stack, ids).values()), timeout, "nothing left on hosts")
    left = leaks(stack, ids)
    assert not any(left.values()), left
