"""The host network layer on real Linux parts, between namespaces the test creates.

Two namespaces stand for two hosts joined by a veth underlay; each gets the guest segment of
one VNI (bridge + unicast VXLAN with head-end forwarding entries), and traffic crosses it.
A router namespace is applied on one of them (dnsmasq answering names, nftables source NAT),
applied again without change, and destroyed without a trace. No default route anywhere; the
addresses are private ranges of our own, never probed from the root namespace.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cumulo.agent.network.host_net import Ip, ensure_segment, fdb_peers, remove_segment, segments
from cumulo.agent.network.router_ns import PublicSide, Router, namespaces
from cumulo.agentrpc.netconfig import DhcpEntry, RouterConfig

pytestmark = [
    pytest.mark.net,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
]


def sh(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)


@pytest.fixture
def two_hosts() -> Iterator[tuple[str, str]]:
    tag = uuid.uuid4().hex[:6]
    a, b = f"thn-{tag}a", f"thn-{tag}b"
    try:
        for ns in (a, b):
            assert sh("ip", "netns", "add", ns).returncode == 0
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", a, "link", "add", "u0", "type", "veth", "peer", "name", "u0", "netns", b)
        for ns, addr in ((a, "10.239.7.1/24"), (b, "10.239.7.2/24")):
            sh("ip", "-n", ns, "addr", "add", addr, "dev", "u0")
            sh("ip", "-n", ns, "link", "set", "u0", "up")
        yield a, b
    finally:
        for ns in (a, b):
            sh("ip", "netns", "del", ns)


def test_a_segment_joins_two_hosts_over_unicast_vxlan(two_hosts: tuple[str, str]) -> None:
    a, b = (Ip(ns) for ns in two_hosts)
    made = ensure_segment(a, 6101, "10.239.7.1", ("10.239.7.2", "10.239.7.1"))
    assert made["changed"] == ["brvx6101", "vxlan6101", "fdb 10.239.7.2"]
    assert ensure_segment(a, 6101, "10.239.7.1", ("10.239.7.2",))["changed"] == []
    ensure_segment(b, 6101, "10.239.7.2", ("10.239.7.1",))
    vx = a.link("vxlan6101")
    assert vx is not None and vx["master"] == "brvx6101"
    assert vx["linkinfo"]["info_data"]["learning"] is False
    assert fdb_peers(a, 6101) == ["10.239.7.2"]
    a.run("addr", "add", "10.238.7.1/24", "dev", "brvx6101")
    b.run("addr", "add", "10.238.7.2/24", "dev", "brvx6101")
    ping = sh("ip", "netns", "exec", two_hosts[0], "busybox", "ping", "-c", "2", "-W", "3",
              "10.238.7.2")  # fmt: skip
    assert ping.returncode == 0, ping.stdout + ping.stderr
    ensure_segment(a, 6101, "10.239.7.1", ())  # the other host left: its entry goes
    assert fdb_peers(a, 6101) == []
    assert sh("ip", "netns", "exec", two_hosts[0], "busybox", "ping", "-c", "1", "-W", "2",
              "10.238.7.2").returncode != 0  # fmt: skip
    a.run("link", "del", "vxlan6101")  # deleted behind our back: ensure makes it again
    assert "vxlan6101" in ensure_segment(a, 6101, "10.239.7.1", ("10.239.7.2",))["changed"]
    assert remove_segment(a, 6101) and segments(a) == []


def running(pid: int) -> bool:
    """Alive and not a zombie (an orphaned daemon is reaped by whoever adopts it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def config(network_id: str, vni: int) -> RouterConfig:
    return RouterConfig(
        network_id=network_id, generation=0, vni=vni, bridge=f"brvx{vni}",
        cidr="10.238.8.0/24", netmask="255.255.255.0", router_ip="10.238.8.1",
        domain="t.internal", dns_servers=("10.0.0.1",), services=("Dhcp", "Dns", "SourceNat"),
        source_nat_ip="10.237.8.10", public_ips=("10.237.8.10",),
        dhcp=(DhcpEntry("02:00:00:00:01:05", "10.238.8.5", "web-one", True),),
        vm_data=(), port_forwards=(), static_nats=(), firewall=(), egress_default_allow=True,
        egress=(), load_balancers=(),
    )  # fmt: skip


def test_a_router_namespace_is_applied_idempotently_and_leaves_nothing(
    two_hosts: tuple[str, str], tmp_path: Path
) -> None:
    host = Ip(two_hosts[0])
    host.run("link", "add", "pub0", "type", "bridge")
    host.run("link", "set", "pub0", "up")
    network_id = str(uuid.uuid4())
    router = Router(network_id, tmp_path, host)
    cfg = config(network_id, 6102)
    public = PublicSide("pub0", 24, "10.237.8.1")
    try:
        first = router.apply(cfg, public, "10.239.7.1", ("10.239.7.2",))
        assert first["changed"] is True and router.ns in namespaces()
        assert router.apply(cfg, public, "10.239.7.1", ("10.239.7.2",))["changed"] is False
        answer = sh("ip", "netns", "exec", router.ns, "busybox", "nslookup", "web-one",
                    "10.238.8.1").stdout  # fmt: skip
        assert "10.238.8.5" in answer, answer
        ds = sh("ip", "netns", "exec", router.ns, "busybox", "nslookup", "data-server",
                "10.238.8.1").stdout  # fmt: skip
        assert "10.238.8.1" in ds.split("Name:")[-1], ds
        nft = sh("ip", "netns", "exec", router.ns, "nft", "list", "table", "ip", "cumulo").stdout
        assert "snat to 10.237.8.10" in nft and "10.238.8.0/24" in nft, nft
        route = sh("ip", "-n", router.ns, "route", "show", "default").stdout
        assert "via 10.237.8.1 dev eth1" in route

        sh("ip", "netns", "del", router.ns)  # lost: the same config rebuilds it
        again = router.apply(cfg, public, "10.239.7.1", ("10.239.7.2",))
        assert again["changed"] is True and router.healthy(cfg, public)
        pid = int((router.run_dir / "dnsmasq.pid").read_text())
    finally:
        gone = router.destroy()
    assert gone["segment_removed"] is True
    assert router.ns not in namespaces()
    assert not running(pid)
    names = {link["ifname"] for link in host.json("link", "show")}
    assert names == {"lo", "u0", "pub0"}, names
    assert not router.run_dir.exists()
