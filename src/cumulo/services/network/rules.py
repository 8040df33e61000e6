"""Firewall, egress, port-forwarding and load-balancing rules: validated, conflict-checked,
recorded.

Validation is CloudStack's: protocols by purpose, ports 1-65535 with start <= end, ICMP type
and code -1..255 for ICMP only, CIDRs that parse. Conflicts (CS NetworkRuleConflictException,
537) are overlapping public port ranges on one address between port forwarding and load
balancing rules, any such rule on a static NAT address, and a second identical firewall rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Network
from typing import TypeVar

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from cumulo.db.models_compute import VirtualMachine
from cumulo.db.models_network import (
    LbHealthCheckPolicy,
    LbStickinessPolicy,
    LoadBalancerMember,
    Network,
    NetworkRule,
    PublicIpAddress,
)
from cumulo.services.errors import NotFound, ParamError
from cumulo.services.network import ipam, public_ips
from cumulo.services.network.errors import RuleConflict
from cumulo.services.usage import events as usage

FIREWALL_PROTOCOLS = ("tcp", "udp", "icmp", "all")
FORWARD_PROTOCOLS = ("tcp", "udp")
LB_ALGORITHMS = ("roundrobin", "leastconn", "source")


@dataclass
class Ports:
    start: int | None = None
    end: int | None = None

    def overlaps(self, other: Ports) -> bool:
        if self.start is None or other.start is None:
            return True  # no ports = every port
        return self.start <= (other.end or other.start) and other.start <= (self.end or self.start)


@dataclass
class RuleSpec:
    protocol: str = "tcp"
    ports: Ports = field(default_factory=Ports)
    icmp_type: int | None = None
    icmp_code: int | None = None
    source_cidrs: list[str] = field(default_factory=list)
    dest_cidrs: list[str] = field(default_factory=list)


def protocol(value: str, allowed: tuple[str, ...]) -> str:
    low = value.strip().lower()
    if low not in allowed:
        raise ParamError(f"Invalid protocol {value}: expected one of {', '.join(allowed)}")
    return low


def ports(start: int | None, end: int | None, what: str = "port") -> Ports:
    if start is None:
        if end is not None:
            raise ParamError(f"End {what} needs a start {what}")
        return Ports()
    last = start if end is None else end
    for value in (start, last):
        if not 1 <= value <= 65535:
            raise ParamError(f"Invalid {what} {value}: ports go from 1 to 65535")
    if start > last:
        raise ParamError(f"Start {what} {start} is greater than end {what} {last}")
    return Ports(start, last)


def cidrs(values: list[str] | None, default: str | None = "0.0.0.0/0") -> list[str]:
    out = []
    for raw in values or []:
        for part in raw.split(","):
            if not part.strip():
                continue
            try:
                out.append(str(IPv4Network(part.strip(), strict=False)))
            except ValueError:
                raise ParamError(f"Invalid CIDR {part.strip()}") from None
    return out or ([default] if default else [])


def check_icmp(spec: RuleSpec) -> None:
    if spec.protocol != "icmp":
        if spec.icmp_type is not None or spec.icmp_code is not None:
            raise ParamError("ICMP type and code can only be given for protocol icmp")
        return
    if spec.ports.start is not None:
        raise ParamError("Ports can't be given for protocol icmp")
    for value in (spec.icmp_type, spec.icmp_code):
        if value is not None and not -1 <= value <= 255:
            raise ParamError(f"Invalid ICMP type or code {value}: expected -1 to 255")


def find(session: Session, uuid: str, *purposes: str) -> NetworkRule:
    rule = session.scalar(
        select(NetworkRule).where(NetworkRule.uuid == uuid, NetworkRule.purpose.in_(purposes))
    )
    if rule is None:
        raise NotFound(f"Unable to find rule by id {uuid}")
    return rule


def _rules_on(session: Session, ip: PublicIpAddress, *purposes: str) -> list[NetworkRule]:
    return list(
        session.scalars(
            select(NetworkRule).where(
                NetworkRule.public_ip_id == ip.id, NetworkRule.purpose.in_(purposes)
            )
        )
    )


def _base(
    ip: PublicIpAddress | None, network: Network, purpose: str, spec: RuleSpec
) -> NetworkRule:
    return NetworkRule(
        purpose=purpose,
        network_id=network.id,
        public_ip_id=ip.id if ip is not None else None,
        account_id=network.account_id if ip is None else ip.account_id,
        domain_id=network.domain_id if ip is None else ip.domain_id,
        protocol=spec.protocol,
        start_port=spec.ports.start,
        end_port=spec.ports.end,
        icmp_type=spec.icmp_type,
        icmp_code=spec.icmp_code,
        source_cidrs=spec.source_cidrs,
        dest_cidrs=spec.dest_cidrs,
    )


def _same_firewall(rule: NetworkRule, spec: RuleSpec) -> bool:
    return (
        rule.protocol == spec.protocol
        and rule.start_port == spec.ports.start
        and rule.end_port == spec.ports.end
        and sorted(rule.source_cidrs or []) == sorted(spec.source_cidrs)
        and rule.icmp_type == spec.icmp_type
        and rule.icmp_code == spec.icmp_code
    )


def create_firewall(session: Session, ip: PublicIpAddress, spec: RuleSpec) -> NetworkRule:
    """Ingress on a public address (default deny: a rule opens ports)."""
    spec.protocol = protocol(spec.protocol, FIREWALL_PROTOCOLS)
    check_icmp(spec)
    network = public_ips.network_of(session, ip)
    for rule in _rules_on(session, ip, "Firewall"):
        if _same_firewall(rule, spec):
            raise RuleConflict(
                f"The range specified, {spec.ports.start}-{spec.ports.end}, conflicts with rule "
                f"{rule.uuid} which has {rule.start_port}-{rule.end_port}"
            )
    row = _base(ip, network, "Firewall", spec)
    session.add(row)
    session.flush()
    return row


def _open_firewall(session: Session, ip: PublicIpAddress, spec: RuleSpec) -> None:
    """openfirewall=true: the matching ingress rule, unless one already says the same."""
    fw = RuleSpec(spec.protocol, spec.ports, source_cidrs=list(spec.source_cidrs))
    if not any(_same_firewall(r, fw) for r in _rules_on(session, ip, "Firewall")):
        session.add(_base(ip, public_ips.network_of(session, ip), "Firewall", fw))


def create_egress(session: Session, network: Network, spec: RuleSpec) -> NetworkRule:
    """Egress from the guest CIDR; sources must lie inside it."""
    spec.protocol = protocol(spec.protocol, FIREWALL_PROTOCOLS)
    check_icmp(spec)
    guest = IPv4Network(network.cidr)
    spec.source_cidrs = spec.source_cidrs or [network.cidr]
    for cidr in spec.source_cidrs:
        if not IPv4Network(cidr).subnet_of(guest):
            raise ParamError(f"Source CIDR {cidr} is not inside the network's CIDR {network.cidr}")
    for rule in session.scalars(
        select(NetworkRule).where(
            NetworkRule.network_id == network.id, NetworkRule.purpose == "Egress"
        )
    ):
        if _same_firewall(rule, spec) and sorted(rule.dest_cidrs or []) == sorted(spec.dest_cidrs):
            raise RuleConflict(f"An identical egress rule {rule.uuid} exists")
    row = _base(None, network, "Egress", spec)
    session.add(row)
    session.flush()
    return row


def _check_public_ports(session: Session, ip: PublicIpAddress, wanted: Ports, proto: str) -> None:
    if ip.static_nat_vm_id is not None:
        raise RuleConflict(f"Static NAT is enabled on {ip.address}: no other rule can use it")
    if ip.is_source_nat is False and ip.network_id is None:
        raise ParamError(f"IP address {ip.address} is not associated with any network")
    for rule in _rules_on(session, ip, "PortForwarding", "LoadBalancing"):
        same_proto = rule.protocol == proto or rule.purpose != "PortForwarding"
        if same_proto and wanted.overlaps(Ports(rule.start_port, rule.end_port)):
            raise RuleConflict(
                f"The range specified, {wanted.start}-{wanted.end}, conflicts with rule "
                f"{rule.uuid} which has {rule.start_port}-{rule.end_port}"
            )


@dataclass
class ForwardSpec:
    protocol: str
    public: Ports
    private: Ports
    vm: VirtualMachine
    guest_ip: str | None = None
    source_cidrs: list[str] = field(default_factory=list)
    open_firewall: bool = True


def create_port_forward(session: Session, ip: PublicIpAddress, spec: ForwardSpec) -> NetworkRule:
    proto = protocol(spec.protocol, FORWARD_PROTOCOLS)
    public_span = (spec.public.end or 0) - (spec.public.start or 0)
    private_span = (spec.private.end or 0) - (spec.private.start or 0)
    if public_span != private_span:
        raise ParamError("Public and private port ranges must be of the same size")
    network = public_ips.network_of(session, ip)
    if spec.vm.account_id != ip.account_id:
        raise ParamError(f"VM {spec.vm.name} and the IP address belong to different accounts")
    nic = public_ips.vm_nic_on(session, spec.vm, network.id)
    if spec.guest_ip is not None and spec.guest_ip not in ipam.addresses_of(
        session, nic.id, nic.ip4
    ):
        raise ParamError(f"{spec.guest_ip} is not an address of VM {spec.vm.name}")
    _check_public_ports(session, ip, spec.public, proto)
    rule = _base(ip, network, "PortForwarding", RuleSpec(proto, spec.public))
    rule.source_cidrs = spec.source_cidrs
    rule.private_start_port, rule.private_end_port = spec.private.start, spec.private.end
    rule.vm_id, rule.vm_ip = spec.vm.id, spec.guest_ip or nic.ip4
    session.add(rule)
    if spec.open_firewall:
        _open_firewall(session, ip, RuleSpec(proto, spec.public, source_cidrs=spec.source_cidrs))
    session.flush()
    usage.record_rule(session, rule, created=True)
    return rule


@dataclass
class BalancerSpec:
    name: str
    algorithm: str
    public_port: int
    private_port: int
    protocol: str = "tcp"
    description: str | None = None
    source_cidrs: list[str] = field(default_factory=list)
    open_firewall: bool = True


def create_load_balancer(session: Session, ip: PublicIpAddress, spec: BalancerSpec) -> NetworkRule:
    if not spec.name.strip():
        raise ParamError("Load balancer rule name must not be empty")
    algorithm = spec.algorithm.strip().lower()
    if algorithm not in LB_ALGORITHMS:
        raise ParamError(f"Invalid algorithm {spec.algorithm}: expected {', '.join(LB_ALGORITHMS)}")
    proto = protocol(spec.protocol, FORWARD_PROTOCOLS)
    public = ports(spec.public_port, None, "public port")
    private = ports(spec.private_port, None, "private port")
    network = public_ips.network_of(session, ip)
    _check_public_ports(session, ip, public, proto)
    rule = _base(ip, network, "LoadBalancing", RuleSpec(proto, public))
    rule.source_cidrs = spec.source_cidrs
    rule.private_start_port = rule.private_end_port = private.start
    rule.name, rule.description, rule.algorithm = spec.name.strip(), spec.description, algorithm
    session.add(rule)
    if spec.open_firewall:
        _open_firewall(session, ip, RuleSpec(proto, public, source_cidrs=spec.source_cidrs))
    session.flush()
    usage.record_rule(session, rule, created=True)
    return rule


def members(session: Session, rule: NetworkRule) -> list[LoadBalancerMember]:
    return list(
        session.scalars(
            select(LoadBalancerMember)
            .where(LoadBalancerMember.rule_id == rule.id)
            .order_by(LoadBalancerMember.id)
        )
    )


def check_assign(session: Session, rule: NetworkRule, vms: list[VirtualMachine]) -> None:
    present = {m.vm_id for m in members(session, rule)}
    for vm in vms:
        if vm.id in present:
            raise ParamError(f"VM {vm.name} is already assigned to load balancer rule {rule.name}")
        if vm.account_id != rule.account_id:
            raise ParamError(f"VM {vm.name} belongs to another account than the rule")
        public_ips.vm_nic_on(session, vm, rule.network_id)


def assign(session: Session, rule: NetworkRule, vms: list[VirtualMachine]) -> None:
    """Idempotent (a re-run job finds members already there)."""
    present = {m.vm_id for m in members(session, rule)}
    for vm in vms:
        if vm.id not in present:
            nic = public_ips.vm_nic_on(session, vm, rule.network_id)
            session.add(LoadBalancerMember(rule_id=rule.id, vm_id=vm.id, vm_ip=nic.ip4 or ""))
    session.flush()


def check_remove(session: Session, rule: NetworkRule, vms: list[VirtualMachine]) -> None:
    present = {m.vm_id for m in members(session, rule)}
    for vm in vms:
        if vm.id not in present:
            raise ParamError(f"VM {vm.name} is not assigned to load balancer rule {rule.name}")


def remove(session: Session, rule: NetworkRule, vms: list[VirtualMachine]) -> None:
    session.execute(
        delete(LoadBalancerMember).where(
            LoadBalancerMember.rule_id == rule.id,
            LoadBalancerMember.vm_id.in_([vm.id for vm in vms]),
        )
    )


def delete_rule(session: Session, rule: NetworkRule) -> None:
    usage.record_rule(session, rule, created=False)
    session.execute(delete(LoadBalancerMember).where(LoadBalancerMember.rule_id == rule.id))
    for policy in (LbStickinessPolicy, LbHealthCheckPolicy):
        session.execute(delete(policy).where(policy.rule_id == rule.id))
    session.delete(rule)
    session.flush()


# --- load balancer policies (createLBStickinessPolicy, createLBHealthCheckPolicy) ----------
# One policy of each kind per rule, as CloudStack's virtual router allows; the router's
# haproxy renders them (``agent.network.router_lb``), which also checks each parameter.

STICKINESS_METHODS = {
    "lbcookie": "LbCookie",
    "appcookie": "AppCookie",
    "sourcebased": "SourceBased",
}
STICKINESS_PARAMS = {
    "LbCookie": ("cookieName", "mode", "nocache", "indirect", "postonly", "domain"),
    "AppCookie": ("cookieName", "length", "holdtime", "request-learn", "prefix", "mode"),
    "SourceBased": ("tablesize", "expire"),
}


def _lb_only(rule: NetworkRule) -> None:
    if rule.purpose != "LoadBalancing":
        raise ParamError(f"Rule {rule.uuid} is not a load balancer rule")
    if rule.protocol.lower() == "udp":
        raise ParamError("Policies are for TCP load balancer rules only")


def create_stickiness(
    session: Session,
    rule: NetworkRule,
    name: str,
    method: str,
    params: dict[str, str],
    description: str | None,
) -> LbStickinessPolicy:
    _lb_only(rule)
    canonical = STICKINESS_METHODS.get(method.strip().lower())
    if canonical is None:
        raise ParamError(
            f"Invalid stickiness method {method}: one of {', '.join(STICKINESS_METHODS.values())}"
        )
    allowed = {p.lower(): p for p in STICKINESS_PARAMS[canonical]}
    unknown = [k for k in params if k.lower() not in allowed]
    if unknown:
        raise ParamError(f"Invalid {canonical} parameter(s): {', '.join(sorted(unknown))}")
    if any(not v or any(c.isspace() or c in "{}()#\\" for c in v) for v in params.values()):
        raise ParamError("Stickiness parameter values must be single words")
    if session.scalar(select(LbStickinessPolicy.id).where(LbStickinessPolicy.rule_id == rule.id)):
        raise ParamError("Failed to create Stickiness policy: Already policy attached")
    if not name.strip():
        raise ParamError("Stickiness policy name must not be empty")
    row = LbStickinessPolicy(
        rule_id=rule.id,
        name=name.strip(),
        method=canonical,
        params={allowed[k.lower()]: v for k, v in params.items()},
        description=description,
    )
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True)
class HealthCheckSpec:
    ping_path: str | None
    description: str | None
    interval_s: int
    response_timeout_s: int
    healthy_threshold: int
    unhealthy_threshold: int


def create_health_check(
    session: Session, rule: NetworkRule, spec: HealthCheckSpec
) -> LbHealthCheckPolicy:
    _lb_only(rule)
    if not 1 <= spec.interval_s <= 600 or not 1 <= spec.response_timeout_s <= 60:
        raise ParamError("intervaltime must be 1-600 s and responsetimeout 1-60 s")
    if spec.response_timeout_s >= spec.interval_s and spec.interval_s > 1:
        raise ParamError("responsetimeout must be less than intervaltime")
    if not 1 <= spec.healthy_threshold <= 100 or not 1 <= spec.unhealthy_threshold <= 100:
        raise ParamError("healthythreshold and unhealthythreshold must be 1-100")
    path = spec.ping_path
    if path is not None and (
        not path.startswith("/") or not all(c.isalnum() or c in "/._-~%?=&" for c in path)
    ):
        raise ParamError(f"Invalid pingpath {path}: an absolute HTTP path")
    if session.scalar(select(LbHealthCheckPolicy.id).where(LbHealthCheckPolicy.rule_id == rule.id)):
        raise ParamError("Failed to create HealthCheck policy: Already policy attached")
    row = LbHealthCheckPolicy(
        rule_id=rule.id,
        ping_path=path,
        description=spec.description,
        interval_s=spec.interval_s,
        response_timeout_s=spec.response_timeout_s,
        healthy_threshold=spec.healthy_threshold,
        unhealthy_threshold=spec.unhealthy_threshold,
    )
    session.add(row)
    session.flush()
    return row


Policy = TypeVar("Policy", bound=LbStickinessPolicy | LbHealthCheckPolicy)


def find_policy(session: Session, kind: type[Policy], uuid: str) -> Policy:
    row = session.scalar(select(kind).where(kind.uuid == uuid))
    if row is None:
        raise NotFound(f"Unable to find policy {uuid}")
    return row
