"""Affinity groups: named sets of an account's VMs that the planner places on one host
("host affinity") or on distinct hosts ("host anti-affinity").

A VM joins groups at deploy or with ``updateVMAffinityGroup`` (Stopped VMs only: the rules
apply at the next placement); the planner reads ``affinity_group_vm_map``. A group with VMs in
it cannot be deleted (536), and an expunged VM leaves its groups.
"""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from cumulo.db.models import Account
from cumulo.db.models_affinity import AffinityGroup, AffinityGroupVmMap
from cumulo.db.models_compute import VirtualMachine
from cumulo.services.access import Caller
from cumulo.services.errors import ParamError, ResourceInUse

# CloudStack's AffinityGroupProcessor types offered by this cloud.
GROUP_TYPES = ("host affinity", "host anti-affinity")


def check_type(value: str) -> str:
    for known in GROUP_TYPES:
        if value.strip().lower() == known:
            return known
    raise ParamError(
        f"Unable to create affinity group, invalid affinity group type {value}; "
        f"valid types are: {', '.join(GROUP_TYPES)}"
    )


def find_by_name(session: Session, owner: Account, name: str) -> AffinityGroup | None:
    return session.scalar(
        select(AffinityGroup).where(
            AffinityGroup.account_id == owner.id, AffinityGroup.name == name
        )
    )


def create(
    session: Session, owner: Account, name: str, group_type: str, description: str | None
) -> AffinityGroup:
    name = name.strip()
    if not name:
        raise ParamError("Affinity group name can't be empty")
    kind = check_type(group_type)
    if find_by_name(session, owner, name) is not None:
        raise ParamError(
            f"Unable to create affinity group, a group with name {name} already exists."
        )
    group = AffinityGroup(
        name=name,
        description=description,
        type=kind,
        account_id=owner.id,
        domain_id=owner.domain_id,
    )
    session.add(group)
    session.flush()
    return group


def find(session: Session, uuid: str) -> AffinityGroup:
    group = session.scalar(select(AffinityGroup).where(AffinityGroup.uuid == uuid))
    if group is None:
        raise ParamError(f"Unable to find affinity group by id {uuid}")
    return group


def find_for_delete(
    session: Session, caller: Caller, uuid: str | None, name: str | None, owner: Account
) -> AffinityGroup:
    """By id, or by name within ``owner`` (the caller's account unless account/domainid)."""
    if uuid is None and name is None:
        raise ParamError("Either the affinity group id or name must be specified")
    if uuid is not None:
        group = find(session, uuid)
    else:
        assert name is not None
        found = find_by_name(session, owner, name)
        if found is None:
            raise ParamError(f"Unable to find affinity group by name {name}")
        group = found
    account = session.get(Account, group.account_id)
    assert account is not None, "a group's account exists"
    caller.check_account(account)
    return group


def vm_count(session: Session, group: AffinityGroup) -> int:
    stmt = select(func.count()).where(AffinityGroupVmMap.group_id == group.id)
    return int(session.scalar(stmt) or 0)


def check_deletable(session: Session, group: AffinityGroup) -> None:
    """Refused with 536 while VMs are in the group: they would lose their placement rule."""
    if vm_count(session, group):
        raise ResourceInUse(
            f"Affinity group {group.name} has VMs in it; remove them from the group first"
        )


def delete_group(session: Session, group: AffinityGroup) -> None:
    check_deletable(session, group)
    session.execute(delete(AffinityGroupVmMap).where(AffinityGroupVmMap.group_id == group.id))
    session.delete(group)
    session.flush()


def vm_uuids_of(session: Session, group_ids: list[int]) -> dict[int, list[str]]:
    """Each group's member VMs (not yet expunged) as uuids, in one query for a page."""
    out: dict[int, list[str]] = {}
    if not group_ids:
        return out
    rows = session.execute(
        select(AffinityGroupVmMap.group_id, VirtualMachine.uuid)
        .join(VirtualMachine, VirtualMachine.id == AffinityGroupVmMap.vm_id)
        .where(AffinityGroupVmMap.group_id.in_(group_ids), VirtualMachine.removed.is_(None))
        .order_by(AffinityGroupVmMap.id)
    )
    for gid, vm_uuid in rows:
        out.setdefault(gid, []).append(vm_uuid)
    return out


def owner_groups(
    session: Session, owner: Account, ids: list[str], names: list[str]
) -> list[AffinityGroup]:
    """The owner's groups named by ids or by names (not both); 431 for any other group."""
    if ids and names:
        raise ParamError("affinitygroupids and affinitygroupnames can not be given together")
    groups: list[AffinityGroup] = []
    for value in dict.fromkeys(ids or names):
        column = AffinityGroup.uuid if ids else AffinityGroup.name
        group = session.scalar(
            select(AffinityGroup).where(column == value, AffinityGroup.account_id == owner.id)
        )
        if group is None:
            raise ParamError(f"Unable to find affinity group {value} of the VM's account")
        groups.append(group)
    return groups


def set_vm_groups(session: Session, vm: VirtualMachine, groups: list[AffinityGroup]) -> None:
    """The VM is in exactly ``groups`` now (an empty list takes it out of every group)."""
    if vm.state != "Stopped":
        raise ParamError(
            f"Unable to update the affinity groups of VM {vm.name}: it is in state {vm.state}; "
            "stop it first"
        )
    session.execute(delete(AffinityGroupVmMap).where(AffinityGroupVmMap.vm_id == vm.id))
    session.add_all(AffinityGroupVmMap(group_id=g.id, vm_id=vm.id) for g in groups)
    session.flush()


def vm_ids_of(session: Session, group_ids: list[int]) -> dict[int, list[int]]:
    """Each group's VM keys, whatever state the VMs are in (what deletion checks)."""
    out: dict[int, list[int]] = {}
    if not group_ids:
        return out
    rows = session.execute(
        select(AffinityGroupVmMap.group_id, AffinityGroupVmMap.vm_id).where(
            AffinityGroupVmMap.group_id.in_(group_ids)
        )
    )
    for gid, vid in rows:
        out.setdefault(gid, []).append(vid)
    return out
