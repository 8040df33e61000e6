"""The security-group rules of one VM's ports, resolved for the dataplane.

Each NIC of a VM in security groups becomes one ``PortConfig``: the rules of all its groups,
with rules that name another group expanded to that group's members' current addresses. The
dataplane applies them as an nftables ``bridge``-family table per tap, default-deny ingress;
egress is open while no group of the VM has an egress rule and closed to the listed ones
otherwise (CloudStack's semantics). Rendered from the database every time, never stored.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading

from sqlalchemy import select
from sqlalchemy.orm import Session

from cumulo.agentrpc import sgconfig
from cumulo.agentrpc.hub import HostRef, HubError
from cumulo.agentrpc.messages import ApplySecurityGroups
from cumulo.agentrpc.sgconfig import SecurityGroupConfig, SecurityGroupRule
from cumulo.common.ids import new_uuid
from cumulo.db.models_compute import Nic, VirtualMachine
from cumulo.db.models_infra import Host
from cumulo.db.models_network import SecurityGroupMember
from cumulo.db.models_network import SecurityGroupRule as RuleRow
from cumulo.services.network import nics, routers
from cumulo.services.runtime import Runtime

log = logging.getLogger(__name__)


# The dataplane's types: a port's config is exactly what the host applies (``sg_nft``).
PortRule = SecurityGroupRule
PortConfig = SecurityGroupConfig


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


def _rule(session: Session, rule: RuleRow) -> PortRule:
    cidrs = (rule.cidr,) if rule.cidr else _member_ips(session, int(rule.ref_group_id or 0))
    return PortRule(
        rule.protocol, rule.start_port, rule.end_port, rule.icmp_type, rule.icmp_code, cidrs
    )


def render(session: Session, vm_uuid: str) -> tuple[PortConfig, ...]:
    """One config per NIC of a VM in security groups; none for a VM in no group (its ports
    are not filtered: an Advanced-zone isolated network has no groups)."""
    vm = session.scalar(select(VirtualMachine).where(VirtualMachine.uuid == vm_uuid))
    if vm is None:
        return ()
    groups = select(SecurityGroupMember.group_id).where(SecurityGroupMember.vm_id == vm.id)
    if (
        session.scalar(
            select(SecurityGroupMember.id).where(SecurityGroupMember.vm_id == vm.id).limit(1)
        )
        is None
    ):
        return ()
    found = list(
        session.scalars(select(RuleRow).where(RuleRow.group_id.in_(groups)).order_by(RuleRow.id))
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
            device_id=nic.device_id,
        )
        for nic, network in nics.vm_nics(session, vm.id)
    )


# --- pushing rule changes to running VMs ---------------------------------------------------
# A start carries the filtering in the NIC spec; a rule change (authorize/revoke, a member of
# a referenced group coming or going) reaches running VMs here, from the server's network
# reconciler. What was last sent is remembered per VM in this process only: after a server
# restart everything is sent once more, and the host answers "unchanged" for tables in place.
_SENT: dict[str, str] = {}
_SENT_LOCK = threading.Lock()
PUSH_TIMEOUT_S = 60.0


def _running_members(session: Session) -> list[tuple[str, str, int]]:
    """(VM uuid, instance name, host id) of running VMs in groups on real hosts."""
    rows = session.execute(
        select(VirtualMachine.uuid, VirtualMachine.instance_name, VirtualMachine.host_id)
        .join(Host, Host.id == VirtualMachine.host_id)
        .where(
            VirtualMachine.state == "Running",
            Host.hypervisor_type != "Simulator",
            Host.removed.is_(None),
            VirtualMachine.id.in_(select(SecurityGroupMember.vm_id)),
        )
        .order_by(VirtualMachine.id)
    )
    return [(uuid, name, host) for uuid, name, host in rows if host is not None]


def push(rt: Runtime, *, resend: bool = False) -> int:
    """Send each running VM's changed port configs to its host; how many VMs were sent.
    ``resend``: every VM, changed or not (a table deleted by hand comes back). Never raises
    for one host: the next round retries."""
    sends: list[tuple[str, str, HostRef, ApplySecurityGroups]] = []
    with rt.db.read() as session:
        for vm_uuid, name, host_id in _running_members(session):
            ports = tuple(sgconfig.to_wire(p) for p in render(session, vm_uuid))
            digest = hashlib.sha256(json.dumps(ports, sort_keys=True).encode()).hexdigest()
            key = f"{host_id}:{digest}"
            with _SENT_LOCK:
                if not resend and _SENT.get(vm_uuid) == key:
                    continue
            host = session.get(Host, host_id)
            assert host is not None
            command = ApplySecurityGroups(new_uuid(), vm_name=name, ports=ports)
            sends.append((vm_uuid, key, routers.host_ref(session, host), command))
    for vm_uuid, key, ref, command in sends:
        try:
            answer = rt.hub.send(ref, command, PUSH_TIMEOUT_S)
        except HubError:
            log.warning("security groups not pushed", extra={"vm": vm_uuid}, exc_info=True)
            continue
        if answer.ok:
            with _SENT_LOCK:
                _SENT[vm_uuid] = key
        else:
            log.warning("security groups refused: %s", answer.error, extra={"vm": vm_uuid})
    return len(sends)
