"""Security groups on a host: one nftables ``bridge``-family table per VM NIC (tap).

``table bridge cumulo_sg_<tap>`` filters the frames the bridge forwards to and from the tap
(compute-probe §6, recipe B: no br_netfilter needed), replaced atomically with ``nft -f``
like the router's table:

* **from the VM** (``iifname tap``): anti-spoofing first (source MAC must be the NIC's,
  source IPv4 the NIC's address, ARP only for that address; DHCP discovery from 0.0.0.0 is
  let through), then egress: everything while ``egress_default_allow``, else only the
  egress rules (plus DHCP, DNS and TCP replies).
* **to the VM** (``oifname tap``): ARP, then default deny, opened by the ingress rules (a
  CIDR, or a group's members already expanded to ``/32`` by the cloud).

This kernel has no ``nf_conntrack_bridge`` (CONFIG_NF_CONNTRACK_BRIDGE is unset), so the
bridge family cannot track connections. Replies are recognised statelessly instead: TCP
segments that are not a bare SYN (a new connection needs one, so a closed port stays
closed), ICMP echo replies and errors, and UDP from ports 53 (DNS) and 67 (DHCP). A UDP
service of the VM's own needs an ingress rule, and UDP replies to other ports need one too.
IPv6 is not forwarded to or from a filtered NIC (guest networks are IPv4).
"""

from __future__ import annotations

import hashlib
import subprocess
from ipaddress import IPv4Address
from typing import Any

from cumulo.agent.network.router_nft import _cidrs, _ports, _protocol
from cumulo.agentrpc.netconfig import PortRange
from cumulo.agentrpc.sgconfig import SecurityGroupConfig, SecurityGroupRule, from_wire

FAMILY = "bridge"
PREFIX = "cumulo_sg_"
REPLIES = (
    "tcp flags & (syn | ack) != syn accept",  # not a new connection: replies, data, FIN, RST
    "icmp type { echo-reply, destination-unreachable, time-exceeded } accept",
    "udp sport { 53, 67 } accept",
)


def table_name(tap: str) -> str:
    if not tap or len(tap) > 15 or not all(c.isalnum() or c in "-_." for c in tap):
        raise ValueError(f"bad tap name {tap!r}")
    return PREFIX + "".join(c if c.isalnum() else "_" for c in tap)


def _mac(text: str) -> str:
    parts = text.lower().split(":")
    hexdigits = set("0123456789abcdef")
    if len(parts) != 6 or not all(len(p) == 2 and set(p) <= hexdigits for p in parts):
        raise ValueError(f"bad MAC {text!r}")
    return ":".join(parts)


def _match(rule: SecurityGroupRule, peer: str) -> str | None:
    """One accept rule for ``peer`` (``saddr`` for ingress, ``daddr`` for egress)."""
    if not rule.cidrs:
        return None  # a group rule whose group has no member yet opens nothing
    nets = _cidrs(rule.cidrs)
    parts = ["ether type ip", f"ip {peer} {nets}" if nets else ""]
    proto = _protocol(rule.protocol)
    if proto == "icmp":
        parts.append("meta l4proto icmp")
        if rule.icmp_type is not None and rule.icmp_type >= 0:
            parts.append(f"icmp type {int(rule.icmp_type)}")
            if rule.icmp_code is not None and rule.icmp_code >= 0:
                parts.append(f"icmp code {int(rule.icmp_code)}")
    elif proto != "all":
        span = _ports(PortRange(rule.start_port, rule.end_port))
        parts.append(f"{proto} dport {span}" if span else f"meta l4proto {proto}")
    return " ".join(p for p in [*parts, "accept"] if p)


def _from_vm(config: SecurityGroupConfig) -> list[str]:
    lines = [f"ether saddr != {_mac(config.mac)} drop", "ether type ip6 drop"]
    if config.ip is not None:
        ip = str(IPv4Address(config.ip))
        lines += [
            "ip saddr 0.0.0.0 udp sport 68 udp dport 67 accept",  # DHCP before it has an IP
            f"ether type ip ip saddr != {ip} drop",
            f"ether type arp arp saddr ip != {{ 0.0.0.0, {ip} }} drop",
        ]
    lines.append("ether type arp accept")
    if config.egress_default_allow:
        return [*lines, "accept"]
    lines += ["udp dport { 53, 67 } accept", REPLIES[0], REPLIES[1]]  # DHCP, DNS, replies
    lines += [m for m in (_match(r, "daddr") for r in config.egress) if m]
    return [*lines, "drop"]


def _to_vm(config: SecurityGroupConfig) -> list[str]:
    lines = ["ether type arp accept", "ether type ip6 drop", *REPLIES]
    lines += [m for m in (_match(r, "saddr") for r in config.ingress) if m]
    return [*lines, "drop"]


def _chain(name: str, body: list[str], hook: str | None = None) -> str:
    head = [f"\t\ttype filter hook {hook} priority 0; policy accept;"] if hook else []
    return "\n".join([f"\tchain {name} {{", *head, *(f"\t\t{b}" for b in body), "\t}"])


def ruleset(config: SecurityGroupConfig, *, tap: str) -> str:
    """The ``nft -f`` text replacing the NIC's table in one transaction."""
    table = table_name(tap)
    body = "\n".join(
        [
            _chain("from_vm", _from_vm(config)),
            _chain("to_vm", _to_vm(config)),
            _chain(
                "forward",
                [f'iifname "{tap}" jump from_vm', f'oifname "{tap}" jump to_vm'],
                hook="forward",
            ),
        ]
    )
    digest = hashlib.sha256(body.encode()).hexdigest()[:32]
    return (
        f"add table {FAMILY} {table}\n"
        f"delete table {FAMILY} {table}\n"
        f"table {FAMILY} {table} {{\n"
        f'\tcomment "cumulo:{digest}"\n'
        f"{body}\n"
        "}\n"
    )


def _run(netns: str | None, argv: list[str], stdin: str | None = None) -> tuple[int, str]:
    full = ["ip", "netns", "exec", netns, *argv] if netns else argv
    done = subprocess.run(full, input=stdin, capture_output=True, text=True, check=False)
    return done.returncode, done.stdout if done.returncode == 0 else done.stderr


def apply(ruleset_text: str, tap: str, netns: str | None = None) -> str:
    """Load the NIC's table: ``"unchanged"`` when that exact ruleset is in place, else
    ``"updated"``; ``RuntimeError`` (the old table stays) when nft refuses it."""
    wanted = next(
        (ln.strip() for ln in ruleset_text.splitlines() if ln.strip().startswith("comment")),
        None,
    )
    code, listing = _run(netns, ["nft", "list", "table", FAMILY, table_name(tap)])
    if code == 0 and wanted is not None and wanted in listing:
        return "unchanged"
    code, err = _run(netns, ["nft", "-f", "-"], ruleset_text)
    if code != 0:
        raise RuntimeError(f"nft -f failed: {err.strip()}")
    return "updated"


def remove(tap: str, netns: str | None = None) -> None:
    """Drop the NIC's table (VM stopped or expunged, NIC removed); absent is fine."""
    _run(netns, ["nft", "delete", "table", FAMILY, table_name(tap)])


def apply_port(wire: dict[str, Any], tap: str, netns: str | None = None) -> str:
    """Filter ``tap`` as the cloud's ``sgconfig`` wire data says (a start or a rule change)."""
    return apply(ruleset(from_wire(wire), tap=tap), tap, netns)


def tables(netns: str | None = None) -> list[str]:
    """The security-group tables on this host (for the leak checks and the agent's sweep)."""
    code, out = _run(netns, ["nft", "list", "tables", FAMILY])
    if code != 0:
        return []
    names = (line.split()[-1] for line in out.splitlines() if line.startswith("table"))
    return sorted(n for n in names if n.startswith(PREFIX))
