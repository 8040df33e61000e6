"""Firewall, egress firewall and port forwarding rule commands.

Creates are async-create as in CloudStack: the rule is validated, conflict-checked (537) and
written in the request, so a bad rule is refused at once and nothing is recorded; the job
then reports it (the dataplane applies rules from the database, see docs/networking.md).
Deletes check in the request and remove in an idempotent job.
"""

from __future__ import annotations

from typing import Annotated, Any

from sqlalchemy import Select, select
from sqlalchemy.orm import aliased

from cumulo.api.cloudstack.registry import Kind, Param, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx, Listing, Submit, Success
from cumulo.db.models import Account, Domain
from cumulo.db.models_compute import VirtualMachine
from cumulo.db.models_network import Network, NetworkRule, PublicIpAddress
from cumulo.services.compute import vms
from cumulo.services.errors import ParamError
from cumulo.services.network import networks as network_svc
from cumulo.services.network import public_ips, rules

RULE_FIELDS = (
    "id", "protocol", "startport", "endport", "ipaddressid", "ipaddress", "networkid",
    "state", "cidrlist", "destcidrlist", "icmptype", "icmpcode", "traffictype", "tags",
    "fordisplay",
)  # fmt: skip
PF_FIELDS = (
    "id", "privateport", "privateendport", "protocol", "publicport", "publicendport",
    "virtualmachineid", "virtualmachinename", "virtualmachinedisplayname", "ipaddressid",
    "ipaddress", "vmguestip", "state", "cidrlist", "tags", "networkid", "fordisplay",
)  # fmt: skip
RuleIp = aliased(PublicIpAddress, name="rule_ip")
RuleVm = aliased(VirtualMachine, name="rule_vm")


def rules_select(purpose: str) -> Select[*tuple[Any, ...]]:
    return (
        select(
            NetworkRule,
            RuleIp.uuid.label("ipid"),
            RuleIp.address.label("ipaddress"),
            Network.uuid.label("networkid"),
            RuleVm.uuid.label("vmid"),
            RuleVm.name.label("vmname"),
            RuleVm.display_name.label("vmdisplayname"),
        )
        .join(Network, Network.id == NetworkRule.network_id)
        .outerjoin(RuleIp, RuleIp.id == NetworkRule.public_ip_id)
        .outerjoin(RuleVm, RuleVm.id == NetworkRule.vm_id)
        .join(Account, Account.id == NetworkRule.account_id)
        .join(Domain, Domain.id == NetworkRule.domain_id)
        .where(NetworkRule.purpose == purpose)
    )


def rule_response(row: Any) -> dict[str, Any]:
    rule: NetworkRule = row.NetworkRule
    out: dict[str, Any] = {
        "id": rule.uuid,
        "protocol": rule.protocol,
        "networkid": row.networkid,
        "state": rule.state,
        "cidrlist": ",".join(rule.source_cidrs or []),
        "traffictype": "Egress" if rule.purpose == "Egress" else "Ingress",
        "tags": [],
        "fordisplay": rule.display,
    }
    if rule.purpose == "Egress":
        out["destcidrlist"] = ",".join(rule.dest_cidrs or [])
    optional = (
        ("startport", rule.start_port),
        ("endport", rule.end_port),
        ("icmptype", rule.icmp_type),
        ("icmpcode", rule.icmp_code),
        ("ipaddressid", row.ipid),
        ("ipaddress", row.ipaddress),
    )
    out.update({k: v for k, v in optional if v is not None})
    return out


def forward_response(row: Any) -> dict[str, Any]:
    rule: NetworkRule = row.NetworkRule
    return {
        "id": rule.uuid,
        "privateport": str(rule.private_start_port),
        "privateendport": str(rule.private_end_port),
        "protocol": rule.protocol,
        "publicport": str(rule.start_port),
        "publicendport": str(rule.end_port),
        "virtualmachineid": row.vmid,
        "virtualmachinename": row.vmname,
        "virtualmachinedisplayname": row.vmdisplayname,
        "ipaddressid": row.ipid,
        "ipaddress": row.ipaddress,
        "vmguestip": rule.vm_ip,
        "state": rule.state,
        "cidrlist": ",".join(rule.source_cidrs or []),
        "tags": [],
        "networkid": row.networkid,
        "fordisplay": rule.display,
    }


def _render(ctx: Ctx, rule_id: int, purpose: str) -> dict[str, Any]:
    row = ctx.session.execute(rules_select(purpose).where(NetworkRule.id == rule_id)).one()
    ctx.event_resource = (row.NetworkRule.uuid, None)
    return forward_response(row) if purpose == "PortForwarding" else rule_response(row)


def _submit(rule: NetworkRule, created: bool) -> Submit:
    return Submit(
        params={"id": rule.uuid},
        instance_type="FirewallRule",
        instance_id=None if created else rule.uuid,
        created_id=rule.uuid if created else None,
    )


def _owned_rule(ctx: Ctx, uuid: str, purpose: str) -> NetworkRule:
    rule = rules.find(ctx.session, uuid, purpose)
    owner = ctx.session.get(Account, rule.account_id)
    assert owner is not None
    ctx.caller.check_account(owner)
    return rule


def _delete_body(ctx: Ctx, id: str) -> Success:
    """Idempotent: a rule already gone is done."""
    rule = ctx.session.scalar(select(NetworkRule).where(NetworkRule.uuid == id))
    if rule is not None:
        rules.delete_rule(ctx.session, rule)
    return Success()


def _list(ctx: Ctx, purpose: str, filters: dict[Any, Any]) -> Listing:
    stmt = rules_select(purpose).where(ctx.scope.where(NetworkRule.account_id, Domain.path))
    for column, value in filters.items():
        if value is not None:
            stmt = stmt.where(column == value)
    rows, total = ctx.page_records(stmt.order_by(NetworkRule.id))
    render = forward_response if purpose == "PortForwarding" else rule_response
    return Listing([render(r) for r in rows], total)


Protocol = Annotated[
    str,
    Param(
        "the protocol for the rule. Valid values are TCP/UDP/ICMP/ALL or valid protocol number",
        required=True,
    ),
]
StartPort = Annotated[int | None, Param("the starting port of firewall rule")]
EndPort = Annotated[int | None, Param("the ending port of firewall rule")]
CidrList = Annotated[
    list[str] | None,
    Param(
        "the CIDR list to forward traffic from. Multiple entries must be separated by a single "
        "comma character (,)."
    ),
]
IcmpType = Annotated[int | None, Param("type of the ICMP message being sent")]
IcmpCode = Annotated[int | None, Param("error code for this ICMP message")]
RuleId = Annotated[UUIDStr, Param("the ID of the rule", required=True, entity="FirewallRule")]


# --- ingress firewall -------------------------------------------------------------------


@command(
    "createFirewallRule",
    kind=Kind.ASYNC_CREATE,
    description="Creates a firewall rule for a given IP address",
    response="firewallrule",
    event="FIREWALL.OPEN",
    entity="FirewallRule",
    fields=RULE_FIELDS,
)
def create_firewall_rule(
    ctx: Ctx,
    ipaddressid: Annotated[
        UUIDStr,
        Param("the IP address id of the port forwarding rule", required=True, entity="IpAddress"),
    ],
    protocol: Protocol,
    startport: StartPort = None,
    endport: EndPort = None,
    cidrlist: CidrList = None,
    icmptype: IcmpType = None,
    icmpcode: IcmpCode = None,
    type: Annotated[str | None, Param("type of firewallrule: system/user")] = None,
    fordisplay: Annotated[
        bool, Param("an optional field, whether to the display the rule to the end user or not")
    ] = True,
) -> Submit:
    ip = public_ips.find_for(ctx.session, ctx.caller, ipaddressid)
    spec = rules.RuleSpec(
        protocol,
        rules.ports(startport, endport),
        icmptype,
        icmpcode,
        rules.cidrs(cidrlist),
    )
    rule = rules.create_firewall(ctx.session, ip, spec)
    rule.display = fordisplay
    return _submit(rule, created=True)


@create_firewall_rule.runs
def run_create_firewall_rule(ctx: Ctx, id: str) -> dict[str, Any]:
    return _render(ctx, rules.find(ctx.session, id, "Firewall").id, "Firewall")


@command(
    "deleteFirewallRule",
    kind=Kind.ASYNC,
    description="Deletes a firewall rule",
    event="FIREWALL.CLOSE",
    entity="FirewallRule",
)
def delete_firewall_rule(ctx: Ctx, id: RuleId) -> Submit:
    return _submit(_owned_rule(ctx, id, "Firewall"), created=False)


delete_firewall_rule.runs(_delete_body)


@command(
    "listFirewallRules",
    kind=Kind.LIST,
    description="Lists all firewall rules for an IP address.",
    response="firewallrule",
    scoped=True,
    fields=RULE_FIELDS,
)
def list_firewall_rules(
    ctx: Ctx,
    id: Annotated[
        UUIDStr | None, Param("Lists rule with the specified ID.", entity="FirewallRule")
    ] = None,
    ipaddressid: Annotated[
        UUIDStr | None, Param("the ID of IP address of the firewall services", entity="IpAddress")
    ] = None,
    networkid: Annotated[
        UUIDStr | None, Param("list firewall rules for certain network", entity="Network")
    ] = None,
) -> Listing:
    return _list(
        ctx,
        "Firewall",
        {NetworkRule.uuid: id, RuleIp.uuid: ipaddressid, Network.uuid: networkid},
    )


# --- egress firewall --------------------------------------------------------------------


@command(
    "createEgressFirewallRule",
    kind=Kind.ASYNC_CREATE,
    description="Creates a egress firewall rule for a given network",
    response="firewallrule",
    event="FIREWALL.EGRESS.OPEN",
    entity="FirewallRule",
    fields=RULE_FIELDS,
)
def create_egress_firewall_rule(
    ctx: Ctx,
    networkid: Annotated[
        UUIDStr,
        Param("the network id of the port forwarding rule", required=True, entity="Network"),
    ],
    protocol: Protocol,
    startport: StartPort = None,
    endport: EndPort = None,
    cidrlist: CidrList = None,
    destcidrlist: Annotated[
        list[str] | None,
        Param(
            "the cidr list to forward traffic to. Multiple entries must be separated by a single "
            "comma character (,)."
        ),
    ] = None,
    icmptype: IcmpType = None,
    icmpcode: IcmpCode = None,
    type: Annotated[str | None, Param("type of firewallrule: system/user")] = None,
    fordisplay: Annotated[
        bool, Param("an optional field, whether to the display the rule to the end user or not")
    ] = True,
) -> Submit:
    network = network_svc.find_for(ctx.session, ctx.caller, networkid)
    spec = rules.RuleSpec(
        protocol,
        rules.ports(startport, endport),
        icmptype,
        icmpcode,
        rules.cidrs(cidrlist, None),
        rules.cidrs(destcidrlist, None),
    )
    rule = rules.create_egress(ctx.session, network, spec)
    rule.display = fordisplay
    return _submit(rule, created=True)


@create_egress_firewall_rule.runs
def run_create_egress_firewall_rule(ctx: Ctx, id: str) -> dict[str, Any]:
    return _render(ctx, rules.find(ctx.session, id, "Egress").id, "Egress")


@command(
    "deleteEgressFirewallRule",
    kind=Kind.ASYNC,
    description="Deletes an egress firewall rule",
    event="FIREWALL.EGRESS.CLOSE",
    entity="FirewallRule",
)
def delete_egress_firewall_rule(ctx: Ctx, id: RuleId) -> Submit:
    return _submit(_owned_rule(ctx, id, "Egress"), created=False)


delete_egress_firewall_rule.runs(_delete_body)


@command(
    "listEgressFirewallRules",
    kind=Kind.LIST,
    description="Lists all egress firewall rules for network ID.",
    response="firewallrule",
    scoped=True,
    fields=RULE_FIELDS,
)
def list_egress_firewall_rules(
    ctx: Ctx,
    id: Annotated[
        UUIDStr | None, Param("Lists rule with the specified ID.", entity="FirewallRule")
    ] = None,
    networkid: Annotated[
        UUIDStr | None, Param("the network ID for the egress firewall services", entity="Network")
    ] = None,
) -> Listing:
    return _list(ctx, "Egress", {NetworkRule.uuid: id, Network.uuid: networkid})


# --- port forwarding --------------------------------------------------------------------


@command(
    "createPortForwardingRule",
    kind=Kind.ASYNC_CREATE,
    description="Creates a port forwarding rule",
    response="portforwardingrule",
    event="NET.RULEADD",
    entity="FirewallRule",
    fields=PF_FIELDS,
)
def create_port_forwarding_rule(
    ctx: Ctx,
    ipaddressid: Annotated[
        UUIDStr,
        Param("the IP address id of the port forwarding rule", required=True, entity="IpAddress"),
    ],
    privateport: Annotated[
        int, Param("the starting port of port forwarding rule's private port range", required=True)
    ],
    protocol: Annotated[
        str,
        Param(
            "the protocol for the port forwarding rule. Valid values are TCP or UDP.", required=True
        ),
    ],
    publicport: Annotated[
        int, Param("the starting port of port forwarding rule's public port range", required=True)
    ],
    virtualmachineid: Annotated[
        UUIDStr,
        Param(
            "the ID of the virtual machine for the port forwarding rule",
            required=True,
            entity="UserVm",
        ),
    ],
    privateendport: Annotated[
        int | None, Param("the ending port of port forwarding rule's private port range")
    ] = None,
    publicendport: Annotated[
        int | None, Param("the ending port of port forwarding rule's private port range")
    ] = None,
    cidrlist: CidrList = None,
    openfirewall: Annotated[
        bool,
        Param(
            "if true, firewall rule for source/end public port is automatically created; if false"
            " - firewall rule has to be created explicitly. If not specified 1) defaulted to "
            "false when PF rule is being created for VPC guest network 2) in all other cases "
            "defaulted to true"
        ),
    ] = True,
    vmguestip: Annotated[
        str | None, Param("VM guest nic secondary IP address for the port forwarding rule")
    ] = None,
    networkid: Annotated[
        UUIDStr | None,
        Param(
            "the network of the virtual machine the port forwarding rule will be created for. "
            "Required when public IP address is not associated with any guest network yet (VPC "
            "case).",
            entity="Network",
        ),
    ] = None,
    fordisplay: Annotated[
        bool, Param("an optional field, whether to the display the rule to the end user or not")
    ] = True,
) -> Submit:
    ip = public_ips.find_for(ctx.session, ctx.caller, ipaddressid)
    vm = vms.find_for(ctx.session, ctx.caller, virtualmachineid)
    if networkid is not None and ip.network_id is None:  # associate the address with it
        network = network_svc.find_for(ctx.session, ctx.caller, networkid)
        if network.account_id != ip.account_id or network.guest_type != "Isolated":
            raise ParamError(f"IP address {ip.address} can't be used on network {network.name}")
        ip.network_id = network.id
    spec = rules.ForwardSpec(
        protocol=protocol,
        public=rules.ports(publicport, publicendport, "public port"),
        private=rules.ports(privateport, privateendport, "private port"),
        vm=vm,
        guest_ip=vmguestip,
        source_cidrs=rules.cidrs(cidrlist),
        open_firewall=openfirewall,
    )
    rule = rules.create_port_forward(ctx.session, ip, spec)
    rule.display = fordisplay
    return _submit(rule, created=True)


@create_port_forwarding_rule.runs
def run_create_port_forwarding_rule(ctx: Ctx, id: str) -> dict[str, Any]:
    return _render(ctx, rules.find(ctx.session, id, "PortForwarding").id, "PortForwarding")


@command(
    "deletePortForwardingRule",
    kind=Kind.ASYNC,
    description="Deletes a port forwarding rule",
    event="NET.RULEDELETE",
    entity="FirewallRule",
)
def delete_port_forwarding_rule(ctx: Ctx, id: RuleId) -> Submit:
    return _submit(_owned_rule(ctx, id, "PortForwarding"), created=False)


delete_port_forwarding_rule.runs(_delete_body)


@command(
    "listPortForwardingRules",
    kind=Kind.LIST,
    description="Lists all port forwarding rules for an IP address.",
    response="portforwardingrule",
    scoped=True,
    fields=PF_FIELDS,
)
def list_port_forwarding_rules(
    ctx: Ctx,
    id: Annotated[
        UUIDStr | None, Param("Lists rule with the specified ID.", entity="FirewallRule")
    ] = None,
    ipaddressid: Annotated[
        UUIDStr | None,
        Param("the ID of IP address of the port forwarding services", entity="IpAddress"),
    ] = None,
    networkid: Annotated[
        UUIDStr | None, Param("list port forwarding rules for certain network", entity="Network")
    ] = None,
) -> Listing:
    return _list(
        ctx,
        "PortForwarding",
        {NetworkRule.uuid: id, RuleIp.uuid: ipaddressid, Network.uuid: networkid},
    )
