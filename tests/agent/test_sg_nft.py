"""Security groups as bridge-family nftables tables, between namespaces on a real bridge.

A "host" namespace holds a bridge with no address; three VM namespaces (a, b, c) hang off it
by veths whose host ends play the taps. The table under test filters a's port. Every probe
runs between the VM namespaces; nothing is sent from the root namespace.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cumulo.agent.network import sg_nft
from cumulo.agentrpc.sgconfig import SecurityGroupConfig, SecurityGroupRule, from_wire, to_wire
from tests.agent.routerns import Topology, blackholes, curl, ip, netns_run

pytestmark = [
    pytest.mark.net,
    pytest.mark.skipif(shutil.which("nft") is None, reason="nftables missing"),
]

MAC_A = "02:00:0a:00:00:0a"


@dataclasses.dataclass
class Lab:
    topo: Topology
    host: str
    net: int

    def addr(self, vm: str) -> str:
        return f"10.213.{self.net}.{ {'a': 10, 'b': 11, 'c': 12}[vm] }"

    def ns(self, vm: str) -> str:
        return f"sv{self.topo.suffix}{vm}"

    @property
    def tap(self) -> str:
        return f"vh{self.topo.suffix}a"

    def sg(self, ingress: tuple[SecurityGroupRule, ...] = (),
           egress: tuple[SecurityGroupRule, ...] = (), allow_out: bool = True) -> str:  # fmt: skip
        cfg = SecurityGroupConfig(
            vm_id="vm-a", nic_id="nic-a", mac=MAC_A, ip=self.addr("a"), bridge="br0",
            ingress=ingress, egress=egress, egress_default_allow=allow_out,
        )  # fmt: skip
        return sg_nft.apply(sg_nft.ruleset(cfg, tap=self.tap), self.tap, self.host)

    def get(self, src: str, dst: str, port: int, source: str | None = None) -> str | None:
        return curl(self.ns(src), f"http://{self.addr(dst)}:{port}/", source=source)


def tcp(port: int, *cidrs: str) -> SecurityGroupRule:
    return SecurityGroupRule("tcp", port, port, None, None, cidrs)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    suffix = uuid.uuid4().hex[:5]
    topo = Topology(suffix, 0, tmp_path)
    lab = Lab(topo, f"sh{suffix}", int(uuid.uuid4().int % 250) + 1)
    with blackholes():
        try:
            topo.add_namespace(lab.host)
            ip("-n", lab.host, "link", "add", "br0", "type", "bridge")
            ip("-n", lab.host, "link", "set", "br0", "up")
            for vm in "abc":
                ns = lab.ns(vm)
                topo.add_namespace(ns)
                port = f"vh{suffix}{vm}"
                ip("link", "add", port, "netns", lab.host, "type", "veth", "peer", "name",
                   "eth0", "netns", ns)  # fmt: skip
                ip("-n", lab.host, "link", "set", port, "master", "br0", "up")
                if vm == "a":
                    ip("-n", ns, "link", "set", "eth0", "address", MAC_A)
                ip("-n", ns, "addr", "add", f"{lab.addr(vm)}/24", "dev", "eth0")
                ip("-n", ns, "link", "set", "eth0", "up")
            for vm, tcp_port in (("a", 80), ("a", 8080), ("b", 8000), ("c", 8000)):
                topo.echo_server(lab.ns(vm), vm, lab.addr(vm), tcp_port)
            yield lab
        finally:
            topo.close()


def test_ingress_default_deny_allowed_by_rule_and_revoked(lab: Lab) -> None:
    assert lab.get("c", "a", 80) == f"a {lab.addr('c')}"  # no group: open
    assert lab.sg(ingress=(tcp(80, f"{lab.addr('b')}/32"),)) == "updated"
    assert lab.get("b", "a", 80) == f"a {lab.addr('b')}"  # the rule's source (a group member)
    assert lab.get("c", "a", 80) is None  # anyone else: default deny
    assert lab.get("b", "a", 8080) is None  # another port
    assert lab.get("a", "c", 8000) == f"c {lab.addr('a')}"  # egress open, replies come back
    assert lab.get("b", "c", 8000) == f"c {lab.addr('b')}"  # other ports are not filtered
    lab.sg()  # revoked
    assert lab.get("b", "a", 80) is None
    lab.sg(ingress=(tcp(80, f"10.213.{lab.net}.0/24"),))  # a CIDR rule
    assert lab.get("c", "a", 80) == f"a {lab.addr('c')}"
    assert lab.get("c", "a", 8080) is None


def test_egress_rules_when_the_default_is_deny(lab: Lab) -> None:
    lab.sg(egress=(tcp(8000, f"{lab.addr('b')}/32"),), allow_out=False)
    assert lab.get("a", "b", 8000) == f"b {lab.addr('a')}"
    assert lab.get("a", "c", 8000) is None


def test_anti_spoofing(lab: Lab) -> None:
    lab.sg()
    spoofed = f"10.213.{lab.net}.99"
    ip("-n", lab.ns("a"), "addr", "add", f"{spoofed}/24", "dev", "eth0")
    assert lab.get("a", "b", 8000) == f"b {lab.addr('a')}"
    assert lab.get("a", "b", 8000, source=spoofed) is None  # not the NIC's address
    ip("-n", lab.ns("a"), "link", "set", "eth0", "address", "02:00:0a:00:00:99")
    netns_run(lab.ns("b"), "ip", "neigh", "flush", "all")
    assert lab.get("a", "b", 8000) is None  # not the NIC's MAC
    sg_nft.remove(lab.tap, lab.host)  # the filter, not the setup, stopped them
    assert lab.get("a", "b", 8000) == f"b {lab.addr('a')}"
    assert lab.get("a", "b", 8000, source=spoofed) == f"b {spoofed}"


def test_reapply_and_remove(lab: Lab) -> None:
    rules = (tcp(80, f"{lab.addr('b')}/32"),)
    assert lab.sg(ingress=rules) == "updated"
    assert lab.sg(ingress=rules) == "unchanged"
    listing = netns_run(lab.host, "nft", "list", "table", "bridge", sg_nft.table_name(lab.tap))
    assert listing.stdout.count("tcp dport 80 accept") == 1
    sg_nft.remove(lab.tap, lab.host)
    assert netns_run(lab.host, "nft", "list", "tables").stdout.strip() == ""
    assert lab.get("c", "a", 80) == f"a {lab.addr('c')}"


def test_wire_round_trip_keeps_the_config_and_its_ruleset() -> None:
    """What StartVm's NIC spec and ApplySecurityGroups carry rebuilds the same config, so the
    host's table digest matches and a resend is "unchanged"."""
    rule = SecurityGroupRule("tcp", 80, 81, None, None, ("10.0.0.0/8", "192.0.2.7/32"))
    config = SecurityGroupConfig(
        vm_id="vm", nic_id="nic", mac="02:00:00:00:00:09", ip="10.1.0.9", bridge="brvx9",
        ingress=(rule,), egress=(), egress_default_allow=True, device_id=1,
    )  # fmt: skip
    wire = to_wire(config)
    assert json.loads(json.dumps(wire)) == wire, "plain JSON"
    back = from_wire(json.loads(json.dumps(wire)))
    assert back == config
    assert sg_nft.ruleset(back, tap="ctabc") == sg_nft.ruleset(config, tap="ctabc")
