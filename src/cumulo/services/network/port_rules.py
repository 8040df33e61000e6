"""The security-group rules of one VM's ports, resolved for the dataplane.

Each NIC of a VM in security groups becomes one ``PortConfig``: the rules of all its groups,
with rules that name another group expanded to that group's members' current addresses. The
dataplane applies them as an nftables ``bridge``-family table per tap, default-deny ingress;
egress is open while no group of the VM has an egress rule and closed to the listed ones
otherwise (CloudStack's semantics). Rendered from the database every time, never stored.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from cumulo.db.models_compute import Nic, VirtualMachine
from cumulo.db.models_network import SecurityGroupMember, SecurityGroupRule
from cumulo.services.network import nics


@dataclass(frozen=True)
class PortRule:
    protocol: str
    start_port: int | None
    end_port: int | None
    icmp_type: int | None
    icmp_code: int | None
    cidrs: tuple[str, ...]  # remote addresses: the rule's CIDR or a group's member IPs


@dataclass(frozen=True)
class PortConfig:
    vm_id: str
    nic_id: str
    mac: str
    ip: str | None
    bridge: str
    ingress: tuple[PortRule, ...]  # default deny: only these come in
    egress: tuple[PortRule, ...]
    egress_default_allow: bool


def _member_ips(session: Session, group_id: int) -> tuple[str, ...]:
    rows = session.scalars(
        select(Nic.ip4)
        .join(SecurityGroupMember, SecurityGroupMember.vm_id == Nic.vm_id)
        .where(
            SecurityGroupMember.group_id == group_id,
            Nic.removed.is_(None),
            Nic.ip4.is_not(None),
        )
    )
    return tuple(sorted(f"{ip}/32" for ip in rows))


def _rule(session: Session, rule: SecurityGroupRule) -> PortRule:
    cidrs = (rule.cidr,) if rule.cidr else _member_ips(session, int(rule.ref_group_id or 0))
    return PortRule(
        rule.protocol, rule.start_port, rule.end_port, rule.icmp_type, rule.icmp_code, cidrs
    )


def render(session: Session, vm_uuid: str) -> tuple[PortConfig, ...]:
    vm = session.scalar(select(VirtualMachine).where(VirtualMachine.uuid == vm_uuid))
    if vm is None:
        return ()
    groups = select(SecurityGroupMember.group_id).where(SecurityGroupMember.vm_id == vm.id)
    found = list(
        session.scalars(
            select(SecurityGroupRule)
            .where(SecurityGroupRule.group_id.in_(groups))
            .order_by(SecurityGroupRule.id)
        )
    )
    ingress = tuple(_rule(session, r) for r in found if r.direction == "ingress")
    egress = tuple(_rule(session, r) for r in found if r.direction == "egress")
    return tuple(
        PortConfig(
            vm_id=vm.uuid,
            nic_id=nic.uuid,
            mac=nic.mac,
            ip=nic.ip4,
            bridge=nics.bridge_name(network),
            ingress=ingress,
            egress=egress,
            egress_default_allow=not egress,
        )
        for nic, network in nics.vm_nics(session, vm.id)
    )
