"""Public IP commands: associateIpAddress, disassociateIpAddress, listPublicIpAddresses,
enableStaticNat, disableStaticNat.

Addresses come from the zone's public VLAN IP ranges; allocation is checked and written in
the request (limits, a free address), so a refused request writes no job and takes nothing.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any

from sqlalchemy import Select, exists, select

from cumulo.api.cloudstack.registry import Kind, Param, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx, Listing, Submit, Success
from cumulo.common.time import to_wire
from cumulo.db.models import Account, Domain
from cumulo.db.models_compute import VirtualMachine
from cumulo.db.models_infra import VlanIpRange, Zone
from cumulo.db.models_network import Network, NetworkRule, PublicIpAddress
from cumulo.services.catalog.owners import resolve_owner
from cumulo.services.compute import vms
from cumulo.services.errors import ParamError
from cumulo.services.network import public_ips as svc

IP_FIELDS = (
    "id", "ipaddress", "allocated", "zoneid", "zonename", "issourcenat", "account",
    "domainid", "domain", "domainpath", "forvirtualnetwork", "vlanid", "vlanname",
    "isstaticnat", "issystem", "virtualmachineid", "virtualmachinename",
    "virtualmachinedisplayname", "vmipaddress", "associatednetworkid",
    "associatednetworkname", "physicalnetworkid", "state", "isportable", "fordisplay", "tags",
    "hasrules",
)  # fmt: skip
IpId = Annotated[
    UUIDStr, Param("the id of the public IP address", required=True, entity="IpAddress")
]


@cache
def ips_select() -> Select[*tuple[Any, ...]]:
    has_rules = exists().where(NetworkRule.public_ip_id == PublicIpAddress.id)
    return (
        select(
            PublicIpAddress,
            Zone.uuid.label("zoneid"),
            Zone.name.label("zonename"),
            VlanIpRange.uuid.label("vlanid"),
            VlanIpRange.vlan_tag.label("vlanname"),
            Network.uuid.label("networkid"),
            Network.name.label("networkname"),
            VirtualMachine.uuid.label("vmid"),
            VirtualMachine.name.label("vmname"),
            VirtualMachine.display_name.label("vmdisplayname"),
            Account.name.label("account"),
            Domain.uuid.label("domainid"),
            Domain.name.label("domain"),
            Domain.path.label("domainpath"),
            has_rules.label("hasrules"),
        )
        .join(Zone, Zone.id == PublicIpAddress.zone_id)
        .join(VlanIpRange, VlanIpRange.id == PublicIpAddress.vlan_range_id)
        .outerjoin(Network, Network.id == PublicIpAddress.network_id)
        .outerjoin(VirtualMachine, VirtualMachine.id == PublicIpAddress.static_nat_vm_id)
        .join(Account, Account.id == PublicIpAddress.account_id)
        .join(Domain, Domain.id == PublicIpAddress.domain_id)
    )


def ip_response(row: Any) -> dict[str, Any]:
    ip: PublicIpAddress = row.PublicIpAddress
    out: dict[str, Any] = {
        "id": ip.uuid,
        "ipaddress": ip.address,
        "allocated": to_wire(ip.allocated),
        "zoneid": row.zoneid,
        "zonename": row.zonename,
        "issourcenat": ip.is_source_nat,
        "account": row.account,
        "domainid": row.domainid,
        "domain": row.domain,
        "domainpath": row.domainpath,
        "forvirtualnetwork": True,
        "vlanid": row.vlanid,
        "vlanname": row.vlanname,
        "isstaticnat": ip.static_nat_vm_id is not None,
        "issystem": False,
        "state": ip.state,
        "isportable": False,
        "fordisplay": ip.for_display,
        "tags": [],
        "hasrules": bool(row.hasrules),
    }
    if row.networkid is not None:
        out["associatednetworkid"] = row.networkid
        out["associatednetworkname"] = row.networkname
    if row.vmid is not None:
        out["virtualmachineid"] = row.vmid
        out["virtualmachinename"] = row.vmname
        out["virtualmachinedisplayname"] = row.vmdisplayname
        out["vmipaddress"] = ip.static_nat_ip
    return out


def render(ctx: Ctx, ip_id: int) -> dict[str, Any]:
    row = ctx.session.execute(ips_select().where(PublicIpAddress.id == ip_id)).one()
    ctx.event_resource = (row.PublicIpAddress.uuid, row.PublicIpAddress.address)
    return ip_response(row)


@command(
    "associateIpAddress",
    kind=Kind.ASYNC_CREATE,
    description="Acquires and associates a public IP to an account.",
    response="ipaddress",
    event="NET.IPASSIGN",
    entity="IpAddress",
    fields=IP_FIELDS,
)
def associate_ip_address(
    ctx: Ctx,
    zoneid: Annotated[
        UUIDStr | None,
        Param(
            "the ID of the availability zone you want to acquire an public IP address from",
            entity="Zone",
        ),
    ] = None,
    networkid: Annotated[
        UUIDStr | None,
        Param("The network this IP address should be associated to.", entity="Network"),
    ] = None,
    account: Annotated[str | None, Param("the account to associate with this IP address")] = None,
    domainid: Annotated[
        UUIDStr | None,
        Param("the ID of the domain to associate with this IP address", entity="Domain"),
    ] = None,
    projectid: Annotated[
        UUIDStr | None, Param("Deploy VM for the project", entity="Project")
    ] = None,
    vpcid: Annotated[
        UUIDStr | None, Param("the VPC you want the IP address to be associated with", entity="Vpc")
    ] = None,
    isportable: Annotated[
        bool,
        Param(
            "should be set to true if public IP is required to be transferable across zones, if "
            "not specified defaults to false"
        ),
    ] = False,
    fordisplay: Annotated[
        bool, Param("an optional field, whether to the display the IP to the end user or not")
    ] = True,
) -> Submit:
    if vpcid is not None:
        raise ParamError(f"Unable to find VPC by id {vpcid}")
    if isportable:
        raise ParamError("Portable IP addresses are not supported")
    owner = resolve_owner(ctx.session, ctx.caller, account, domainid, projectid)
    ip = svc.associate(
        ctx.session,
        ctx.caller,
        owner,
        zone_uuid=zoneid,
        network_uuid=networkid,
        config=ctx.runtime.config,
    )
    ip.for_display = fordisplay
    return Submit(
        params={"id": ip.uuid},
        instance_type="IpAddress",
        created_id=ip.uuid,
        resource_name=ip.address,
    )


@associate_ip_address.runs
def run_associate_ip_address(ctx: Ctx, id: str) -> dict[str, Any]:
    return render(ctx, svc.find(ctx.session, id).id)


@command(
    "disassociateIpAddress",
    kind=Kind.ASYNC,
    description="Disassociates an IP address from the account.",
    event="NET.IPRELEASE",
    entity="IpAddress",
)
def disassociate_ip_address(ctx: Ctx, id: IpId) -> Submit:
    ip = svc.find_for(ctx.session, ctx.caller, id)
    svc.check_releasable(ip)
    return Submit(
        params={"id": ip.uuid},
        instance_type="IpAddress",
        instance_id=ip.uuid,
        resource_name=ip.address,
    )


@disassociate_ip_address.runs
def run_disassociate_ip_address(ctx: Ctx, id: str) -> Success:
    """Idempotent: an address already released is done."""
    ip = ctx.session.scalar(select(PublicIpAddress).where(PublicIpAddress.uuid == id))
    if ip is not None:
        svc.disassociate(ctx.session, ip)
    return Success()


@command(
    "listPublicIpAddresses",
    kind=Kind.LIST,
    description="Lists all public IP addresses",
    response="publicipaddress",
    scoped=True,
    fields=IP_FIELDS,
)
def list_public_ip_addresses(
    ctx: Ctx,
    id: Annotated[UUIDStr | None, Param("lists IP address by ID", entity="IpAddress")] = None,
    ipaddress: Annotated[str | None, Param("lists the specified IP address")] = None,
    zoneid: Annotated[
        UUIDStr | None, Param("lists all public IP addresses by zone ID", entity="Zone")
    ] = None,
    associatednetworkid: Annotated[
        UUIDStr | None,
        Param(
            "lists all public IP addresses associated to the network specified", entity="Network"
        ),
    ] = None,
    issourcenat: Annotated[bool | None, Param("list only source NAT IP addresses")] = None,
    isstaticnat: Annotated[bool | None, Param("list only static NAT IP addresses")] = None,
    allocatedonly: Annotated[
        bool, Param("limits search results to allocated public IP addresses")
    ] = True,
    forvirtualnetwork: Annotated[
        bool | None, Param("the virtual network for the IP address")
    ] = None,
    vlanid: Annotated[
        UUIDStr | None, Param("lists all public IP addresses by VLAN ID", entity="Vlan")
    ] = None,
    state: Annotated[str | None, Param("lists all public IP addresses by state")] = None,
    forloadbalancing: Annotated[bool | None, Param("list only IPs used for load balancing")] = None,
    projectid: Annotated[UUIDStr | None, Param("list objects by project", entity="Project")] = None,
    vpcid: Annotated[UUIDStr | None, Param("List IPs belonging to the VPC", entity="Vpc")] = None,
) -> Listing:
    if forvirtualnetwork is False or projectid or vpcid:
        return Listing([], 0)  # only virtual-network addresses; no projects or VPCs yet
    stmt = ips_select().where(ctx.scope.where(PublicIpAddress.account_id, Domain.path))
    for value, column in (
        (id, PublicIpAddress.uuid),
        (ipaddress, PublicIpAddress.address),
        (zoneid, Zone.uuid),
        (associatednetworkid, Network.uuid),
        (issourcenat, PublicIpAddress.is_source_nat),
        (vlanid, VlanIpRange.uuid),
        (state, PublicIpAddress.state),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if isstaticnat is not None:
        nat = PublicIpAddress.static_nat_vm_id
        stmt = stmt.where(nat.is_not(None) if isstaticnat else nat.is_(None))
    if forloadbalancing:
        stmt = stmt.where(
            PublicIpAddress.static_nat_vm_id.is_(None), PublicIpAddress.is_source_nat.is_(False)
        )
    if ctx.paging.keyword:
        stmt = stmt.where(PublicIpAddress.address.like(f"%{ctx.paging.keyword}%"))
    rows, total = ctx.page_records(stmt.order_by(PublicIpAddress.id))
    return Listing([ip_response(r) for r in rows], total)


@command(
    "enableStaticNat",
    description="Enables static NAT for given IP address",
    event="STATICNAT.ENABLE",
    entity="IpAddress",
)
def enable_static_nat(
    ctx: Ctx,
    ipaddressid: Annotated[
        UUIDStr,
        Param(
            "the public IP address ID for which static NAT feature is being enabled",
            required=True,
            entity="IpAddress",
        ),
    ],
    virtualmachineid: Annotated[
        UUIDStr,
        Param(
            "the ID of the virtual machine for enabling static NAT feature",
            required=True,
            entity="UserVm",
        ),
    ],
    networkid: Annotated[
        UUIDStr | None,
        Param("The network of the VM the static NAT will be enabled for.", entity="Network"),
    ] = None,
    vmguestip: Annotated[
        str | None, Param("VM guest NIC secondary IP address for the port forwarding rule")
    ] = None,
) -> Success:
    ip = svc.find_for(ctx.session, ctx.caller, ipaddressid)
    vm = vms.find_for(ctx.session, ctx.caller, virtualmachineid)
    if networkid is not None and ip.network_id is None:
        network = ctx.session.scalar(select(Network).where(Network.uuid == networkid))
        if network is None or network.account_id != ip.account_id:
            raise ParamError(f"Unable to find network by id {networkid}")
        ip.network_id = network.id
    svc.enable_static_nat(ctx.session, ip, vm, vmguestip)
    ctx.event_resource = (ip.uuid, ip.address)
    return Success()


@command(
    "disableStaticNat",
    kind=Kind.ASYNC,
    description="Disables static rule for given IP address",
    event="STATICNAT.DISABLE",
    entity="IpAddress",
)
def disable_static_nat(
    ctx: Ctx,
    ipaddressid: Annotated[
        UUIDStr,
        Param(
            "the public IP address ID for which static NAT feature is being disabled",
            required=True,
            entity="IpAddress",
        ),
    ],
) -> Submit:
    ip = svc.find_for(ctx.session, ctx.caller, ipaddressid)
    if ip.static_nat_vm_id is None:
        raise ParamError(f"Static NAT is not enabled on IP address {ip.address}")
    return Submit(
        params={"id": ip.uuid},
        instance_type="IpAddress",
        instance_id=ip.uuid,
        resource_name=ip.address,
    )


@disable_static_nat.runs
def run_disable_static_nat(ctx: Ctx, id: str) -> Success:
    ip = ctx.session.scalar(select(PublicIpAddress).where(PublicIpAddress.uuid == id))
    if ip is not None and ip.static_nat_vm_id is not None:
        svc.disable_static_nat(ip)
    return Success()


@command(
    "listIpForwardingRules",
    kind=Kind.LIST,
    description="List the IP forwarding rules",
    response="ipforwardingrule",
    scoped=True,
    fields=(
        "id",
        "protocol",
        "virtualmachineid",
        "virtualmachinename",
        "virtualmachinedisplayname",
        "ipaddressid",
        "ipaddress",
        "startport",
        "endport",
        "state",
        "vmguestip",
    ),
)
def list_ip_forwarding_rules(
    ctx: Ctx,
    id: Annotated[
        UUIDStr | None, Param("Lists rule with the specified ID.", entity="FirewallRule")
    ] = None,
    ipaddressid: Annotated[
        UUIDStr | None,
        Param("list the rule belonging to this public IP address", entity="IpAddress"),
    ] = None,
    virtualmachineid: Annotated[
        UUIDStr | None, Param("Lists all rules applied to the specified VM.", entity="UserVm")
    ] = None,
) -> Listing:
    """Static NATs shown as CloudStack shows them: one rule per address, every port."""
    stmt = ips_select().where(
        ctx.scope.where(PublicIpAddress.account_id, Domain.path),
        PublicIpAddress.static_nat_vm_id.is_not(None),
    )
    for value, column in (
        (id, PublicIpAddress.uuid),
        (ipaddressid, PublicIpAddress.uuid),
        (virtualmachineid, VirtualMachine.uuid),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    rows, total = ctx.page_records(stmt.order_by(PublicIpAddress.id))
    items = [
        {
            "id": r.PublicIpAddress.uuid,
            "protocol": "all",
            "virtualmachineid": r.vmid,
            "virtualmachinename": r.vmname,
            "virtualmachinedisplayname": r.vmdisplayname,
            "ipaddressid": r.PublicIpAddress.uuid,
            "ipaddress": r.PublicIpAddress.address,
            "startport": 1,
            "endport": 65535,
            "state": "Active",
            "vmguestip": r.PublicIpAddress.static_nat_ip,
        }
        for r in rows
    ]
    return Listing(items, total)
