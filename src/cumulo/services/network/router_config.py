"""Rendering one network's virtual router configuration from the database.

This is the contract between the cloud and the dataplane: the agent's network layer turns a
``RouterConfig`` into a bridge and VXLAN device (``vni``, ``bridge``), a router namespace
holding ``router_ip``, dnsmasq (``dhcp``, ``dns_names``, ``dns_servers``, ``domain``),
nftables (source NAT, port forwards, static NATs, ingress firewall with default deny, egress
with the offering's default), haproxy (``load_balancers``) and the metadata/password HTTP
services (``vm_data``, keyed by the VM's guest IP as cloud-init's CloudStack datasource
expects; see docs/networking.md). It is rendered from the database every time, never
stored: a router that is lost is rebuilt from the same rows. Everything is a frozen dataclass
with tuples in a deterministic order, so two renderings of unchanged rows compare equal and
a reconciler can skip a router that already matches. The types live in ``agentrpc.netconfig``
(the agent reads them too).
"""

from __future__ import annotations

import base64
import binascii
from ipaddress import IPv4Address

from sqlalchemy import select
from sqlalchemy.orm import Session

from cumulo.agentrpc.netconfig import (
    DhcpEntry,
    FirewallRule,
    LoadBalancer,
    PortForward,
    PortRange,
    RouterConfig,
    StaticNat,
    VmData,
)
from cumulo.common.secretbox import SecretBox
from cumulo.db.models_catalog import ServiceOffering, SshKeyPair, UserData
from cumulo.db.models_compute import Nic, VirtualMachine
from cumulo.db.models_infra import Zone
from cumulo.db.models_network import (
    LbHealthCheckPolicy,
    LbStickinessPolicy,
    LoadBalancerMember,
    Network,
    NetworkOffering,
    NetworkRule,
    PublicIpAddress,
)
from cumulo.services.network import networks, nics
from cumulo.services.network import offerings as offering_svc

LIVE_VM_STATES = ("Stopped", "Starting", "Running", "Stopping", "Migrating")


def _ports(start: int | None, end: int | None) -> PortRange:
    return PortRange(start, end if end is not None else start)


def _decode(text: str | None) -> bytes | None:
    if not text:
        return None
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return None  # validated on the way in; an unreadable row serves no user data


def _user_data(session: Session, vm: VirtualMachine) -> bytes | None:
    if vm.user_data:
        return _decode(vm.user_data)
    if vm.user_data_id is not None:
        row = session.get(UserData, vm.user_data_id)
        return _decode(row.user_data) if row is not None else None
    return None


def _keys(session: Session, vm: VirtualMachine) -> tuple[str, ...]:
    if not vm.keypairs:
        return ()
    rows = session.scalars(
        select(SshKeyPair).where(
            SshKeyPair.account_id == vm.account_id, SshKeyPair.name.in_(vm.keypairs)
        )
    )
    by_name = {r.name: r.public_key.strip() for r in rows}
    return tuple(by_name[n] for n in vm.keypairs if n in by_name)


def _password(vm: VirtualMachine, box: SecretBox | None) -> str | None:
    if vm.password is None or box is None:
        return None
    try:
        return box.open(vm.password)
    except Exception:  # a password sealed under another key is no password to serve
        return None


def _public_ips(session: Session, network: Network) -> list[PublicIpAddress]:
    return list(
        session.scalars(
            select(PublicIpAddress)
            .where(PublicIpAddress.network_id == network.id)
            .order_by(PublicIpAddress.id)
        )
    )


def _vms(session: Session, network: Network) -> list[tuple[Nic, VirtualMachine]]:
    rows = session.execute(
        select(Nic, VirtualMachine)
        .join(VirtualMachine, VirtualMachine.id == Nic.vm_id)
        .where(
            Nic.network_id == network.id,
            Nic.removed.is_(None),
            Nic.ip4.is_not(None),
            VirtualMachine.state.in_(LIVE_VM_STATES),
        )
    )
    return sorted(((n, vm) for n, vm in rows), key=lambda r: (IPv4Address(str(r[0].ip4)), r[0].id))


def _vm_data(
    session: Session,
    nic: Nic,
    vm: VirtualMachine,
    zone: Zone,
    public: dict[int, str],
    snat: str | None,
    box: SecretBox | None,
) -> VmData:
    offering = session.get(ServiceOffering, vm.service_offering_id)
    return VmData(
        ip=str(nic.ip4),
        instance_id=vm.uuid,
        vm_id=vm.uuid,
        local_hostname=vm.name,
        availability_zone=zone.name,
        service_offering=offering.name if offering is not None else "",
        public_ipv4=public.get(vm.id, snat),
        public_keys=_keys(session, vm),
        user_data=_user_data(session, vm),
        password=_password(vm, box),
    )


def _rules(session: Session, network: Network, purpose: str) -> list[NetworkRule]:
    return list(
        session.scalars(
            select(NetworkRule)
            .where(NetworkRule.network_id == network.id, NetworkRule.purpose == purpose)
            .order_by(NetworkRule.id)
        )
    )


def _firewall(rule: NetworkRule, addresses: dict[int, str]) -> FirewallRule:
    return FirewallRule(
        public_ip=addresses.get(rule.public_ip_id) if rule.public_ip_id else None,
        protocol=rule.protocol,
        ports=_ports(rule.start_port, rule.end_port),
        source_cidrs=tuple(rule.source_cidrs or ()),
        dest_cidrs=tuple(rule.dest_cidrs or ()),
        icmp_type=rule.icmp_type,
        icmp_code=rule.icmp_code,
    )


def _forward(rule: NetworkRule, addresses: dict[int, str]) -> PortForward:
    return PortForward(
        public_ip=addresses[rule.public_ip_id or 0],
        protocol=rule.protocol,
        public_ports=_ports(rule.start_port, rule.end_port),
        private_ip=str(rule.vm_ip),
        private_ports=_ports(rule.private_start_port, rule.private_end_port),
        source_cidrs=tuple(rule.source_cidrs or ()),
    )


def _balancer(session: Session, rule: NetworkRule, addresses: dict[int, str]) -> LoadBalancer:
    backends = session.scalars(
        select(LoadBalancerMember.vm_ip)
        .where(LoadBalancerMember.rule_id == rule.id)
        .order_by(LoadBalancerMember.vm_ip)
    )
    sticky = session.scalar(
        select(LbStickinessPolicy).where(LbStickinessPolicy.rule_id == rule.id).limit(1)
    )
    health = session.scalar(
        select(LbHealthCheckPolicy).where(LbHealthCheckPolicy.rule_id == rule.id).limit(1)
    )
    return LoadBalancer(
        name=str(rule.name),
        public_ip=addresses[rule.public_ip_id or 0],
        public_port=int(rule.start_port or 0),
        private_port=int(rule.private_start_port or 0),
        protocol=rule.protocol,
        algorithm=str(rule.algorithm),
        source_cidrs=tuple(rule.source_cidrs or ()),
        backends=tuple(backends),
        stickiness=sticky.method if sticky else None,
        stickiness_params=tuple(sorted((k, str(v)) for k, v in (sticky.params or {}).items()))
        if sticky
        else (),
        health_path=health.ping_path if health else None,
        health_interval_s=health.interval_s if health else None,
        health_timeout_s=health.response_timeout_s if health else None,
        health_rise=health.healthy_threshold if health else None,
        health_fall=health.unhealthy_threshold if health else None,
    )


def render(session: Session, network_uuid: str, box: SecretBox | None = None) -> RouterConfig:
    """Everything the router of ``network_uuid`` must do, read in one transaction."""
    network = networks.find(session, network_uuid)
    zone = session.get(Zone, network.zone_id)
    offering = session.get(NetworkOffering, network.offering_id)
    assert zone is not None and offering is not None
    ips = _public_ips(session, network)
    addresses = {ip.id: ip.address for ip in ips}
    snat = next((ip.address for ip in ips if ip.is_source_nat), None)
    static = {ip.static_nat_vm_id: ip.address for ip in ips if ip.static_nat_vm_id}
    members = _vms(session, network)
    return RouterConfig(
        network_id=network.uuid,
        generation=network.router_generation,
        vni=network.segment_id,
        bridge=nics.bridge_name(network),
        cidr=network.cidr,
        netmask=network.netmask,
        router_ip=network.gateway,
        domain=network.network_domain or "",
        dns_servers=tuple(d for d in (zone.dns1, zone.dns2) if d),
        services=tuple(sorted(offering.services or {})),
        source_nat_ip=snat if offering_svc.has(offering, "SourceNat") else None,
        public_ips=tuple(ip.address for ip in ips),
        dhcp=tuple(DhcpEntry(n.mac, str(n.ip4), vm.name, n.is_default) for n, vm in members),
        vm_data=tuple(_vm_data(session, n, vm, zone, static, snat, box) for n, vm in members),
        port_forwards=tuple(
            _forward(r, addresses) for r in _rules(session, network, "PortForwarding")
        ),
        static_nats=tuple(
            StaticNat(ip.address, str(ip.static_nat_ip)) for ip in ips if ip.static_nat_ip
        ),
        firewall=tuple(_firewall(r, addresses) for r in _rules(session, network, "Firewall")),
        egress_default_allow=offering.egress_default_allow,
        egress=tuple(_firewall(r, addresses) for r in _rules(session, network, "Egress")),
        load_balancers=tuple(
            _balancer(session, r, addresses) for r in _rules(session, network, "LoadBalancing")
        ),
    )
