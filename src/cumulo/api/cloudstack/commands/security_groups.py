"""Security group commands: createSecurityGroup, deleteSecurityGroup, listSecurityGroups,
authorizeSecurityGroupIngress/Egress, revokeSecurityGroupIngress/Egress.

Rules are recorded for the dataplane (nftables bridge rules per VM port, default-deny
ingress). Authorizations are checked and written in the request (so bad input changes
nothing and is refused at once); the job reports the group.
"""

from __future__ import annotations

from typing import Annotated, Any

from sqlalchemy import Select, func, select

from cumulo.api.cloudstack.registry import Kind, Param, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx, Listing, Submit, Success
from cumulo.db.models import Account, Domain
from cumulo.db.models_compute import VirtualMachine
from cumulo.db.models_network import SecurityGroup, SecurityGroupMember, SecurityGroupRule
from cumulo.services.catalog.owners import resolve_owner
from cumulo.services.errors import ParamError
from cumulo.services.network import security_groups as svc

GROUP_FIELDS = (
    "id", "name", "description", "account", "domainid", "domain", "domainpath",
    "ingressrule", "egressrule", "tags", "virtualmachinecount", "virtualmachineids",
)  # fmt: skip


def groups_select() -> Select[*tuple[Any, ...]]:
    return (
        select(
            SecurityGroup,
            Account.name.label("account"),
            Domain.uuid.label("domainid"),
            Domain.name.label("domain"),
            Domain.path.label("domainpath"),
        )
        .join(Account, Account.id == SecurityGroup.account_id)
        .join(Domain, Domain.id == SecurityGroup.domain_id)
    )


def _rule_response(rule: SecurityGroupRule, refs: dict[int, tuple[str, str]]) -> dict[str, Any]:
    out: dict[str, Any] = {"ruleid": rule.uuid, "protocol": rule.protocol, "tags": []}
    optional = (
        ("startport", rule.start_port),
        ("endport", rule.end_port),
        ("icmptype", rule.icmp_type),
        ("icmpcode", rule.icmp_code),
        ("cidr", rule.cidr),
    )
    out.update({k: v for k, v in optional if v is not None})
    if rule.ref_group_id is not None and rule.ref_group_id in refs:
        out["securitygroupname"], out["account"] = refs[rule.ref_group_id]
    return out


def _details(ctx: Ctx, group_ids: list[int]) -> tuple[dict[int, list[Any]], dict[int, list[str]]]:
    rules: dict[int, list[Any]] = {}
    for rule in ctx.session.scalars(
        select(SecurityGroupRule)
        .where(SecurityGroupRule.group_id.in_(group_ids))
        .order_by(SecurityGroupRule.id)
    ):
        rules.setdefault(rule.group_id, []).append(rule)
    members: dict[int, list[str]] = {}
    for group_id, vm_uuid in ctx.session.execute(
        select(SecurityGroupMember.group_id, VirtualMachine.uuid)
        .join(VirtualMachine, VirtualMachine.id == SecurityGroupMember.vm_id)
        .where(SecurityGroupMember.group_id.in_(group_ids))
    ):
        members.setdefault(group_id, []).append(vm_uuid)
    return rules, members


def _refs(ctx: Ctx, rules: dict[int, list[Any]]) -> dict[int, tuple[str, str]]:
    ids = {r.ref_group_id for rs in rules.values() for r in rs if r.ref_group_id is not None}
    if not ids:
        return {}
    rows = ctx.session.execute(
        select(SecurityGroup.id, SecurityGroup.name, Account.name)
        .join(Account, Account.id == SecurityGroup.account_id)
        .where(SecurityGroup.id.in_(ids))
    )
    return {gid: (name, account) for gid, name, account in rows}


def _responses(ctx: Ctx, rows: list[Any]) -> list[dict[str, Any]]:
    rules, members = _details(ctx, [r.SecurityGroup.id for r in rows])
    refs = _refs(ctx, rules)
    out = []
    for row in rows:
        group: SecurityGroup = row.SecurityGroup
        mine = rules.get(group.id, [])
        vms = members.get(group.id, [])
        item: dict[str, Any] = {
            "id": group.uuid,
            "name": group.name,
            "account": row.account,
            "domainid": row.domainid,
            "domain": row.domain,
            "domainpath": row.domainpath,
            "ingressrule": [_rule_response(r, refs) for r in mine if r.direction == "ingress"],
            "egressrule": [_rule_response(r, refs) for r in mine if r.direction == "egress"],
            "tags": [],
            "virtualmachinecount": len(vms),
            "virtualmachineids": vms,
        }
        if group.description is not None:
            item["description"] = group.description
        out.append(item)
    return out


def render(ctx: Ctx, group_id: int) -> dict[str, Any]:
    row = ctx.session.execute(groups_select().where(SecurityGroup.id == group_id)).one()
    ctx.event_resource = (row.SecurityGroup.uuid, row.SecurityGroup.name)
    return _responses(ctx, [row])[0]


Account_ = Annotated[
    str | None, Param("an optional account for the security group. Must be used with domainId.")
]
DomainId = Annotated[
    UUIDStr | None,
    Param(
        "an optional domainId for the security group. If the account parameter is used, domainId "
        "must also be used.",
        entity="Domain",
    ),
]
ProjectId = Annotated[UUIDStr | None, Param("create security group for project", entity="Project")]


@command(
    "createSecurityGroup",
    description="Creates a security group",
    response="securitygroup",
    event="SG.CREATE",
    entity="SecurityGroup",
    fields=GROUP_FIELDS,
)
def create_security_group(
    ctx: Ctx,
    name: Annotated[str, Param("name of the security group", required=True)],
    description: Annotated[str | None, Param("the description of the security group")] = None,
    account: Account_ = None,
    domainid: DomainId = None,
    projectid: ProjectId = None,
) -> dict[str, Any]:
    owner = resolve_owner(ctx.session, ctx.caller, account, domainid, projectid)
    return render(ctx, svc.create(ctx.session, owner, name, description).id)


def _group(
    ctx: Ctx, id: str | None, name: str | None, account: str | None, domainid: str | None
) -> SecurityGroup:
    if (id is None) == (name is None):
        raise ParamError("Either id or name of the security group is required, not both")
    if id is not None:
        group = svc.find(ctx.session, id)
        ctx.caller.check_account(svc.owner_of(ctx.session, group))
        return group
    owner = resolve_owner(ctx.session, ctx.caller, account, domainid)
    assert name is not None
    return svc.find_by_name(ctx.session, owner, name)


@command(
    "deleteSecurityGroup",
    description="Deletes security group",
    event="SG.DELETE",
    entity="SecurityGroup",
)
def delete_security_group(
    ctx: Ctx,
    id: Annotated[
        UUIDStr | None,
        Param(
            "The ID of the security group. Mutually exclusive with name parameter",
            entity="SecurityGroup",
        ),
    ] = None,
    name: Annotated[
        str | None, Param("The ID of the security group. Mutually exclusive with id parameter")
    ] = None,
    account: Account_ = None,
    domainid: DomainId = None,
    projectid: ProjectId = None,
) -> Success:
    if projectid is not None:
        raise ParamError(f"Unable to find project by id {projectid}")
    group = _group(ctx, id, name, account, domainid)
    ctx.event_resource = (group.uuid, group.name)
    svc.delete(ctx.session, group)
    return Success()


@command(
    "listSecurityGroups",
    kind=Kind.LIST,
    description="Lists security groups",
    response="securitygroup",
    scoped=True,
    fields=GROUP_FIELDS,
)
def list_security_groups(
    ctx: Ctx,
    id: Annotated[
        UUIDStr | None, Param("list the security group by the id provided", entity="SecurityGroup")
    ] = None,
    securitygroupname: Annotated[str | None, Param("lists security groups by name")] = None,
    virtualmachineid: Annotated[
        UUIDStr | None, Param("lists security groups by virtual machine id", entity="UserVm")
    ] = None,
    projectid: Annotated[UUIDStr | None, Param("list objects by project", entity="Project")] = None,
) -> Listing:
    if projectid is not None:
        return Listing([], 0)
    stmt = groups_select().where(ctx.scope.where(SecurityGroup.account_id, Domain.path))
    if id is not None:
        stmt = stmt.where(SecurityGroup.uuid == id)
    if securitygroupname is not None:
        stmt = stmt.where(SecurityGroup.name == securitygroupname)
    if virtualmachineid is not None:
        stmt = stmt.where(
            SecurityGroup.id.in_(
                select(SecurityGroupMember.group_id)
                .join(VirtualMachine, VirtualMachine.id == SecurityGroupMember.vm_id)
                .where(VirtualMachine.uuid == virtualmachineid)
            )
        )
    if ctx.paging.keyword:
        stmt = stmt.where(func.lower(SecurityGroup.name).contains(ctx.paging.keyword.lower()))
    rows, total = ctx.page_records(stmt.order_by(SecurityGroup.id))
    return Listing(_responses(ctx, list(rows)), total)


# --- authorize and revoke ---------------------------------------------------------------


def _authorize(ctx: Ctx, direction: str, args: dict[str, Any]) -> Submit:
    group = _group(
        ctx, args["securitygroupid"], args["securitygroupname"], args["account"], args["domainid"]
    )
    req = svc.RuleRequest(
        direction=direction,
        protocol=args["protocol"] or "tcp",
        start_port=args["startport"],
        end_port=args["endport"],
        icmp_type=args["icmptype"],
        icmp_code=args["icmpcode"],
        cidrs=list(args["cidrlist"] or []),
        groups=list(args["usersecuritygrouplist"] or []),
    )
    svc.authorize(ctx.session, group, req)
    return Submit(
        params={"id": group.uuid},
        instance_type="SecurityGroup",
        instance_id=group.uuid,
        resource_name=group.name,
    )


def _run_render(ctx: Ctx, id: str) -> dict[str, Any]:
    return render(ctx, svc.find(ctx.session, id).id)


GroupId = Annotated[
    UUIDStr | None,
    Param(
        "The ID of the security group. Mutually exclusive with securityGroupName parameter",
        entity="SecurityGroup",
    ),
]
GroupName = Annotated[
    str | None,
    Param("The name of the security group. Mutually exclusive with securityGroupId parameter"),
]
Proto = Annotated[str | None, Param("TCP is default. UDP is the other supported protocol")]
Start = Annotated[int | None, Param("start port for this ingress rule")]
End = Annotated[int | None, Param("end port for this ingress rule")]
IType = Annotated[int | None, Param("type of the icmp message being sent")]
ICode = Annotated[int | None, Param("error code for this icmp message")]
Cidrs = Annotated[
    list[str] | None,
    Param(
        "the cidr list associated. Multiple entries must be separated by a single comma character"
        " (,)."
    ),
]
UserGroups = Annotated[list[dict[str, str]] | None, Param("user to security group mapping")]


@command(
    "authorizeSecurityGroupIngress",
    kind=Kind.ASYNC,
    description="Authorizes a particular ingress rule for this security group",
    response="securitygroup",
    event="SG.AUTH.INGRESS",
    entity="SecurityGroup",
    fields=GROUP_FIELDS,
)
def authorize_security_group_ingress(
    ctx: Ctx,
    securitygroupid: GroupId = None,
    securitygroupname: GroupName = None,
    protocol: Proto = None,
    startport: Start = None,
    endport: End = None,
    icmptype: IType = None,
    icmpcode: ICode = None,
    cidrlist: Cidrs = None,
    usersecuritygrouplist: UserGroups = None,
    account: Account_ = None,
    domainid: DomainId = None,
    projectid: ProjectId = None,
) -> Submit:
    return _authorize(ctx, "ingress", locals())


authorize_security_group_ingress.runs(_run_render)


@command(
    "authorizeSecurityGroupEgress",
    kind=Kind.ASYNC,
    description="Authorizes a particular egress rule for this security group",
    response="securitygroup",
    event="SG.AUTH.EGRESS",
    entity="SecurityGroup",
    fields=GROUP_FIELDS,
)
def authorize_security_group_egress(
    ctx: Ctx,
    securitygroupid: GroupId = None,
    securitygroupname: GroupName = None,
    protocol: Proto = None,
    startport: Start = None,
    endport: End = None,
    icmptype: IType = None,
    icmpcode: ICode = None,
    cidrlist: Cidrs = None,
    usersecuritygrouplist: UserGroups = None,
    account: Account_ = None,
    domainid: DomainId = None,
    projectid: ProjectId = None,
) -> Submit:
    return _authorize(ctx, "egress", locals())


authorize_security_group_egress.runs(_run_render)


def _revoke(ctx: Ctx, id: str, direction: str) -> Submit:
    rule = svc.find_rule(ctx.session, id, direction)
    group = ctx.session.get(SecurityGroup, rule.group_id)
    assert group is not None
    ctx.caller.check_account(svc.owner_of(ctx.session, group))
    return Submit(
        params={"id": rule.uuid},
        instance_type="SecurityGroup",
        instance_id=group.uuid,
        resource_name=group.name,
    )


def _run_revoke(ctx: Ctx, id: str) -> Success:
    rule = ctx.session.scalar(select(SecurityGroupRule).where(SecurityGroupRule.uuid == id))
    if rule is not None:
        ctx.session.delete(rule)
    return Success()


RuleId = Annotated[UUIDStr, Param("The ID of the rule", required=True, entity="SecurityGroupRule")]


@command(
    "revokeSecurityGroupIngress",
    kind=Kind.ASYNC,
    description="Deletes a particular ingress rule from this security group",
    event="SG.REVOKE.INGRESS",
    entity="SecurityGroup",
)
def revoke_security_group_ingress(ctx: Ctx, id: RuleId) -> Submit:
    return _revoke(ctx, id, "ingress")


revoke_security_group_ingress.runs(_run_revoke)


@command(
    "revokeSecurityGroupEgress",
    kind=Kind.ASYNC,
    description="Deletes a particular egress rule from this security group",
    event="SG.REVOKE.EGRESS",
    entity="SecurityGroup",
)
def revoke_security_group_egress(ctx: Ctx, id: RuleId) -> Submit:
    return _revoke(ctx, id, "egress")


revoke_security_group_egress.runs(_run_revoke)
