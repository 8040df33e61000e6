"""Affinity groups: createAffinityGroup, deleteAffinityGroup, listAffinityGroups,
listAffinityGroupTypes.

createAffinityGroup is async-create as in CloudStack: the group is written with the request
(so a duplicate name is refused at once) and the job reports it. Groups list their member VMs
as ``virtualmachineIds``; ``updateVMAffinityGroup`` lives with the other VM access commands
(commands/vm_access.py).
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any

from sqlalchemy import Select, select

from cumulo.api.cloudstack.registry import Kind, Param, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx, Listing, Submit, Success
from cumulo.db.models import Account, Domain
from cumulo.db.models_affinity import AffinityGroup, AffinityGroupVmMap
from cumulo.db.models_compute import VirtualMachine
from cumulo.services import affinity as svc
from cumulo.services.catalog.owners import resolve_owner

GROUP_FIELDS = (
    "id",
    "name",
    "description",
    "type",
    "account",
    "domainid",
    "domain",
    "domainpath",
    "virtualmachineIds",
)


@cache
def groups_select() -> Select[*tuple[Any, ...]]:
    return (
        select(
            AffinityGroup.id,
            AffinityGroup.uuid,
            AffinityGroup.name,
            AffinityGroup.description,
            AffinityGroup.type,
            Account.name.label("account"),
            Domain.uuid.label("domainid"),
            Domain.name.label("domain"),
            Domain.path.label("domainpath"),
        )
        .join(Account, Account.id == AffinityGroup.account_id)
        .join(Domain, Domain.id == AffinityGroup.domain_id)
    )


def group_response(row: Any, vm_uuids: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row.uuid,
        "name": row.name,
        "type": row.type,
        "account": row.account,
        "domainid": row.domainid,
        "domain": row.domain,
        "domainpath": row.domainpath,
        "virtualmachineIds": vm_uuids,
    }
    if row.description is not None:
        out["description"] = row.description
    return out


def _render(ctx: Ctx, group_id: int) -> dict[str, Any]:
    row = ctx.session.execute(groups_select().where(AffinityGroup.id == group_id)).one()
    ctx.event_resource = (row.uuid, row.name)
    return group_response(row, svc.vm_uuids_of(ctx.session, [group_id]).get(group_id, []))


OwnerAccount = Annotated[
    str | None,
    Param(
        "an account for the affinity group. Must be used with domainId.",
    ),
]
OwnerDomain = Annotated[
    UUIDStr | None,
    Param("domainId of the account owning the affinity group", entity="Domain"),
]
OwnerProject = Annotated[
    UUIDStr | None,
    Param("create affinity group for project", entity="Project", since="4.6.0"),
]


@command(
    "createAffinityGroup",
    kind=Kind.ASYNC_CREATE,
    description="Creates an affinity/anti-affinity group",
    response="affinitygroup",
    event="AG.CREATE",
    entity="AffinityGroup",
    fields=GROUP_FIELDS,
)
def create_affinity_group(
    ctx: Ctx,
    name: Annotated[str, Param("name of the affinity group", required=True)],
    type: Annotated[
        str,
        Param(
            "Type of the affinity group from the available affinity/anti-affinity group types",
            required=True,
        ),
    ],
    description: Annotated[str | None, Param("optional description of the affinity group")] = None,
    account: OwnerAccount = None,
    domainid: OwnerDomain = None,
    projectid: OwnerProject = None,
) -> Submit:
    owner = resolve_owner(ctx.session, ctx.caller, account, domainid, projectid)
    group = svc.create(ctx.session, owner, name, type, description)
    return Submit(
        params={"id": group.uuid},
        instance_type="AffinityGroup",
        created_id=group.uuid,
        resource_name=group.name,
    )


@create_affinity_group.runs
def run_create_affinity_group(ctx: Ctx, id: str) -> dict[str, Any]:
    return _render(ctx, svc.find(ctx.session, id).id)


@command(
    "deleteAffinityGroup",
    kind=Kind.ASYNC,
    description="Deletes affinity group",
    event="AG.DELETE",
    entity="AffinityGroup",
)
def delete_affinity_group(
    ctx: Ctx,
    id: Annotated[
        UUIDStr | None,
        Param("The ID of the affinity group. Mutually exclusive with name parameter"),
    ] = None,
    name: Annotated[
        str | None,
        Param("The name of the affinity group. Mutually exclusive with ID parameter"),
    ] = None,
    account: Annotated[
        str | None,
        Param("the account of the affinity group. Must be specified with domain ID"),
    ] = None,
    domainid: Annotated[
        UUIDStr | None, Param("the domain ID of account owning the affinity group", entity="Domain")
    ] = None,
    projectid: Annotated[
        UUIDStr | None,
        Param("the ID of the project", entity="Project", since="4.6.0"),
    ] = None,
) -> Submit:
    """Refusals (unknown group, another account's, VMs still in it) are immediate."""
    owner = resolve_owner(ctx.session, ctx.caller, account, domainid, projectid)
    group = svc.find_for_delete(ctx.session, ctx.caller, id, name, owner)
    svc.check_deletable(ctx.session, group)
    return Submit(
        params={"id": group.uuid},
        instance_type="AffinityGroup",
        instance_id=group.uuid,
        resource_name=group.name,
    )


@delete_affinity_group.runs
def run_delete_affinity_group(ctx: Ctx, id: str) -> Success:
    """Idempotent: a re-run after a crash finds the group gone and succeeds."""
    group = ctx.session.scalar(select(AffinityGroup).where(AffinityGroup.uuid == id))
    if group is not None:
        svc.delete_group(ctx.session, group)
    return Success()


@command(
    "listAffinityGroups",
    kind=Kind.LIST,
    description="Lists affinity groups",
    response="affinitygroup",
    scoped=True,
    fields=GROUP_FIELDS,
)
def list_affinity_groups(
    ctx: Ctx,
    id: Annotated[UUIDStr | None, Param("list the affinity group by the ID provided")] = None,
    name: Annotated[str | None, Param("lists affinity groups by name")] = None,
    type: Annotated[str | None, Param("lists affinity groups by type")] = None,
    virtualmachineid: Annotated[
        UUIDStr | None,
        Param("lists affinity groups by virtual machine ID", entity="VirtualMachine"),
    ] = None,
    projectid: Annotated[UUIDStr | None, Param("list objects by project", entity="Project")] = None,
) -> Listing:
    if projectid is not None:
        return Listing([], 0)  # no projects exist yet, so no group belongs to one
    stmt = groups_select().where(ctx.scope.where(AffinityGroup.account_id, Domain.path))
    if virtualmachineid is not None:
        stmt = stmt.where(
            AffinityGroup.id.in_(
                select(AffinityGroupVmMap.group_id)
                .join(VirtualMachine, VirtualMachine.id == AffinityGroupVmMap.vm_id)
                .where(VirtualMachine.uuid == virtualmachineid)
            )
        )
    if id is not None:
        stmt = stmt.where(AffinityGroup.uuid == id)
    if name is not None:
        stmt = stmt.where(AffinityGroup.name == name)
    if type is not None:
        stmt = stmt.where(AffinityGroup.type == type)
    if ctx.paging.keyword:
        stmt = stmt.where(AffinityGroup.name.ilike(f"%{ctx.paging.keyword}%"))
    rows, total = ctx.page_records(stmt.order_by(AffinityGroup.id))
    members = svc.vm_uuids_of(ctx.session, [r.id for r in rows])
    return Listing([group_response(r, members.get(r.id, [])) for r in rows], total)


@command(
    "listAffinityGroupTypes",
    kind=Kind.LIST,
    description="Lists affinity group types available",
    response="affinityGroupType",
    fields=("type",),
)
def list_affinity_group_types(ctx: Ctx) -> Listing:
    types = [t for t in svc.GROUP_TYPES if not ctx.paging.keyword or ctx.paging.keyword in t]
    return Listing([{"type": t} for t in types], len(types))
