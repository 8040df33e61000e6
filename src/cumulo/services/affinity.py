"""Affinity groups: named sets of an account's VMs that the planner places on one host
("host affinity") or on distinct hosts ("host anti-affinity").

Groups hold no VMs until VMs exist; ``updateVMAffinityGroup`` and the planner's use of the
groups arrive with the VM lifecycle, and read ``affinity_group_vm_map``.
"""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from cumulo.db.models import Account
from cumulo.db.models_affinity import AffinityGroup, AffinityGroupVmMap
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


def vm_ids_of(session: Session, group_ids: list[int]) -> dict[int, list[int]]:
    """Each group's VM keys (the VM table renders them as uuids once it exists)."""
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
