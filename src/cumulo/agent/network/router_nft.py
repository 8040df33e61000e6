"""The virtual router's packet rules: one nftables table rendered from a ``RouterConfig``.

Everything the router does to packets lives in ``table inet cumulo_router`` inside the
router's network namespace, and the whole table is replaced in one ``nft -f`` transaction
("add table; delete table; table {...}"): a reader never sees half a ruleset, and a rule
that was removed from the database is gone after the next apply, with nothing to diff.

CloudStack semantics for an isolated network (shared/reference/cloudstack-api.md):

* **Ingress to public IPs is default deny.** Every new connection from the public side to
  one of the router's public addresses (port forwards, static NAT, load balancers, the
  router itself) needs a matching ``Firewall`` rule on that address; the check runs in
  ``prerouting`` before DNAT so the rule names the public address and port, as the API does.
  A port-forwarding or static-NAT rule alone opens nothing (CloudStack's ``openfirewall``
  creates the firewall rule row on the cloud side).
* **Egress** from the guest CIDR follows the offering's default: with default allow the
  ``Egress`` rules are the traffic that is *blocked*, with default deny they are the traffic
  that is *allowed* (CloudStack's egress policy).
* **Source NAT** rewrites guest traffic leaving the public side to ``source_nat_ip``; a VM
  with static NAT leaves as its own public address.
* Replies (``ct state established,related``), including ICMP errors, are always accepted.

Every address, CIDR, protocol and port is validated before it is written into the text, so a
bad row fails the render (``ValueError``) instead of injecting nft syntax.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, collapse_addresses

from cumulo.agentrpc.netconfig import FirewallRule, PortForward, PortRange, RouterConfig

TABLE = "cumulo_router"
FAMILY = "inet"
L4 = ("tcp", "udp")
PROTOCOLS = ("tcp", "udp", "icmp", "all")


# --- validated fragments -------------------------------------------------------------------


def _ip(text: str) -> str:
    return str(IPv4Address(text))


def _iface(name: str) -> str:
    if not name or len(name) > 15 or not all(c.isalnum() or c in "-_." for c in name):
        raise ValueError(f"bad interface name {name!r}")
    return name


def _cidrs(cidrs: Iterable[str]) -> str | None:
    """An nft set of the CIDRs, or None when they cover everything (no match needed)."""
    nets = [IPv4Network(c, strict=False) for c in cidrs]
    if not nets or any(n.prefixlen == 0 for n in nets):
        return None
    merged = [str(n) for n in collapse_addresses(nets)]  # nft refuses overlapping intervals
    return "{ " + ", ".join(merged) + " }"


def _port(value: int) -> int:
    if not 0 < value < 65536:
        raise ValueError(f"bad port {value}")
    return value


def _ports(ports: PortRange) -> str | None:
    if ports.start is None:
        return None
    start = _port(ports.start)
    end = _port(ports.end if ports.end is not None else ports.start)
    if end < start:
        raise ValueError(f"bad port range {start}-{end}")
    return str(start) if start == end else f"{start}-{end}"


def _protocol(name: str) -> str:
    proto = name.lower()
    if proto not in PROTOCOLS:
        raise ValueError(f"unsupported protocol {name!r}")
    return proto


def _l4_match(protocol: str, ports: PortRange, *, field: str = "dport") -> str:
    """``tcp dport 80-90`` / ``meta l4proto udp`` / ``""`` for protocol all."""
    proto = _protocol(protocol)
    if proto == "all":
        return ""
    if proto == "icmp":
        return "meta l4proto icmp"
    span = _ports(ports)
    return f"{proto} {field} {span}" if span else f"meta l4proto {proto}"


def _icmp_match(rule: FirewallRule) -> str:
    """CloudStack's ICMP type/code; -1 or None means any."""
    parts = ["meta l4proto icmp"]
    if rule.icmp_type is not None and rule.icmp_type >= 0:
        parts.append(f"icmp type {int(rule.icmp_type)}")
        if rule.icmp_code is not None and rule.icmp_code >= 0:
            parts.append(f"icmp code {int(rule.icmp_code)}")
    return " ".join(parts)


def _rule_match(rule: FirewallRule) -> str:
    if _protocol(rule.protocol) == "icmp":
        return _icmp_match(rule)
    return _l4_match(rule.protocol, rule.ports)


def _join(*parts: str | None) -> str:
    return " ".join(p for p in parts if p)


# --- chains --------------------------------------------------------------------------------


def _firewall_in(config: RouterConfig) -> list[str]:
    """Ingress rules on public addresses: accept when a Firewall rule matches, else drop."""
    lines = []
    for rule in config.firewall:
        if rule.public_ip is None:
            continue
        saddr = _cidrs(rule.source_cidrs)
        lines.append(
            _join(
                f"ip daddr {_ip(rule.public_ip)}",
                f"ip saddr {saddr}" if saddr else None,
                _rule_match(rule),
                "accept",
            )
        )
    lines.append("drop")
    return lines


def _egress(config: RouterConfig) -> list[str]:
    """Guest → outside: the rules carry the opposite verdict of the offering's default."""
    verdict = "drop" if config.egress_default_allow else "accept"
    lines = []
    for rule in config.egress:
        saddr = _cidrs(rule.source_cidrs)
        daddr = _cidrs(rule.dest_cidrs)
        lines.append(
            _join(
                f"ip saddr {saddr}" if saddr else None,
                f"ip daddr {daddr}" if daddr else None,
                _rule_match(rule),
                verdict,
            )
        )
    lines.append("accept" if config.egress_default_allow else "drop")
    return lines


def _dnat_target(forward: PortForward) -> str:
    """``dnat ip to P:port`` keeping CloudStack's 1:1 mapping of equal-length ranges."""
    private = _ip(forward.private_ip)
    pub, priv = forward.public_ports, forward.private_ports
    if pub.start is None or priv.start is None or pub.start == priv.start:
        return f"dnat ip to {private}"  # same ports (or all): keep the destination port
    pub_end = pub.end if pub.end is not None else pub.start
    priv_end = priv.end if priv.end is not None else priv.start
    if pub_end - pub.start != priv_end - priv.start:
        raise ValueError("public and private port ranges differ in length")
    if pub_end == pub.start:
        return f"dnat ip to {private}:{_port(priv.start)}"
    proto = _protocol(forward.protocol)
    pairs = ", ".join(
        f"{_port(pub.start + i)} : {_port(priv.start + i)}" for i in range(pub_end - pub.start + 1)
    )
    return f"dnat ip to {private} : {proto} dport map {{ {pairs} }}"


def _forward_rule(forward: PortForward, inbound: str) -> str:
    proto = _protocol(forward.protocol)
    if proto not in L4:
        raise ValueError(f"port forwarding needs tcp or udp, not {proto}")
    saddr = _cidrs(forward.source_cidrs)
    return _join(
        f"iifname {inbound}",
        f"ip daddr {_ip(forward.public_ip)}",
        f"ip saddr {saddr}" if saddr else None,
        _l4_match(proto, forward.public_ports),
        _dnat_target(forward),
    )


def _dstnat(config: RouterConfig, public_if: str, guest_if: str) -> list[str]:
    """From the public side, and from guests (hairpin: a VM using a public address of its
    own network reaches the same VM as the outside does)."""
    inbound = f'{{ "{public_if}", "{guest_if}" }}'
    lines = [_forward_rule(f, inbound) for f in config.port_forwards]
    for nat in config.static_nats:
        lines.append(
            f"iifname {inbound} ip daddr {_ip(nat.public_ip)} dnat ip to {_ip(nat.private_ip)}"
        )
    return lines


def _srcnat(config: RouterConfig, public_if: str, guest_if: str) -> list[str]:
    cidr = IPv4Network(config.cidr, strict=False)
    # hairpin: the reply must come back through the router to be un-NATed
    hairpin = (
        f'oifname "{guest_if}" ip saddr {cidr} ct status dnat snat ip to {_ip(config.router_ip)}'
    )
    lines = [hairpin] if config.port_forwards or config.static_nats else []
    lines += [
        f'oifname "{public_if}" ip saddr {_ip(nat.private_ip)} snat ip to {_ip(nat.public_ip)}'
        for nat in config.static_nats
    ]
    if config.source_nat_ip:
        lines.append(
            f'oifname "{public_if}" ip saddr {cidr} snat ip to {_ip(config.source_nat_ip)}'
        )
    return lines


def _chain(name: str, hook: str | None, body: list[str], *, policy: str = "accept") -> str:
    head = []
    if hook is not None:
        kind, where, priority = hook.split()
        head.append(f"\t\ttype {kind} hook {where} priority {priority}; policy {policy};")
    rules = [f"\t\t{line}" for line in body]
    return "\n".join([f"\tchain {name} {{", *head, *rules, "\t}"])


def _chains(config: RouterConfig, guest_if: str, public_if: str | None) -> list[str]:
    g = f'"{guest_if}"'
    public_ips = sorted({_ip(a) for a in (*config.public_ips, config.source_nat_ip or "") if a})
    chains = []
    input_rules = ["ct state established,related accept", "ct state invalid drop"]
    input_rules += ['iifname "lo" accept', f"iifname {g} accept"]
    forward_rules = ["ct state established,related accept", "ct state invalid drop"]
    if public_if is not None:
        p = f'"{public_if}"'
        addrs = "{ " + ", ".join(public_ips) + " }" if public_ips else None
        pre = ["ct state established,related accept"]
        if addrs:
            pre.append(f"iifname {p} ip daddr {addrs} ct state new jump firewall_in")
        chains.append(_chain("firewall_in", None, _firewall_in(config)))
        chains.append(_chain("filter_pre", "filter prerouting -150", pre))
        chains.append(
            _chain("dstnat", "nat prerouting dstnat", _dstnat(config, public_if, guest_if))
        )
        chains.append(
            _chain("srcnat", "nat postrouting srcnat", _srcnat(config, public_if, guest_if))
        )
        chains.append(_chain("egress", None, _egress(config)))
        if addrs:
            input_rules.append(f"iifname {p} ip daddr {addrs} accept")  # passed firewall_in
        forward_rules.append(f"iifname {{ {p}, {g} }} oifname {g} ct status dnat accept")
        forward_rules.append(f"iifname {g} oifname {p} jump egress")
    input_rules.append("meta l4proto icmp accept")  # pings to the router's own addresses
    chains.append(_chain("input", "filter input 0", input_rules, policy="drop"))
    chains.append(_chain("forward", "filter forward 0", forward_rules, policy="drop"))
    return chains


# --- public entry points -------------------------------------------------------------------


def render(config: RouterConfig, *, guest_if: str, public_if: str | None) -> str:
    """The chains alone, for a caller that wraps them in its own table (``ip`` or ``inet``
    family; the rules match IPv4 only). Prefer ``ruleset``, which adds the atomic replace."""
    guest = _iface(guest_if)
    public = _iface(public_if) if public_if is not None else None
    return "\n".join(_chains(config, guest, public)) + "\n"


def ruleset(config: RouterConfig, *, guest_if: str, public_if: str | None) -> str:
    """The complete ``nft -f`` input that atomically replaces the router's table.

    ``guest_if`` is the router's leg on the guest bridge, ``public_if`` its leg on the public
    network (None for a network without public access: guests reach only the router).
    The table carries a digest of its body as its comment so ``apply`` can skip a ruleset
    that is already in place.
    """
    body = render(config, guest_if=guest_if, public_if=public_if)
    digest = hashlib.sha256(body.encode()).hexdigest()[:32]
    return (
        f"add table {FAMILY} {TABLE}\n"
        f"delete table {FAMILY} {TABLE}\n"
        f"table {FAMILY} {TABLE} {{\n"
        f'\tcomment "cumulo:{digest}"\n'
        f"{body}"
        "}\n"
    )


def _netns_cmd(netns: str | None, argv: list[str]) -> list[str]:
    return ["ip", "netns", "exec", netns, *argv] if netns else argv


def current_digest(netns: str | None) -> str | None:
    """The digest comment of the router table in ``netns``, or None when it is absent."""
    done = subprocess.run(
        _netns_cmd(netns, ["nft", "list", "table", FAMILY, TABLE]),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return None
    try:
        return _digest_of(done.stdout)
    except ValueError:
        return None


def _digest_of(text: str) -> str:
    for line in text.splitlines():
        line = line.strip()
        if line.startswith('comment "cumulo:'):
            return line.removeprefix('comment "cumulo:').rstrip('"')
    raise ValueError("not a ruleset rendered by router_nft.ruleset")


def apply(ruleset_text: str, netns: str | None, *, force: bool = False) -> str:
    """Load the ruleset in one transaction: returns ``"unchanged"`` or ``"updated"``.

    A ruleset whose digest is already loaded is not reloaded (re-applying the same
    config is a no-op, as a reconciler needs); the check trusts the table's comment, so a
    hand-edited table is only corrected with ``force=True`` (e.g. on restartNetwork).
    Raises ``RuntimeError`` with nft's message when the kernel refuses it; the previous
    table then stays in place.
    """
    if not force and current_digest(netns) == _digest_of(ruleset_text):
        return "unchanged"
    done = subprocess.run(
        _netns_cmd(netns, ["nft", "-f", "-"]),
        input=ruleset_text,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"nft -f failed: {done.stderr.strip()}")
    return "updated"


def remove(netns: str | None) -> None:
    """Delete the router table (a router being torn down); absent is fine."""
    subprocess.run(
        _netns_cmd(netns, ["nft", "delete", "table", FAMILY, TABLE]),
        capture_output=True,
        check=False,
    )
