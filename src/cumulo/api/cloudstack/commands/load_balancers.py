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
from cumulo.db.models_network import (
    LbHealthCheckPolicy,
    LbStickinessPolicy,
    LoadBalancerMember,
    Network,
    NetworkRule,
    PublicIpAddress,
)
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


# --- stickiness and health check policies ---------------------------------------------------
# The response wraps the rule's policies the way CloudStack does: one object per rule
# (``stickinesspolicies`` / ``healthcheckpolicies``) holding the list of its policies.


def _rule_of_policy(ctx: Ctx, policy: LbStickinessPolicy | LbHealthCheckPolicy) -> NetworkRule:
    rule = ctx.session.get(NetworkRule, policy.rule_id)
    assert rule is not None
    owner = ctx.session.get(Account, rule.account_id)
    assert owner is not None
    ctx.caller.check_account(owner)
    return rule


def _owner_fields(ctx: Ctx, rule: NetworkRule) -> dict[str, Any]:
    owner = ctx.session.get(Account, rule.account_id)
    domain = ctx.session.get(Domain, rule.domain_id)
    network = ctx.session.get(Network, rule.network_id)
    return {
        "lbruleid": rule.uuid,
        "account": owner.name if owner else None,
        "domainid": domain.uuid if domain else None,
        "domain": domain.name if domain else None,
        "zoneid": ctx.session.get(Zone, network.zone_id).uuid if network else None,  # type: ignore[union-attr]
        "state": rule.state,
    }


def _stickiness_view(p: LbStickinessPolicy) -> dict[str, Any]:
    out = {"id": p.uuid, "name": p.name, "methodname": p.method, "params": dict(p.params or {}),
           "state": "Active", "fordisplay": p.display}  # fmt: skip
    if p.description:
        out["description"] = p.description
    return out


def _health_view(p: LbHealthCheckPolicy) -> dict[str, Any]:
    out = {"id": p.uuid, "pingpath": p.ping_path or "", "healthcheckinterval": p.interval_s,
           "responsetime": p.response_timeout_s, "healthcheckthresshold": p.healthy_threshold,
           "unhealthcheckthresshold": p.unhealthy_threshold, "state": "Active",
           "fordisplay": p.display}  # fmt: skip
    if p.description:
        out["description"] = p.description
    return out


def _stickiness_of(ctx: Ctx, rule: NetworkRule) -> dict[str, Any]:
    found = ctx.session.scalars(
        select(LbStickinessPolicy).where(LbStickinessPolicy.rule_id == rule.id)
    )
    return {**_owner_fields(ctx, rule), "name": rule.name,
            "stickinesspolicy": [_stickiness_view(p) for p in found]}  # fmt: skip


def _health_of(ctx: Ctx, rule: NetworkRule) -> dict[str, Any]:
    found = ctx.session.scalars(
        select(LbHealthCheckPolicy).where(LbHealthCheckPolicy.rule_id == rule.id)
    )
    return {**_owner_fields(ctx, rule), "healthcheckpolicy": [_health_view(p) for p in found]}


PolicyKind = type[LbStickinessPolicy] | type[LbHealthCheckPolicy]


def _submit_policy_delete(ctx: Ctx, kind: PolicyKind, id: str) -> Submit:
    _rule_of_policy(ctx, rules.find_policy(ctx.session, kind, id))
    return Submit(params={"id": id}, instance_type="FirewallRule", instance_id=id)


def _delete_policy(ctx: Ctx, kind: PolicyKind, id: str) -> Success:
    """Job body: idempotent (a re-run after a crash finds nothing to delete)."""
    row = ctx.session.scalar(select(kind).where(kind.uuid == id))
    if row is not None:
        ctx.session.delete(row)
    return Success()


def _listed_rules(
    ctx: Ctx, kind: PolicyKind, lbruleid: str | None, id: str | None
) -> list[NetworkRule]:
    """The rules whose policies a list call shows: named by a policy id or by the rule; with
    neither, the caller's own rules that have a policy of this kind."""
    if id is not None:
        return [_rule_of_policy(ctx, rules.find_policy(ctx.session, kind, id))]
    if lbruleid is not None:
        return [_owned(ctx, lbruleid)]
    with_policy = select(kind.rule_id)
    return list(
        ctx.session.scalars(
            select(NetworkRule)
            .where(NetworkRule.id.in_(with_policy), NetworkRule.account_id == ctx.caller.account_id)
            .order_by(NetworkRule.id)
        )
    )


STICKY_FIELDS = ("lbruleid", "name", "account", "domainid", "domain", "zoneid", "state",
                 "stickinesspolicy")  # fmt: skip
HEALTH_FIELDS = ("lbruleid", "account", "domainid", "domain", "zoneid", "state",
                 "healthcheckpolicy")  # fmt: skip
LbRuleId = Annotated[
    UUIDStr, Param("the ID of the load balancer rule", required=True, entity="FirewallRule")
]


@command(
    "createLBStickinessPolicy",
    kind=Kind.ASYNC_CREATE,
    description="Creates a load balancer stickiness policy",
    response="stickinesspolicies",
    event="LB.STICKINESSPOLICY.CREATE",
    entity="FirewallRule",
    fields=STICKY_FIELDS,
)
def create_lb_stickiness_policy(
    ctx: Ctx,
    lbruleid: LbRuleId,
    methodname: Annotated[
        str,
        Param(
            "name of the stickiness policy method: LbCookie, AppCookie, SourceBased", required=True
        ),
    ],
    name: Annotated[str, Param("name of the load balancer stickiness policy", required=True)],
    description: Annotated[str | None, Param("the description of the stickiness policy")] = None,
    param: Annotated[
        list[dict[str, str]] | None,
        Param("param list. Example: param[0].name=cookiename&param[0].value=LBCookie"),
    ] = None,
    fordisplay: Annotated[bool, Param("whether to display the policy to the end user")] = True,
) -> Submit:
    rule = _owned(ctx, lbruleid)
    values: dict[str, str] = {}
    for entry in param or []:
        key = (entry.get("name") or "").strip()
        if not key:
            raise ParamError("Each param entry needs a name")
        values[key] = str(entry.get("value") or "")
    policy = rules.create_stickiness(ctx.session, rule, name, methodname, values, description)
    policy.display = fordisplay
    return Submit(params={"id": policy.uuid}, instance_type="FirewallRule",
                  created_id=policy.uuid, resource_name=policy.name)  # fmt: skip


@create_lb_stickiness_policy.runs
def run_create_lb_stickiness_policy(ctx: Ctx, id: str) -> dict[str, Any]:
    policy = rules.find_policy(ctx.session, LbStickinessPolicy, id)
    ctx.event_resource = (policy.uuid, getattr(policy, "name", ""))
    return _stickiness_of(ctx, _rule_of_policy(ctx, policy))


@command(
    "deleteLBStickinessPolicy",
    kind=Kind.ASYNC,
    description="Deletes a load balancer stickiness policy.",
    event="LB.STICKINESSPOLICY.DELETE",
    entity="FirewallRule",
)
def delete_lb_stickiness_policy(
    ctx: Ctx,
    id: Annotated[UUIDStr, Param("the ID of the LB stickiness policy", required=True)],
) -> Submit:
    return _submit_policy_delete(ctx, LbStickinessPolicy, id)


@delete_lb_stickiness_policy.runs
def run_delete_lb_stickiness_policy(ctx: Ctx, id: str) -> Success:
    return _delete_policy(ctx, LbStickinessPolicy, id)


@command(
    "listLBStickinessPolicies",
    kind=Kind.LIST,
    description="Lists load balancer stickiness policies.",
    response="stickinesspolicies",
    fields=STICKY_FIELDS,
)
def list_lb_stickiness_policies(
    ctx: Ctx,
    lbruleid: Annotated[
        UUIDStr | None, Param("the ID of the load balancer rule", entity="FirewallRule")
    ] = None,
    id: Annotated[UUIDStr | None, Param("the ID of the load balancer stickiness policy")] = None,
) -> Listing:
    found = [
        _stickiness_of(ctx, rule) for rule in _listed_rules(ctx, LbStickinessPolicy, lbruleid, id)
    ]
    return Listing(found, len(found))


@command(
    "createLBHealthCheckPolicy",
    kind=Kind.ASYNC_CREATE,
    description="Creates a load balancer health check policy",
    response="healthcheckpolicies",
    event="LB.HEALTHCHECKPOLICY.CREATE",
    entity="FirewallRule",
    fields=HEALTH_FIELDS,
)
def create_lb_health_check_policy(
    ctx: Ctx,
    lbruleid: LbRuleId,
    pingpath: Annotated[
        str | None, Param("HTTP ping path; a TCP connect check when not given")
    ] = None,
    description: Annotated[str | None, Param("the description of the health check policy")] = None,
    intervaltime: Annotated[
        int, Param("amount of time between health checks (1 sec - 20940 sec)")
    ] = 5,
    responsetimeout: Annotated[
        int, Param("time to wait when receiving a response from the health check (2sec - 60 sec)")
    ] = 2,
    healthythreshold: Annotated[
        int,
        Param("number of consecutive health check success before declaring an instance healthy"),
    ] = 2,
    unhealthythreshold: Annotated[
        int,
        Param("number of consecutive health check failures before declaring an instance unhealthy"),
    ] = 10,
    fordisplay: Annotated[bool, Param("whether to display the policy to the end user")] = True,
) -> Submit:
    rule = _owned(ctx, lbruleid)
    spec = rules.HealthCheckSpec(pingpath, description, intervaltime, responsetimeout,
                                 healthythreshold, unhealthythreshold)  # fmt: skip
    policy = rules.create_health_check(ctx.session, rule, spec)
    policy.display = fordisplay
    return Submit(params={"id": policy.uuid}, instance_type="FirewallRule",
                  created_id=policy.uuid, resource_name=rule.name)  # fmt: skip


@create_lb_health_check_policy.runs
def run_create_lb_health_check_policy(ctx: Ctx, id: str) -> dict[str, Any]:
    policy = rules.find_policy(ctx.session, LbHealthCheckPolicy, id)
    rule = _rule_of_policy(ctx, policy)
    ctx.event_resource = (policy.uuid, rule.name or "")
    return _health_of(ctx, rule)


@command(
    "deleteLBHealthCheckPolicy",
    kind=Kind.ASYNC,
    description="Deletes a load balancer health check policy.",
    event="LB.HEALTHCHECKPOLICY.DELETE",
    entity="FirewallRule",
)
def delete_lb_health_check_policy(
    ctx: Ctx,
    id: Annotated[UUIDStr, Param("the ID of the load balancer health check policy", required=True)],
) -> Submit:
    return _submit_policy_delete(ctx, LbHealthCheckPolicy, id)


@delete_lb_health_check_policy.runs
def run_delete_lb_health_check_policy(ctx: Ctx, id: str) -> Success:
    return _delete_policy(ctx, LbHealthCheckPolicy, id)


@command(
    "listLBHealthCheckPolicies",
    kind=Kind.LIST,
    description="Lists load balancer health check policies.",
    response="healthcheckpolicies",
    fields=HEALTH_FIELDS,
)
def list_lb_health_check_policies(
    ctx: Ctx,
    lbruleid: Annotated[
        UUIDStr | None, Param("the ID of the load balancer rule", entity="FirewallRule")
    ] = None,
    id: Annotated[UUIDStr | None, Param("the ID of the health check policy")] = None,
) -> Listing:
    found = [
        _health_of(ctx, rule) for rule in _listed_rules(ctx, LbHealthCheckPolicy, lbruleid, id)
    ]
    return Listing(found, len(found))
