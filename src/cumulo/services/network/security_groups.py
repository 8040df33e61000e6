"""Security groups: per-account groups of ingress and egress rules, recorded for the
dataplane (nftables ``bridge`` rules per VM port, default-deny ingress).

Every account has a ``default`` group, made the first time the account's groups are looked
at (CloudStack makes it with the account; making it lazily needs no hook in account
creation and gives the same result to every caller).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cumulo.db.models import Account
from cumulo.db.models_compute import Nic, VirtualMachine
from cumulo.db.models_infra import Zone
from cumulo.db.models_network import (
    Network,
    NetworkOffering,
    SecurityGroup,
    SecurityGroupMember,
    SecurityGroupRule,
)
from cumulo.services.errors import NotFound, ParamError, ResourceInUse
from cumulo.services.identity.accounts import find_account_by_name
from cumulo.services.network import rules
from cumulo.services.usage import events as usage

DEFAULT = "default"
PROTOCOLS = ("tcp", "udp", "icmp", "all")


def ensure_default(session: Session, owner: Account) -> SecurityGroup:
    found = session.scalar(
        select(SecurityGroup).where(
            SecurityGroup.account_id == owner.id, SecurityGroup.name == DEFAULT
        )
    )
    if found is not None:
        return found
    group = SecurityGroup(
        name=DEFAULT,
        description="Default Security Group",
        account_id=owner.id,
        domain_id=owner.domain_id,
    )
    try:
        with session.begin_nested():
            session.add(group)
            session.flush()
    except IntegrityError:  # made by a concurrent request
        return ensure_default(session, owner)
    return group


def find(session: Session, uuid: str) -> SecurityGroup:
    group = session.scalar(select(SecurityGroup).where(SecurityGroup.uuid == uuid))
    if group is None:
        raise NotFound(f"Unable to find security group by id {uuid}")
    return group


def find_by_name(session: Session, owner: Account, name: str) -> SecurityGroup:
    if name == DEFAULT:
        return ensure_default(session, owner)
    group = session.scalar(
        select(SecurityGroup).where(
            SecurityGroup.account_id == owner.id, SecurityGroup.name == name
        )
    )
    if group is None:
        raise NotFound(f"Unable to find security group {name} of account {owner.name}")
    return group


def owner_of(session: Session, group: SecurityGroup) -> Account:
    owner = session.get(Account, group.account_id)
    assert owner is not None
    return owner


def create(session: Session, owner: Account, name: str, description: str | None) -> SecurityGroup:
    name = name.strip()
    if not name:
        raise ParamError("Security group name must not be empty")
    if name.lower() == DEFAULT:
        raise ParamError("The security group name default is reserved")
    ensure_default(session, owner)
    taken = select(SecurityGroup.id).where(
        SecurityGroup.account_id == owner.id, SecurityGroup.name == name
    )
    if session.scalar(taken) is not None:
        raise ParamError(
            f"Unable to create security group, a group with name {name} already exists"
        )
    group = SecurityGroup(
        name=name, description=description, account_id=owner.id, domain_id=owner.domain_id
    )
    session.add(group)
    session.flush()
    return group


def check_deletable(session: Session, group: SecurityGroup) -> None:
    if group.name == DEFAULT:
        raise ParamError("The network default security group cannot be deleted")
    if session.scalar(select(exists().where(SecurityGroupMember.group_id == group.id))):
        raise ResourceInUse(f"Cannot delete security group {group.name}: VMs are in it")
    referenced = exists().where(
        SecurityGroupRule.ref_group_id == group.id, SecurityGroupRule.group_id != group.id
    )
    if session.scalar(select(referenced)):
        raise ResourceInUse(
            f"Cannot delete security group {group.name}: other groups' rules use it"
        )


def delete(session: Session, group: SecurityGroup) -> None:
    check_deletable(session, group)
    for rule in session.scalars(
        select(SecurityGroupRule).where(SecurityGroupRule.group_id == group.id)
    ):
        session.delete(rule)
    session.flush()
    session.delete(group)
    session.flush()


@dataclass
class RuleRequest:
    direction: str
    protocol: str
    start_port: int | None = None
    end_port: int | None = None
    icmp_type: int | None = None
    icmp_code: int | None = None
    cidrs: list[str] = field(default_factory=list)
    groups: list[dict[str, str]] = field(default_factory=list)  # [{account, group}]


def _protocol(value: str) -> str:
    low = value.strip().lower()
    if low.isdigit() and 0 <= int(low) <= 255:
        return low
    return rules.protocol(low, PROTOCOLS)


def _checked(req: RuleRequest) -> rules.RuleSpec:
    proto = _protocol(req.protocol)
    spec = rules.RuleSpec(proto, icmp_type=req.icmp_type, icmp_code=req.icmp_code)
    if proto in ("tcp", "udp"):
        if req.start_port is None or req.end_port is None:
            raise ParamError("Start and end ports are required for protocol tcp and udp")
        spec.ports = rules.ports(req.start_port, req.end_port)
    elif req.start_port is not None or req.end_port is not None:
        raise ParamError(f"Ports can't be given for protocol {proto}")
    if proto == "icmp" and (req.icmp_type is None or req.icmp_code is None):
        raise ParamError("ICMP type and code are required for protocol icmp")
    rules.check_icmp(spec)
    return spec


def _ref_groups(
    session: Session, owner: Account, pairs: list[dict[str, str]]
) -> list[SecurityGroup]:
    out = []
    for pair in pairs:
        name, account = pair.get("group"), pair.get("account")
        if not name or not account:
            raise ParamError("usersecuritygrouplist entries need both account and group")
        who = find_account_by_name(session, account, owner.domain)
        out.append(find_by_name(session, who, name))
    return out


def authorize(session: Session, group: SecurityGroup, req: RuleRequest) -> list[SecurityGroupRule]:
    """New rules (one per CIDR or referenced group); exact duplicates are skipped, as
    CloudStack skips them."""
    spec = _checked(req)
    owner = owner_of(session, group)
    refs = _ref_groups(session, owner, req.groups)
    targets: list[tuple[str | None, int | None]] = [(c, None) for c in rules.cidrs(req.cidrs, None)]
    targets += [(None, g.id) for g in refs]
    if not targets:
        raise ParamError("At least one cidrlist or usersecuritygrouplist entry is required")
    existing = {
        (r.protocol, r.start_port, r.end_port, r.icmp_type, r.icmp_code, r.cidr, r.ref_group_id)
        for r in rules_of(session, group, req.direction)
    }
    made = []
    for cidr, ref in targets:
        key = (
            spec.protocol,
            spec.ports.start,
            spec.ports.end,
            spec.icmp_type,
            spec.icmp_code,
            cidr,
            ref,
        )
        if key in existing:
            continue
        row = SecurityGroupRule(
            group_id=group.id,
            direction=req.direction,
            protocol=spec.protocol,
            start_port=spec.ports.start,
            end_port=spec.ports.end,
            icmp_type=spec.icmp_type,
            icmp_code=spec.icmp_code,
            cidr=cidr,
            ref_group_id=ref,
        )
        session.add(row)
        made.append(row)
    session.flush()
    return made


def rules_of(session: Session, group: SecurityGroup, direction: str) -> list[SecurityGroupRule]:
    return list(
        session.scalars(
            select(SecurityGroupRule)
            .where(SecurityGroupRule.group_id == group.id, SecurityGroupRule.direction == direction)
            .order_by(SecurityGroupRule.id)
        )
    )


def find_rule(session: Session, uuid: str, direction: str) -> SecurityGroupRule:
    rule = session.scalar(
        select(SecurityGroupRule).where(
            SecurityGroupRule.uuid == uuid, SecurityGroupRule.direction == direction
        )
    )
    if rule is None:
        raise NotFound(f"Unable to find {direction} security group rule by id {uuid}")
    return rule


# --- VMs in groups ----------------------------------------------------------------------


def _zone_uses_groups(session: Session, vm: VirtualMachine) -> bool:
    """A Basic or SG-enabled zone, or a VM on a network whose offering has SecurityGroup."""
    zone = session.get(Zone, vm.zone_id)
    if zone is not None and (zone.security_groups_enabled or zone.network_type == "Basic"):
        return True
    offerings = (
        select(NetworkOffering.services)
        .join(Network, Network.offering_id == NetworkOffering.id)
        .join(Nic, Nic.network_id == Network.id)
        .where(Nic.vm_id == vm.id, Nic.removed.is_(None))
    )
    return any("SecurityGroup" in (services or {}) for services in session.scalars(offerings))


def attach_at_deploy(
    session: Session,
    owner: Account,
    vm: VirtualMachine,
    ids: Sequence[str],
    names: Sequence[str],
) -> list[SecurityGroup]:
    """The deploy's groups (the owner's ``default`` when none is named in a zone that uses
    groups); groups named where no group applies are refused, as CloudStack refuses them."""
    if ids and names:
        raise ParamError("securitygroupids and securitygroupnames can't be given together")
    uses = _zone_uses_groups(session, vm)
    if (ids or names) and not uses:
        raise ParamError(
            "Can't create a VM with security groups: security groups are not enabled for the "
            "zone or the VM's networks"
        )
    if not uses:
        return []
    groups = []
    for uuid in dict.fromkeys(ids):
        group = find(session, uuid)
        if group.account_id != owner.id:
            raise ParamError(f"Security group {uuid} does not belong to the VM's account")
        groups.append(group)
    groups += [find_by_name(session, owner, n) for n in dict.fromkeys(names)]
    if not groups:
        groups = [ensure_default(session, owner)]
    session.add_all(SecurityGroupMember(group_id=g.id, vm_id=vm.id) for g in groups)
    session.flush()
    usage.record_security_groups(session, usage.SG_ASSIGN, vm)
    return groups
