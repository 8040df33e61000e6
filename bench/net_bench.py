# ruff: noqa: E501  (the guest script in USER_DATA is terse shell on purpose)
"""Guest networking on real hosts (issue 7's benchmark), measured in one run.

The cloud is the one the KVM network tests build (``tests/support/kvmnet.kvm_stack``): two
host namespaces without a default route, each with a QEMU agent (TCG), VXLAN between them,
a router namespace per network, blackhole routes for every tenant range. Nothing is sent to
a tenant address from the root namespace: every probe runs inside a namespace.

(a) TCP throughput with busybox ``httpd`` serving a file of ``--mb`` MiB and busybox
    ``wget`` fetching it: guest → guest on one host, and across the two hosts over the
    cloud's VXLAN segment (the user data of the tiny guest writes the file and a
    ``/cgi-bin/pull?ADDR`` script that times the fetch with the guest's ``/proc/uptime``),
    side by side with the same transfer between two bare namespaces over a veth/bridge and
    over a bare VXLAN pair (timed by the bench). MB/s and ratios.
(c) DHCP lease time of each of the three guests: QEMU process start (``/proc/<pid>/stat``)
    to the lease written in the router's dnsmasq lease file, and to ``GUEST-READY`` on the
    serial console.
(b) ``--rules`` port-forwarding rules through the API (one createPortForwardingRule call
    each, ``--threads`` at a time, every job waited for), until the router's nftables table
    holds them all; the router's whole ruleset applied again with ``nft -f`` (one
    transaction, as the agent applies it); listPortForwardingRules paged at 500.

    sudo .venv/bin/python bench/net_bench.py [--mb 32] [--rules 1000] [--threads 4]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.integration.test_agent import wait_for
from tests.support.kvmnet import (
    Stack,
    blackhole,
    guest_ip,
    in_ns,
    job,
    kvm_stack,
    ns_get,
    sh,
)
from tests.support.simzone import uniq

from cumulo.agent.images.tiny import build_tiny

MiB = 1024 * 1024
PF_BASE_PORT = 20000
PAGE = 500

# The guest's part of (a): the file to serve and a CGI timing a fetch of another guest's
# copy with the guest's clock. Terse: the API takes at most 255 characters of base64 here.
# The file is sparse (no disk writes in the guest), as the bare servers' file is.
USER_DATA = """#!/bin/sh
cd /www
truncate -s{size} big
echo '#!/bin/sh
echo;read a x</proc/uptime;wget -qO/dev/null $QUERY_STRING/big&&read b x</proc/uptime&&echo P $a $b'>cgi-bin/p
chmod +x cgi-bin/p
"""


@dataclass
class Transfer:
    name: str
    mbps: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.mbps) if self.mbps else 0.0


# --- bare namespaces ------------------------------------------------------------------------


@contextlib.contextmanager
def bare_pair(tag: str, octet: int, mb: int, kind: str) -> Iterator[tuple[str, str]]:
    """Two namespaces, a server with busybox httpd serving ``mb`` MiB and a client, joined
    over a bridge (in a third namespace) or over a VXLAN pair on a veth underlay; yields
    (client namespace, URL). Everything removed on the way out."""
    server, client, middle = f"nbs{kind}{tag}", f"nbc{kind}{tag}", f"nbm{kind}{tag}"
    subnet = 243 if kind == "br" else 244
    www = Path(tempfile.mkdtemp(prefix="netbench-www-"))
    proc: subprocess.Popen[bytes] | None = None
    spaces = (server, client, middle) if kind == "br" else (server, client)
    nets = [f"10.{n}.{octet}.0/24" for n in (subnet, 245)]
    holes = [net for net in nets if blackhole(net)]  # nothing to them leaves the machine
    try:
        for ns in spaces:
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        ends = {server: f"10.{subnet}.{octet}.1", client: f"10.{subnet}.{octet}.2"}
        if kind == "br":
            sh("ip", "-n", middle, "link", "add", "br0", "type", "bridge")
            sh("ip", "-n", middle, "link", "set", "br0", "up")
            for index, (ns, address) in enumerate(ends.items()):
                sh("ip", "-n", middle, "link", "add", f"p{index}", "type", "veth", "peer",
                   "name", "eth0", "netns", ns)  # fmt: skip
                sh("ip", "-n", middle, "link", "set", f"p{index}", "master", "br0", "up")
                sh("ip", "-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
                sh("ip", "-n", ns, "link", "set", "eth0", "up")
        else:
            sh("ip", "-n", server, "link", "add", "u0", "type", "veth", "peer", "name", "u0",
               "netns", client)  # fmt: skip
            under = {server: f"10.245.{octet}.1", client: f"10.245.{octet}.2"}
            for ns, address in ends.items():
                other = next(a for n, a in under.items() if n != ns)
                sh("ip", "-n", ns, "addr", "add", f"{under[ns]}/24", "dev", "u0")
                sh("ip", "-n", ns, "link", "set", "u0", "up")
                sh("ip", "-n", ns, "link", "add", "vx0", "type", "vxlan", "id", "42", "local",
                   under[ns], "remote", other, "dstport", "4789")  # fmt: skip
                sh("ip", "-n", ns, "addr", "add", f"{address}/24", "dev", "vx0")
                sh("ip", "-n", ns, "link", "set", "vx0", "up")
        with (www / "big").open("wb") as out:
            out.truncate(mb * MiB)
        proc = subprocess.Popen(
            ["ip", "netns", "exec", server, "busybox", "httpd", "-f", "-p",
             f"{ends[server]}:80", "-h", str(www)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        url = f"http://{ends[server]}/big"
        wait_for(lambda: in_ns(client, "busybox", "wget", "-q", "--spider", url).returncode == 0,
                 20, f"bare {kind} server")  # fmt: skip
        yield client, url
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        for ns in spaces:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        for net in holes:
            subprocess.run(["ip", "route", "del", "blackhole", net], capture_output=True)
        for path in www.iterdir():
            path.unlink()
        www.rmdir()


def bare_transfer(client: str, url: str, mb: int) -> float:
    """MB/s of one busybox wget of ``url`` inside ``client`` (as the guests fetch)."""
    start = time.monotonic()
    done = in_ns(client, "busybox", "wget", "-q", "-O", "/dev/null", url, timeout=600)
    elapsed = time.monotonic() - start
    if done.returncode != 0:
        raise RuntimeError(f"bare transfer failed: {done.stdout!r} {done.stderr!r}")
    return mb * MiB / elapsed / 1e6


# --- the cloud ------------------------------------------------------------------------------


def proc_start(pid: int) -> float:
    """Wall-clock time a process started (boot time + its start in clock ticks)."""
    ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    btime = next(
        int(line.split()[1])
        for line in Path("/proc/stat").read_text().splitlines()
        if line.startswith("btime")
    )
    return btime + ticks / os.sysconf("SC_CLK_TCK")


@dataclass
class Guest:
    vm: dict[str, Any]
    state: Path
    ip: str
    lease_s: float
    ready_s: float


def deploy(stack: Stack, network: dict[str, Any], host: int, mb: int, leases: Path) -> Guest:
    """A guest on host ``host``, waited for until ready; its lease and ready times."""
    state = stack.states[host]
    data = base64.b64encode(USER_DATA.format(size=mb * MiB).encode()).decode()
    vm = job(stack.cloud, "deployVirtualMachine", zoneid=stack.zone["id"],
             templateid=stack.template["id"], serviceofferingid=stack.offering["id"],
             networkids=network["id"], hostid=stack.hosts[host]["id"], userdata=data,
             name=uniq("nb"))["virtualmachine"]  # fmt: skip
    pid = int((state / "vms" / vm["instancename"] / "qemu.pid").read_text().strip())
    started = proc_start(pid)
    ip = vm["nic"][0]["ipaddress"]
    ready_at: list[float] = []

    def ready() -> bool:
        if guest_ip(state, vm["instancename"]) is None:
            return False
        ready_at.append(time.time())
        return True

    wait_for(ready, 300, f"{vm['name']} ready")
    assert guest_ip(state, vm["instancename"]) == ip
    lease_file = next(leases.glob(f"routers/{network['id']}/dnsmasq.leases"))
    assert ip in lease_file.read_text()
    lease_s = lease_file.stat().st_mtime - started  # guests boot one at a time: this one's
    return Guest(vm, state, ip, lease_s, ready_at[0] - started)


def guest_pull(router_ns: str, src: Guest, dst: Guest, mb: int) -> float:
    """MB/s of ``src`` fetching ``dst``'s file, timed inside ``src``."""
    out = ns_get(router_ns, f"http://{src.ip}/cgi-bin/p?http://{dst.ip}", timeout=600) or ""
    found = re.search(r"P ([\d.]+) ([\d.]+)", out)
    if not found:
        raise RuntimeError(f"guest transfer failed: {out!r}")
    return mb * MiB / max(float(found[2]) - float(found[1]), 0.01) / 1e6


def port_forwarding(
    stack: Stack, network: dict[str, Any], vm: dict[str, Any], count: int, threads: int
) -> dict[str, float]:
    """(b): ``count`` rules through the API, the router's one-transaction apply, listing."""
    c = stack.cloud.call
    ip = c("listPublicIpAddresses", associatednetworkid=network["id"], issourcenat=True,
           listall=True)["publicipaddress"][0]  # fmt: skip
    router_ns = f"cr-{network['id']}"

    def one(index: int) -> None:
        job(stack.cloud, "createPortForwardingRule", timeout=1800, ipaddressid=ip["id"],
            privateport=80, publicport=PF_BASE_PORT + index, protocol="tcp",
            virtualmachineid=vm["id"])  # fmt: skip

    start = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(count)))
    api_s = time.monotonic() - start

    def rules_in_router() -> int:
        table = in_ns(router_ns, "nft", "list", "table", "ip", "cumulo").stdout
        return len(set(re.findall(r"dport (\d+) dnat", table)))

    wait_for(lambda: rules_in_router() >= count, 600, "every rule in the router")
    applied_s = time.monotonic() - start
    script = next(stack.states[0].glob(f"routers/{network['id']}/router.nft"))
    transactions = []
    for _ in range(3):
        t0 = time.monotonic()
        done = in_ns(router_ns, "nft", "-f", str(script), timeout=120)
        transactions.append(time.monotonic() - t0)
        assert done.returncode == 0, done.stderr
    t0 = time.monotonic()
    listed, page = 0, 1
    while True:
        got = c("listPortForwardingRules", ipaddressid=ip["id"], listall=True, page=page,
                pagesize=PAGE).get("portforwardingrule", [])  # fmt: skip
        listed += len(got)
        if len(got) < PAGE:
            break
        page += 1
    list_s = time.monotonic() - t0
    assert listed == count, listed
    return {
        "api_s": api_s,
        "applied_s": applied_s,
        "nft_s": statistics.median(transactions),
        "script_lines": float(len(script.read_text().splitlines())),
        "list_s": list_s,
        "pages": float(page),
    }


def cleanup_cloud(stack: Stack, network: dict[str, Any], guests: list[Guest]) -> None:
    for guest in guests:
        job(stack.cloud, "destroyVirtualMachine", timeout=600, id=guest.vm["id"], expunge=True)
    job(stack.cloud, "deleteNetwork", timeout=600, id=network["id"])


def run(args: argparse.Namespace) -> None:
    tag = uuid.uuid4().hex[:4]
    octet = int(tag[:2], 16) % 200 + 20
    work = Path(tempfile.mkdtemp(prefix="netbench-"))
    made = iter(range(1000))

    def mktemp(name: str) -> Path:
        path = work / f"{name}{next(made)}"
        path.mkdir()
        return path

    try:
        bare: dict[str, Transfer] = {}
        for kind, label in (
            ("br", "bare namespaces, veth/bridge"),
            ("vx", "bare namespaces, VXLAN"),
        ):
            with bare_pair(tag, octet, args.mb, kind) as (client, url):
                bare[kind] = Transfer(
                    label, [bare_transfer(client, url, args.mb) for _ in range(3)]
                )
        tiny = build_tiny(mktemp("tiny"))
        with kvm_stack(mktemp, tiny) as stack:
            c = stack.cloud.call
            name = "DefaultIsolatedNetworkOfferingWithSourceNatService"
            offering = c("listNetworkOfferings", name=name)["networkoffering"][0]
            network = c("createNetwork", name=uniq("nbn"), displaytext="bench",
                        zoneid=stack.zone["id"], networkofferingid=offering["id"],
                        gateway=f"{stack.lab.guest_prefix}.1",
                        netmask="255.255.255.0")["network"]  # fmt: skip
            stack.router_namespaces.append(f"cr-{network['id']}")
            guests = [deploy(stack, network, h, args.mb, stack.states[0]) for h in (0, 0, 1)]
            router_ns = f"cr-{network['id']}"
            for guest in guests:
                wait_for(lambda g=guest: ns_get(router_ns, f"http://{g.ip}/cgi-bin/p", 10)
                         is not None, 300, "user data ran")  # fmt: skip
            pairs: list[tuple[str, Callable[[], float]]] = [
                ("VM → VM, one host", lambda: guest_pull(router_ns, guests[0], guests[1], args.mb)),
                ("VM → VM, two hosts (VXLAN)",
                 lambda: guest_pull(router_ns, guests[0], guests[2], args.mb)),
            ]  # fmt: skip
            cloud = {label: Transfer(label, [f() for _ in range(args.runs)]) for label, f in pairs}
            rules = port_forwarding(stack, network, guests[0].vm, args.rules, args.threads)
            cleanup_cloud(stack, network, guests)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(args, bare, cloud, guests, rules)


def report(
    args: argparse.Namespace,
    bare: dict[str, Transfer],
    cloud: dict[str, Transfer],
    guests: list[Guest],
    rules: dict[str, float],
) -> None:
    print(f"(a) TCP throughput, busybox httpd → wget of {args.mb} MiB (median MB/s)")
    for t in (*bare.values(), *cloud.values()):
        print(f"    {t.name:<34} {t.median:9.1f}   runs {[round(x, 1) for x in t.mbps]}")
    one, two = cloud["VM → VM, one host"], cloud["VM → VM, two hosts (VXLAN)"]
    print(f"    ratio VM one host / bare bridge    {one.median / bare['br'].median:9.4f}")
    print(f"    ratio VM two hosts / bare VXLAN    {two.median / bare['vx'].median:9.4f}")
    print(f"    ratio VM two hosts / VM one host   {two.median / one.median:9.3f}")
    print(f"    ratio bare VXLAN / bare bridge     {bare['vx'].median / bare['br'].median:9.3f}")
    print("(c) DHCP after boot: QEMU start → lease in dnsmasq's file / → GUEST-READY (s)")
    for g in guests:
        print(f"    {g.vm['name']:<34} {g.lease_s:9.2f} / {g.ready_s:.2f}")
    n = args.rules
    print(f"(b) {n} port-forwarding rules, {args.threads} API callers at a time")
    print(f"    all jobs done                      {rules['api_s']:9.1f} s "
          f"({n / rules['api_s']:.1f} rules/s)")  # fmt: skip
    print(f"    all in the router's nftables       {rules['applied_s']:9.1f} s")
    print(f"    router ruleset, one nft -f         {rules['nft_s']:9.3f} s "
          f"({int(rules['script_lines'])} lines)")  # fmt: skip
    print(f"    listPortForwardingRules, {int(rules['pages'])} pages  {rules['list_s']:9.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=32, help="file size in MiB")
    parser.add_argument("--runs", type=int, default=3, help="guest transfers per pair")
    parser.add_argument("--rules", type=int, default=1000, help="port-forwarding rules")
    parser.add_argument("--threads", type=int, default=4, help="API callers at a time")
    args = parser.parse_args()
    if not 1 <= args.mb <= 99:
        sys.exit("--mb: 1 to 99 (the guest's user data must stay under 255 base64 characters)")
    if os.geteuid() != 0:
        sys.exit("net_bench needs root (network namespaces)")
    run(args)


if __name__ == "__main__":
    main()
