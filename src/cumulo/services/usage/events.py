"""Usage events: one row per billable change, in the same transaction as the change.

Writing the usage event inside the transaction that changes the resource is what makes the
ledger exact: if the change commits, so does its event; if the server dies first, neither
exists. Nothing is counted twice either, because aggregation reads the events as a history
(an open interval opened again is still one interval), not as increments.

Event names are CloudStack's (``EventTypes.java``; reference §7.1): the aggregator pairs
``*.CREATE``/``*.DELETE`` (and ``VM.START``/``VM.STOP``) into intervals per resource.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from cumulo.common.time import utcnow
from cumulo.db.models_compute import Nic, VirtualMachine, Volume
from cumulo.db.models_network import Network, NetworkRule, SecurityGroup, SecurityGroupMember
from cumulo.db.models_usage import UsageEvent

VM_CREATE, VM_START, VM_STOP, VM_DESTROY, VM_UPGRADE = (
    "VM.CREATE",
    "VM.START",
    "VM.STOP",
    "VM.DESTROY",
    "VM.UPGRADE",
)
VOLUME_CREATE, VOLUME_DELETE, VOLUME_RESIZE, VOLUME_UPLOAD = (
    "VOLUME.CREATE",
    "VOLUME.DELETE",
    "VOLUME.RESIZE",
    "VOLUME.UPLOAD",
)
TEMPLATE_CREATE, TEMPLATE_DELETE = "TEMPLATE.CREATE", "TEMPLATE.DELETE"
ISO_CREATE, ISO_DELETE = "ISO.CREATE", "ISO.DELETE"
SNAPSHOT_CREATE, SNAPSHOT_DELETE = "SNAPSHOT.CREATE", "SNAPSHOT.DELETE"
VMSNAPSHOT_CREATE, VMSNAPSHOT_DELETE = "VMSNAPSHOT.CREATE", "VMSNAPSHOT.DELETE"
IP_ASSIGN, IP_RELEASE = "NET.IPASSIGN", "NET.IPRELEASE"
RULE_ADD, RULE_DELETE = "NET.RULEADD", "NET.RULEDELETE"  # port forwarding (CloudStack's names)
LB_CREATE, LB_DELETE = "LB.CREATE", "LB.DELETE"
OFFERING_ASSIGN, OFFERING_REMOVE = "NETWORK.OFFERING.ASSIGN", "NETWORK.OFFERING.REMOVE"
SG_ASSIGN, SG_REMOVE = "SG.ASSIGN", "SG.REMOVE"

USAGE_EVENT_TYPES = (
    VM_CREATE, VM_START, VM_STOP, VM_DESTROY, VM_UPGRADE,
    VOLUME_CREATE, VOLUME_DELETE, VOLUME_RESIZE, VOLUME_UPLOAD,
    TEMPLATE_CREATE, TEMPLATE_DELETE, ISO_CREATE, ISO_DELETE,
    SNAPSHOT_CREATE, SNAPSHOT_DELETE, VMSNAPSHOT_CREATE, VMSNAPSHOT_DELETE,
    IP_ASSIGN, IP_RELEASE, RULE_ADD, RULE_DELETE, LB_CREATE, LB_DELETE,
    OFFERING_ASSIGN, OFFERING_REMOVE, SG_ASSIGN, SG_REMOVE,
)  # fmt: skip


def record(
    session: Session,
    type: str,
    *,
    account_id: int,
    domain_id: int,
    zone_id: int | None,
    resource_type: str,
    resource_id: int,
    resource_uuid: str,
    resource_name: str | None = None,
    offering_id: int | None = None,
    template_id: int | None = None,
    size: int | None = None,
    virtual_size: int | None = None,
    at: datetime | None = None,
) -> UsageEvent:
    """Add a usage event to the caller's transaction (it commits or rolls back with it)."""
    if type not in USAGE_EVENT_TYPES:
        raise ValueError(f"unknown usage event type {type}")
    event = UsageEvent(
        type=type,
        created=at or utcnow(),
        account_id=account_id,
        domain_id=domain_id,
        zone_id=zone_id,
        resource_type=resource_type,
        resource_id=resource_id,
        resource_uuid=resource_uuid,
        resource_name=resource_name,
        offering_id=offering_id,
        template_id=template_id,
        size=size,
        virtual_size=virtual_size,
    )
    session.add(event)
    return event


def record_vm(
    session: Session, type: str, vm: VirtualMachine, at: datetime | None = None
) -> UsageEvent:
    """A VM's event carries what its records are split by: offering and template."""
    return record(
        session,
        type,
        account_id=vm.account_id,
        domain_id=vm.domain_id,
        zone_id=vm.zone_id,
        resource_type="VirtualMachine",
        resource_id=vm.id,
        resource_uuid=vm.uuid,
        resource_name=vm.name,
        offering_id=vm.service_offering_id,
        template_id=vm.template_id,
        at=at,
    )


def record_volume(
    session: Session, type: str, volume: Volume, at: datetime | None = None
) -> UsageEvent:
    """A volume's event carries its size now (after a resize, the new size)."""
    return record(
        session,
        type,
        account_id=volume.account_id,
        domain_id=volume.domain_id,
        zone_id=volume.zone_id,
        resource_type="Volume",
        resource_id=volume.id,
        resource_uuid=volume.uuid,
        resource_name=volume.name,
        offering_id=volume.disk_offering_id,
        template_id=volume.template_id,
        size=volume.size,
        at=at,
    )


def record_owned(
    session: Session,
    type: str,
    row: Any,
    resource_type: str,
    *,
    zone_id: int | None,
    name: str | None = None,
    size: int | None = None,
) -> UsageEvent:
    """Any owned row with ``id``, ``uuid``, ``account_id`` and ``domain_id``: a template or
    ISO (per zone), a snapshot, a public IP address."""
    return record(
        session,
        type,
        account_id=row.account_id,
        domain_id=row.domain_id,
        zone_id=zone_id,
        resource_type=resource_type,
        resource_id=row.id,
        resource_uuid=row.uuid,
        resource_name=name if name is not None else getattr(row, "name", None),
        size=size,
    )


def record_snapshot(session: Session, type: str, snap: Any) -> UsageEvent:
    """A volume snapshot on secondary storage, billed by the volume size it was taken of."""
    return record_owned(session, type, snap, "Snapshot", zone_id=snap.zone_id, size=snap.size)


# Billable rule purposes: the usage resource type and the events opening and closing it.
RULE_USAGE: dict[str, tuple[str, str, str]] = {
    "PortForwarding": ("PortForwardingRule", RULE_ADD, RULE_DELETE),
    "LoadBalancing": ("LoadBalancer", LB_CREATE, LB_DELETE),
}


def record_rule(session: Session, rule: NetworkRule, *, created: bool) -> None:
    """A port-forwarding or load-balancer rule created or removed (other purposes — firewall,
    egress — are not billed and record nothing)."""
    spec = RULE_USAGE.get(rule.purpose)
    if spec is None:
        return
    rtype, opened, closed = spec
    network = session.get(Network, rule.network_id)
    record(
        session,
        opened if created else closed,
        account_id=rule.account_id,
        domain_id=rule.domain_id,
        zone_id=network.zone_id if network is not None else None,
        resource_type=rtype,
        resource_id=rule.id,
        resource_uuid=rule.uuid,
        resource_name=rule.name,
    )


def record_rules_removed(session: Session, *where: ColumnElement[bool]) -> None:
    """Close the usage of every billable rule matching ``where``: called just before a bulk
    delete (a network's or an address's cleanup, a VM's expunge), so every removal path
    closes its intervals in the same transaction as the delete."""
    stmt = select(NetworkRule).where(NetworkRule.purpose.in_(RULE_USAGE), *where)
    for rule in session.scalars(stmt).all():
        record_rule(session, rule, created=False)


def record_nic(session: Session, type: str, vm: VirtualMachine, nic: Nic) -> None:
    """A VM's NIC on a network of an offering (type 13): one interval per NIC, billed to the
    VM (its record's usage id) by the network's offering (the record's offering id)."""
    network = session.get(Network, nic.network_id) if nic.network_id is not None else None
    if network is None:
        return
    record(
        session,
        type,
        account_id=vm.account_id,
        domain_id=vm.domain_id,
        zone_id=vm.zone_id,
        resource_type="NicOffering",
        resource_id=nic.id,
        resource_uuid=vm.uuid,
        resource_name=vm.name,
        offering_id=network.offering_id,
    )


def record_security_groups(session: Session, type: str, vm: VirtualMachine) -> None:
    """Every security group membership of ``vm`` (type 10) joined or left: one interval per
    (group, VM) membership row, billed to the group (the record's usage id)."""
    rows = session.execute(
        select(SecurityGroupMember.id, SecurityGroup)
        .join(SecurityGroup, SecurityGroup.id == SecurityGroupMember.group_id)
        .where(SecurityGroupMember.vm_id == vm.id)
    ).all()
    for member_id, group in rows:
        record(
            session,
            type,
            account_id=vm.account_id,
            domain_id=vm.domain_id,
            zone_id=vm.zone_id,
            resource_type="SecurityGroupMember",
            resource_id=member_id,
            resource_uuid=group.uuid,
            resource_name=group.name,
        )


# --- the VM state machine's hook ---------------------------------------------------------

# A VM uses its host (type 1, running) from when it reaches Running until it leaves the states
# in which it still runs; Stopping and Migrating VMs still run. It is allocated (type 2) from
# creation until destroyed, or until a failed deploy gave everything back.
RUNNING_STATES = frozenset({"Running", "Stopping", "Migrating"})
GONE_STATES = frozenset({"Destroyed", "Expunging", "Expunged"})


def vm_transition(
    session: Session, vm: VirtualMachine, event: str, old: str, new: str
) -> list[str]:
    """The usage events a VM state change means, recorded; called by ``states.transition``."""
    types = _vm_usage_types(event, old, new)
    for type in types:
        record_vm(session, type, vm)
    return types


def _vm_usage_types(event: str, old: str, new: str) -> list[str]:
    types: list[str] = []
    if old not in RUNNING_STATES and new in RUNNING_STATES:
        types.append(VM_START)
    if old in RUNNING_STATES and new not in RUNNING_STATES:
        types.append(VM_STOP)
    if event == "recover":
        types.append(VM_CREATE)
    elif (old not in GONE_STATES and new in GONE_STATES) or event == "deploy-failed":
        types.append(VM_DESTROY)
    return types
