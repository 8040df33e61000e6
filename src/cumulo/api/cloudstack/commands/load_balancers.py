"""Load balancer rule commands: createLoadBalancerRule, updateLoadBalancerRule,
deleteLoadBalancerRule, assignToLoadBalancerRule, removeFromLoadBalancerRule,
listLoadBalancerRules, listLoadBalancerRuleInstances.

Rules are recorded per network for its router (haproxy in the router namespace); membership
changes are checked in the request and written by idempotent jobs.
"""

from __future__ import annotations

from typing import Annotated, Any

from sqlalchemy import Select, select

from cumulo.api.cloudstack.registry import Kind, Param, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx, Listing, Submit, Success
from cumulo.db.models import Account, Domain
from cumulo.db.models_compute import VirtualMachine
from cumulo.db.models_infra import Zone
from cumulo.db.models_network import LoadBalancerMember, Network, NetworkRule, PublicIpAddress
from cumulo.services.catalog.owners import resolve_owner
from cumulo.services.compute import views, vms
from cumulo.services.errors import ParamError
from cumulo.services.network import public_ips, rules

LB_FIELDS = (
    "id", "name", "description", "publicipid", "publicip", "publicport", "privateport",
    "algorithm", "networkid", "cidrlist", "account", "domainid", "domain", "domainpath",
    "state", "zoneid", "zonename", "protocol", "tags", "fordisplay",
)  # fmt: skip
LbId = Annotated[
    UUIDStr, Param("the ID of the load balancer rule", required=True, entity="FirewallRule")
]
VmIds = Annotated[
    list[UUIDStr] | None,
    Param(
        "the list of IDs of the virtual machine that are being assigned to the load balancer "
        "rule(i.e. virtualMachineIds=1,2,3)",
        entity="UserVm",
    ),
]


def lb_select() -> Select[*tuple[Any, ...]]:
    return (
        select(
            NetworkRule,
            PublicIpAddress.uuid.label("ipid"),
            PublicIpAddress.address.label("ipaddress"),
            Network.uuid.label("networkid"),
            Zone.uuid.label("zoneid"),
            Zone.name.label("zonename"),
            Account.name.label("account"),
            Domain.uuid.label("domainid"),
            Domain.name.label("domain"),
            Domain.path.label("domainpath"),
        )
        .join(PublicIpAddress, PublicIpAddress.id == NetworkRule.public_ip_id)
        .join(Network, Network.id == NetworkRule.network_id)
        .join(Zone, Zone.id == Network.zone_id)
        .join(Account, Account.id == NetworkRule.account_id)
        .join(Domain, Domain.id == NetworkRule.domain_id)
        .where(NetworkRule.purpose == "LoadBalancing")
    )


def lb_response(row: Any) -> dict[str, Any]:
    rule: NetworkRule = row.NetworkRule
    out: dict[str, Any] = {
        "id": rule.uuid,
        "name": rule.name,
        "publicipid": row.ipid,
        "publicip": row.ipaddress,
        "publicport": str(rule.start_port),
        "privateport": str(rule.private_start_port),
        "algorithm": rule.algorithm,
        "networkid": row.networkid,
        "cidrlist": ",".join(rule.source_cidrs or []),
        "account": row.account,
        "domainid": row.domainid,
        "domain": row.domain,
        "domainpath": row.domainpath,
        "state": rule.state,
        "zoneid": row.zoneid,
        "zonename": row.zonename,
        "protocol": rule.protocol,
        "tags": [],
        "fordisplay": rule.display,
    }
    if rule.description:
        out["description"] = rule.description
    return out


def _render(ctx: Ctx, rule_id: int) -> dict[str, Any]:
    row = ctx.session.execute(lb_select().where(NetworkRule.id == rule_id)).one()
    ctx.event_resource = (row.NetworkRule.uuid, row.NetworkRule.name)
    return lb_response(row)


def _owned(ctx: Ctx, uuid: str) -> NetworkRule:
    rule = rules.find(ctx.session, uuid, "LoadBalancing")
    owner = ctx.session.get(Account, rule.account_id)
    assert owner is not None
    ctx.caller.check_account(owner)
    return rule


def _vms(ctx: Ctx, ids: list[UUIDStr] | None) -> list[VirtualMachine]:
    if not ids:
        raise ParamError("virtualmachineids is required")
    return [vms.find_for(ctx.session, ctx.caller, i) for i in dict.fromkeys(ids)]


def _submit(rule: NetworkRule, **params: Any) -> Submit:
    return Submit(
        params={"id": rule.uuid, **params},
        instance_type="FirewallRule",
        instance_id=rule.uuid,
        resource_name=rule.name,
    )


@command(
    "createLoadBalancerRule",
    kind=Kind.ASYNC_CREATE,
    description="Creates a load balancer rule",
    response="loadbalancer",
    event="LB.CREATE",
    entity="FirewallRule",
    fields=LB_FIELDS,
)
def create_load_balancer_rule(
    ctx: Ctx,
    name: Annotated[str, Param("name of the load balancer rule", required=True)],
    algorithm: Annotated[
        str, Param("load balancer algorithm (source, roundrobin, leastconn)", required=True)
    ],
    privateport: Annotated[
        int, Param("the private port of the private IP address/virtual machine", required=True)
    ],
    publicport: Annotated[
        int,
        Param(
            "the public port from where the network traffic will be load balanced from",
            required=True,
        ),
    ],
    publicipid: Annotated[
        UUIDStr | None,
        Param(
            "public IP address ID from where the network traffic will be load balanced from",
            entity="IpAddress",
        ),
    ] = None,
    networkid: Annotated[
        UUIDStr | None, Param("The guest network this rule will be created for.", entity="Network")
    ] = None,
    description: Annotated[str | None, Param("the description of the load balancer rule")] = None,
    cidrlist: Annotated[
        list[str] | None, Param("the CIDR list to allow traffic, all other CIDRs will be blocked.")
    ] = None,
    protocol: Annotated[
        str, Param("The protocol for the LB such as tcp, udp or tcp-proxy.")
    ] = "tcp",
    openfirewall: Annotated[
        bool,
        Param(
            "if true, firewall rule for source/end public port is automatically created; if false"
            " - firewall rule has to be created explicitly."
        ),
    ] = True,
    zoneid: Annotated[
        UUIDStr | None, Param("zone where the load balancer is going to be created.", entity="Zone")
    ] = None,
    account: Annotated[
        str | None,
        Param(
            "the account associated with the load balancer. Must be used with the domainId "
            "parameter."
        ),
    ] = None,
    domainid: Annotated[
        UUIDStr | None, Param("the domain ID associated with the load balancer", entity="Domain")
    ] = None,
    fordisplay: Annotated[
        bool, Param("an optional field, whether to the display the rule to the end user or not")
    ] = True,
) -> Submit:
    resolve_owner(ctx.session, ctx.caller, account, domainid)
    if publicipid is None:
        raise ParamError("publicipid is required: load balancing needs a public IP address")
    ip = public_ips.find_for(ctx.session, ctx.caller, publicipid)
    spec = rules.BalancerSpec(
        name=name,
        algorithm=algorithm,
        public_port=publicport,
        private_port=privateport,
        protocol=protocol,
        description=description,
        source_cidrs=rules.cidrs(cidrlist),
        open_firewall=openfirewall,
    )
    rule = rules.create_load_balancer(ctx.session, ip, spec)
    rule.display = fordisplay
    return Submit(
        params={"id": rule.uuid},
        instance_type="FirewallRule",
        created_id=rule.uuid,
        resource_name=rule.name,
    )


@create_load_balancer_rule.runs
def run_create_load_balancer_rule(ctx: Ctx, id: str) -> dict[str, Any]:
    return _render(ctx, rules.find(ctx.session, id, "LoadBalancing").id)


@command(
    "updateLoadBalancerRule",
    kind=Kind.ASYNC,
    description="Updates load balancer",
    response="loadbalancer",
    event="LB.UPDATE",
    entity="FirewallRule",
    fields=LB_FIELDS,
)
def update_load_balancer_rule(
    ctx: Ctx,
    id: LbId,
    name: Annotated[str | None, Param("the name of the load balancer rule")] = None,
    description: Annotated[str | None, Param("the description of the load balancer rule")] = None,
    algorithm: Annotated[
        str | None, Param("load balancer algorithm (source, roundrobin, leastconn)")
    ] = None,
) -> Submit:
    rule = _owned(ctx, id)
    if algorithm is not None:
        if algorithm.strip().lower() not in rules.LB_ALGORITHMS:
            raise ParamError(f"Invalid algorithm {algorithm}")
        rule.algorithm = algorithm.strip().lower()
    if name is not None:
        if not name.strip():
            raise ParamError("Load balancer rule name must not be empty")
        rule.name = name.strip()
    if description is not None:
        rule.description = description
    return _submit(rule)


@update_load_balancer_rule.runs
def run_update_load_balancer_rule(ctx: Ctx, id: str) -> dict[str, Any]:
    return _render(ctx, rules.find(ctx.session, id, "LoadBalancing").id)


@command(
    "deleteLoadBalancerRule",
    kind=Kind.ASYNC,
    description="Deletes a load balancer rule.",
    event="LB.DELETE",
    entity="FirewallRule",
)
def delete_load_balancer_rule(ctx: Ctx, id: LbId) -> Submit:
    return _submit(_owned(ctx, id))


@delete_load_balancer_rule.runs
def run_delete_load_balancer_rule(ctx: Ctx, id: str) -> Success:
    rule = ctx.session.scalar(select(NetworkRule).where(NetworkRule.uuid == id))
    if rule is not None:
        rules.delete_rule(ctx.session, rule)
    return Success()


@command(
    "assignToLoadBalancerRule",
    kind=Kind.ASYNC,
    description="Assigns virtual machine or a list of virtual machines to a load balancer rule.",
    event="LB.ASSIGN.TO.RULE",
    entity="FirewallRule",
)
def assign_to_load_balancer_rule(ctx: Ctx, id: LbId, virtualmachineids: VmIds = None) -> Submit:
    rule = _owned(ctx, id)
    members = _vms(ctx, virtualmachineids)
    rules.check_assign(ctx.session, rule, members)
    return _submit(rule, vms=[vm.uuid for vm in members])


@assign_to_load_balancer_rule.runs
def run_assign_to_load_balancer_rule(ctx: Ctx, id: str, vms: list[str]) -> Success:
    rule = rules.find(ctx.session, id, "LoadBalancing")
    found = ctx.session.scalars(select(VirtualMachine).where(VirtualMachine.uuid.in_(vms)))
    rules.assign(ctx.session, rule, [vm for vm in found if vm.removed is None])
    return Success()


@command(
    "removeFromLoadBalancerRule",
    kind=Kind.ASYNC,
    description="Removes a virtual machine or a list of virtual machines from a load "
    "balancer rule.",
    event="LB.REMOVE.FROM.RULE",
    entity="FirewallRule",
)
def remove_from_load_balancer_rule(ctx: Ctx, id: LbId, virtualmachineids: VmIds = None) -> Submit:
    rule = _owned(ctx, id)
    members = _vms(ctx, virtualmachineids)
    rules.check_remove(ctx.session, rule, members)
    return _submit(rule, vms=[vm.uuid for vm in members])


@remove_from_load_balancer_rule.runs
def run_remove_from_load_balancer_rule(ctx: Ctx, id: str, vms: list[str]) -> Success:
    rule = ctx.session.scalar(select(NetworkRule).where(NetworkRule.uuid == id))
    if rule is not None:
        found = ctx.session.scalars(select(VirtualMachine).where(VirtualMachine.uuid.in_(vms)))
        rules.remove(ctx.session, rule, list(found))
    return Success()


@command(
    "listLoadBalancerRules",
    kind=Kind.LIST,
    description="Lists load balancer rules.",
    response="loadbalancerrule",
    scoped=True,
    fields=LB_FIELDS,
)
def list_load_balancer_rules(
    ctx: Ctx,
    id: Annotated[
        UUIDStr | None, Param("the ID of the load balancer rule", entity="FirewallRule")
    ] = None,
    name: Annotated[str | None, Param("the name of the load balancer rule")] = None,
    publicipid: Annotated[
        UUIDStr | None,
        Param("the public IP address ID of the load balancer rule", entity="IpAddress"),
    ] = None,
    virtualmachineid: Annotated[
        UUIDStr | None,
        Param("the ID of the virtual machine of the load balancer rule", entity="UserVm"),
    ] = None,
    zoneid: Annotated[UUIDStr | None, Param("the availability zone ID", entity="Zone")] = None,
    networkid: Annotated[
        UUIDStr | None, Param("list by network ID the rule belongs to", entity="Network")
    ] = None,
) -> Listing:
    stmt = lb_select().where(ctx.scope.where(NetworkRule.account_id, Domain.path))
    for value, column in (
        (id, NetworkRule.uuid),
        (name, NetworkRule.name),
        (publicipid, PublicIpAddress.uuid),
        (zoneid, Zone.uuid),
        (networkid, Network.uuid),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if virtualmachineid is not None:
        stmt = stmt.where(
            NetworkRule.id.in_(
                select(LoadBalancerMember.rule_id)
                .join(VirtualMachine, VirtualMachine.id == LoadBalancerMember.vm_id)
                .where(VirtualMachine.uuid == virtualmachineid)
            )
        )
    if ctx.paging.keyword:
        stmt = stmt.where(NetworkRule.name.ilike(f"%{ctx.paging.keyword}%"))
    rows, total = ctx.page_records(stmt.order_by(NetworkRule.id))
    return Listing([lb_response(r) for r in rows], total)


@command(
    "listLoadBalancerRuleInstances",
    kind=Kind.LIST,
    description="List all virtual machine instances that are assigned to a load balancer rule.",
    response="loadbalancerruleinstance",
    fields=("id", "name", "displayname", "state", "nic"),
)
def list_load_balancer_rule_instances(
    ctx: Ctx,
    id: LbId,
    applied: Annotated[
        bool,
        Param(
            "true if listing all virtual machines currently applied to the load balancer rule; "
            "default is true"
        ),
    ] = True,
) -> Listing:
    rule = _owned(ctx, id)
    vm_ids = [m.vm_id for m in rules.members(ctx.session, rule)]
    if not applied:
        return Listing([], 0)
    items = views.render(ctx.session, ctx.caller, vm_ids)
    return Listing(items, len(items))
