"""The router's nftables table on real namespaces: NAT, firewall and egress as CloudStack means.

Guests sit behind a router namespace; an "internet" namespace plays the outside world and
runs the clients and a server that echoes the address it sees (tests/agent/routerns.py).
Every probe runs inside a namespace; nothing is sent from the root namespace.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cumulo.agent.network import router_nft
from cumulo.agentrpc.netconfig import (
    FirewallRule,
    PortForward,
    PortRange,
    RouterConfig,
    StaticNat,
)
from tests.agent.routerns import (
    INTERNET_IP,
    INTERNET_IP2,
    PUBLIC_IPS,
    Topology,
    curl,
    netns_run,
    router_topology,
)

pytestmark = [
    pytest.mark.net,
    pytest.mark.skipif(shutil.which("nft") is None, reason="nftables missing"),
]

SNAT_IP, STATIC_IP, _ = PUBLIC_IPS
ANY = ("0.0.0.0/0",)


def config(topo: Topology, **changes: object) -> RouterConfig:
    base = RouterConfig(
        network_id="net-test",
        generation=1,
        vni=None,
        bridge="rg0",
        cidr=topo.cidr,
        netmask="255.255.255.0",
        router_ip=topo.router_ip,
        domain="cs.internal",
        dns_servers=(),
        services=("Firewall", "PortForwarding", "SourceNat", "StaticNat"),
        source_nat_ip=SNAT_IP,
        public_ips=PUBLIC_IPS,
        dhcp=(),
        vm_data=(),
        port_forwards=(),
        static_nats=(),
        firewall=(),
        egress_default_allow=True,
        egress=(),
        load_balancers=(),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def ports(start: int, end: int | None = None) -> PortRange:
    return PortRange(start, end if end is not None else start)


def fw(public_ip: str, start: int, end: int | None = None, *, cidrs: tuple[str, ...] = ANY,
       protocol: str = "tcp") -> FirewallRule:  # fmt: skip
    return FirewallRule(public_ip, protocol, ports(start, end), cidrs)


def apply(topo: Topology, cfg: RouterConfig) -> str:
    text = router_nft.ruleset(cfg, guest_if="rg0", public_if="rp0")
    return router_nft.apply(text, topo.router)


@pytest.fixture
def topo(tmp_path: Path) -> Iterator[Topology]:
    with router_topology(tmp_path) as t:
        t.add_guest(0)
        t.add_guest(1)
        t.echo_server(t.guest(0), "guest0", t.guest_ip(0), 80)
        t.echo_server(t.guest(0), "guest0-7001", t.guest_ip(0), 7001)
        t.echo_server(t.guest(1), "guest1", t.guest_ip(1), 80)
        t.echo_server(t.internet, "internet", INTERNET_IP, 8000)
        yield t


def test_source_nat_and_egress_policy(topo: Topology) -> None:
    outside = f"http://{INTERNET_IP}:8000/"
    # default allow: the internet sees the guest as the source NAT address
    apply(topo, config(topo))
    assert curl(topo.guest(0), outside) == f"internet {SNAT_IP}"
    # default allow + an egress rule = that traffic is blocked (CloudStack's inverted rules)
    block = FirewallRule(None, "tcp", ports(8000), (topo.cidr,), (f"{INTERNET_IP}/32",))
    apply(topo, config(topo, egress=(block,)))
    assert curl(topo.guest(0), outside) is None
    # default deny: nothing leaves...
    apply(topo, config(topo, egress_default_allow=False))
    assert curl(topo.guest(0), outside) is None
    # ...except what an egress rule allows
    allow = FirewallRule(None, "tcp", ports(8000), ())
    apply(topo, config(topo, egress_default_allow=False, egress=(allow,)))
    assert curl(topo.guest(0), outside) == f"internet {SNAT_IP}"
    # the guest still reaches its router (DNS, metadata) whatever the egress policy
    assert _ping(topo.guest(0), topo.router_ip)


def test_port_forward_needs_a_firewall_rule(topo: Topology) -> None:
    forward = PortForward(SNAT_IP, "tcp", ports(8080), topo.guest_ip(0), ports(80), ANY)
    url = f"http://{SNAT_IP}:8080/"
    apply(topo, config(topo, port_forwards=(forward,)))
    assert curl(topo.internet, url) is None  # ingress default deny: the forward alone is shut
    apply(topo, config(topo, port_forwards=(forward,), firewall=(fw(SNAT_IP, 8080),)))
    assert curl(topo.internet, url) == f"guest0 {INTERNET_IP}"  # client address preserved
    apply(topo, config(topo, port_forwards=(forward,)))
    assert curl(topo.internet, url) is None  # the firewall rule removed: unreachable again
    # nothing of the guest is reachable directly from the outside
    assert curl(topo.internet, f"http://{topo.guest_ip(0)}/") is None


def test_port_range_forward_and_source_cidrs(topo: Topology) -> None:
    ranged = PortForward(
        SNAT_IP, "tcp", ports(9000, 9001), topo.guest_ip(0), ports(7000, 7001),
        (f"{INTERNET_IP}/32",),
    )  # fmt: skip
    rules = (fw(SNAT_IP, 9000, 9001),)
    apply(topo, config(topo, port_forwards=(ranged,), firewall=rules))
    url = f"http://{SNAT_IP}:9001/"
    assert curl(topo.internet, url) == f"guest0-7001 {INTERNET_IP}"  # 9001 → 7001, 1:1
    assert curl(topo.internet, url, source=INTERNET_IP2) is None  # not in the forward's CIDRs
    # the firewall rule's own CIDR list is enforced too
    narrow = (fw(SNAT_IP, 9000, 9001, cidrs=(f"{INTERNET_IP2}/32",)),)
    apply(topo, config(topo, port_forwards=(ranged,), firewall=narrow))
    assert curl(topo.internet, url) is None


def test_static_nat(topo: Topology) -> None:
    nat = StaticNat(STATIC_IP, topo.guest_ip(1))
    url = f"http://{STATIC_IP}/"
    apply(topo, config(topo, static_nats=(nat,)))
    assert curl(topo.internet, url) is None
    apply(topo, config(topo, static_nats=(nat,), firewall=(fw(STATIC_IP, 80),)))
    assert curl(topo.internet, url) == f"guest1 {INTERNET_IP}"
    # outbound, the static-NAT VM leaves as its own public address, the others as source NAT
    outside = f"http://{INTERNET_IP}:8000/"
    assert curl(topo.guest(1), outside) == f"internet {STATIC_IP}"
    assert curl(topo.guest(0), outside) == f"internet {SNAT_IP}"
    # ICMP to a public address needs an ICMP firewall rule too
    assert not _ping(topo.internet, STATIC_IP)
    icmp = FirewallRule(STATIC_IP, "icmp", PortRange(None, None), ANY, icmp_type=-1)
    apply(topo, config(topo, static_nats=(nat,), firewall=(fw(STATIC_IP, 80), icmp)))
    assert _ping(topo.internet, STATIC_IP)
    apply(topo, config(topo, firewall=(fw(STATIC_IP, 80), icmp)))
    assert curl(topo.internet, url) is None  # static NAT disabled


def test_hairpin_from_guests(topo: Topology) -> None:
    """A VM using a public address of its own network reaches the same VM as the outside."""
    forward = PortForward(SNAT_IP, "tcp", ports(8080), topo.guest_ip(0), ports(80), ANY)
    nat = StaticNat(STATIC_IP, topo.guest_ip(1))
    cfg = config(topo, port_forwards=(forward,), static_nats=(nat,), firewall=(fw(SNAT_IP, 8080),))
    apply(topo, cfg)
    # replies must come back through the router, so the target sees the router's address
    assert curl(topo.guest(1), f"http://{SNAT_IP}:8080/") == f"guest0 {topo.router_ip}"
    assert curl(topo.guest(0), f"http://{STATIC_IP}/") == f"guest1 {topo.router_ip}"
    assert curl(topo.guest(1), f"http://{SNAT_IP}:8081/") is None  # no forward there


def test_reapply_is_a_no_op_and_replaces_atomically(topo: Topology) -> None:
    cfg = config(
        topo,
        port_forwards=(PortForward(SNAT_IP, "tcp", ports(8080), topo.guest_ip(0), ports(80), ANY),),
        firewall=(fw(SNAT_IP, 8080),),
    )
    text = router_nft.ruleset(cfg, guest_if="rg0", public_if="rp0")
    assert router_nft.apply(text, topo.router) == "updated"
    before = _listing(topo)
    assert router_nft.apply(text, topo.router) == "unchanged"
    # loading the same text again by force replaces the table: no rule is doubled
    forced = netns_run(topo.router, "sh", "-c", f"nft -f - <<'EOF'\n{text}EOF\n")
    assert forced.returncode == 0, forced.stderr
    assert _listing(topo) == before
    assert curl(topo.internet, f"http://{SNAT_IP}:8080/") == f"guest0 {INTERNET_IP}"
    # a hand-edited table keeps its comment: only force puts the rendered one back
    netns_run(topo.router, "nft", "flush", "chain", "inet", router_nft.TABLE, "dstnat")
    assert router_nft.apply(text, topo.router) == "unchanged"
    assert router_nft.apply(text, topo.router, force=True) == "updated"
    assert _listing(topo) == before
    # a refused ruleset leaves the working one in place
    with pytest.raises(RuntimeError):
        bad = text.replace("snat ip to", "snat ip tu").replace('"cumulo:', '"cumulo:0')
        router_nft.apply(bad, topo.router)
    assert _listing(topo) == before


def test_a_bad_row_fails_the_render(topo: Topology) -> None:
    bad = PortForward('1.2.3.4"; flush ruleset; "', "tcp", ports(1), "10.0.0.1", ports(1), ANY)
    with pytest.raises(ValueError):
        router_nft.ruleset(config(topo, port_forwards=(bad,)), guest_if="rg0", public_if="rp0")


def test_thousand_port_forwards(topo: Topology) -> None:
    forwards = tuple(
        PortForward(SNAT_IP, "tcp", ports(20000 + i), topo.guest_ip(0), ports(80), ANY)
        for i in range(1000)
    )
    cfg = config(topo, port_forwards=forwards, firewall=(fw(SNAT_IP, 20000, 20999),))
    started = time.perf_counter()
    text = router_nft.ruleset(cfg, guest_if="rg0", public_if="rp0")
    rendered = time.perf_counter()
    assert router_nft.apply(text, topo.router) == "updated"
    done = time.perf_counter()
    print(
        f"\n1000 port forwards: render {rendered - started:.3f}s, nft apply {done - rendered:.3f}s"
    )
    assert done - started < 20
    assert curl(topo.internet, f"http://{SNAT_IP}:20999/") == f"guest0 {INTERNET_IP}"
    assert curl(topo.internet, f"http://{SNAT_IP}:21000/") is None
    again = time.perf_counter()
    assert router_nft.apply(text, topo.router) == "unchanged"
    print(f"re-apply of the same 1000 rules: {time.perf_counter() - again:.3f}s")


def _listing(topo: Topology) -> str:
    done = netns_run(topo.router, "nft", "list", "table", "inet", router_nft.TABLE)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _ping(ns: str, address: str) -> bool:
    done = netns_run(ns, "busybox", "ping", "-c", "1", "-W", "2", address)
    return done.returncode == 0
