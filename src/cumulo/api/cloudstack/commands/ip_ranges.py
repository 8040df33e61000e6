"""VLAN/IP range commands: createVlanIpRange, deleteVlanIpRange, listVlanIpRanges (root admin)."""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any

from sqlalchemy import Select, select
from sqlalchemy.orm import aliased

from cumulo.api.cloudstack.registry import Kind, Param, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx, Listing, Success
from cumulo.db.models import Account, Domain
from cumulo.db.models_infra import PhysicalNetwork, Pod, VlanIpRange, Zone
from cumulo.services.access import ROOT_ADMIN, find_domain
from cumulo.services.errors import ParamError
from cumulo.services.identity.accounts import find_account_by_name
from cumulo.services.infra import addresses
from cumulo.services.infra import ip_ranges as svc
from cumulo.services.infra import physical_networks as net_service
from cumulo.services.infra import pods as pod_service
from cumulo.services.infra import zones as zone_service
from cumulo.services.infra.ip_ranges import Placement, RangeSpec

RANGE_FIELDS = (
    "id", "forvirtualnetwork", "zoneid", "vlan", "account", "domainid", "domain", "podid",
    "podname", "gateway", "netmask", "description", "cidr", "startip", "endip", "networkid",
    "physicalnetworkid", "ip6gateway", "ip6cidr", "startipv6", "endipv6", "forsystemvms",
)  # fmt: skip
RangePod = aliased(Pod, name="range_pod")
RangeNetwork = aliased(PhysicalNetwork, name="range_physical_network")
RangeAccount = aliased(Account, name="range_account")
RangeDomain = aliased(Domain, name="range_domain")


@cache
def ranges_select() -> Select[*tuple[Any, ...]]:
    return (
        select(
            VlanIpRange,
            Zone.uuid.label("zoneid"),
            RangePod.uuid.label("podid"),
            RangePod.name.label("podname"),
            RangeNetwork.uuid.label("physicalnetworkid"),
            RangeAccount.name.label("account"),
            RangeDomain.uuid.label("domainid"),
            RangeDomain.name.label("domain"),
        )
        .join(Zone, VlanIpRange.zone_id == Zone.id)
        .outerjoin(RangePod, VlanIpRange.pod_id == RangePod.id)
        .outerjoin(RangeNetwork, VlanIpRange.physical_network_id == RangeNetwork.id)
        .outerjoin(RangeAccount, VlanIpRange.account_id == RangeAccount.id)
        .outerjoin(RangeDomain, VlanIpRange.domain_id == RangeDomain.id)
        .where(VlanIpRange.removed.is_(None))
    )


def range_response(row: Any) -> dict[str, Any]:
    r: VlanIpRange = row[0]
    start6, _, end6 = (r.ip6_range or "").partition("-")
    return {
        "id": r.uuid,
        "forvirtualnetwork": r.for_virtual_network,
        "zoneid": row.zoneid,
        "vlan": r.vlan_tag,
        "account": row.account,
        "domainid": row.domainid,
        "domain": row.domain,
        "podid": row.podid,
        "podname": row.podname,
        "gateway": r.gateway,
        "netmask": r.netmask,
        "description": r.description,
        "cidr": str(addresses.subnet(r.gateway, r.netmask)),
        "startip": r.start_ip,
        "endip": r.end_ip,
        "physicalnetworkid": row.physicalnetworkid,
        "ip6gateway": r.ip6_gateway,
        "ip6cidr": r.ip6_cidr,
        "startipv6": start6 or None,
        "endipv6": end6 or None,
        "forsystemvms": False,
    }


def render(ctx: Ctx, row: VlanIpRange) -> dict[str, Any]:
    ctx.session.flush()
    return range_response(
        ctx.session.execute(ranges_select().where(VlanIpRange.id == row.id)).one()
    )


def _placement(
    ctx: Ctx,
    zoneid: str | None,
    podid: str | None,
    physicalnetworkid: str | None,
    for_virtual_network: bool,
) -> Placement:
    """The zone comes from zoneid, else the pod, else the physical network (CloudStack's way)."""
    pod = pod_service.find_pod(ctx.session, podid) if podid else None
    net = (
        net_service.find_physical_network(ctx.session, physicalnetworkid)
        if physicalnetworkid
        else None
    )
    if zoneid:
        zone = zone_service.find_zone(ctx.session, zoneid)
    elif pod is not None or net is not None:
        zone_id = pod.zone_id if pod is not None else net.zone_id  # type: ignore[union-attr]
        zone = ctx.session.get_one(Zone, zone_id)
    else:
        raise ParamError("Please specify a zoneid, podid or physicalnetworkid for the IP range")
    if net is None:
        traffic = "Public" if for_virtual_network and zone.network_type == "Advanced" else "Guest"
        net = svc.public_network(ctx.session, zone, traffic)
    return Placement(zone=zone, pod=pod, physical_network=net)


@command(
    "createVlanIpRange",
    description="Creates a VLAN IP range.",
    response="vlan",
    roles=ROOT_ADMIN,
    event="VLAN.IP.RANGE.CREATE",
    entity="Vlan",
    fields=RANGE_FIELDS,
    since="1.0",
)
def create_vlan_ip_range(
    ctx: Ctx,
    gateway: Annotated[str | None, Param("the gateway of the VLAN IP range")] = None,
    netmask: Annotated[str | None, Param("the netmask of the VLAN IP range")] = None,
    startip: Annotated[str | None, Param("the beginning IP address in the VLAN IP range")] = None,
    endip: Annotated[str | None, Param("the ending IP address in the VLAN IP range")] = None,
    zoneid: Annotated[
        UUIDStr | None, Param("the Zone ID of the VLAN IP range", entity="Zone")
    ] = None,
    podid: Annotated[
        UUIDStr | None,
        Param(
            "optional parameter. Have to be specified for Direct Untagged vlan only.", entity="Pod"
        ),
    ] = None,
    physicalnetworkid: Annotated[
        UUIDStr | None,
        Param("the physical network id", entity="PhysicalNetwork"),
    ] = None,
    networkid: Annotated[UUIDStr | None, Param("the network id", entity="Network")] = None,
    vlan: Annotated[
        str | None,
        Param(
            "the ID or VID of the VLAN. If not specified, will be defaulted to the vLAN of the "
            "network or if vlan of the network is null - to Untagged"
        ),
    ] = None,
    forvirtualnetwork: Annotated[
        bool | None, Param("true if VLAN is of Virtual type, false if Direct")
    ] = None,
    account: Annotated[
        str | None,
        Param(
            "account who will own the VLAN. If VLAN is Zone wide, this parameter should be omitted"
        ),
    ] = None,
    domainid: Annotated[
        UUIDStr | None, Param("domain ID of the account owning a VLAN", entity="Domain")
    ] = None,
    ip6gateway: Annotated[str | None, Param("the gateway of the IPv6 network.")] = None,
    ip6cidr: Annotated[str | None, Param("the CIDR of IPv6 network, must be at least /64")] = None,
    startipv6: Annotated[
        str | None, Param("the beginning IPv6 address in the IPv6 network")
    ] = None,
    endipv6: Annotated[str | None, Param("the ending IPv6 address in the IPv6 network")] = None,
) -> dict[str, Any]:
    if not (gateway and netmask and startip):
        raise ParamError("gateway, netmask and startip are required for an IPv4 range")
    if networkid is not None:
        raise ParamError(f"Unable to find network by id {networkid}")
    virtual = True if forvirtualnetwork is None else forvirtualnetwork
    where = _placement(ctx, zoneid, podid, physicalnetworkid, virtual)
    if domainid is not None:
        where.domain = find_domain(ctx.session, domainid)
    if account is not None:
        if where.domain is None:
            raise ParamError("account must be specified with domainid")
        where.account = find_account_by_name(ctx.session, account, where.domain)
    spec = RangeSpec(
        gateway=gateway,
        netmask=netmask,
        start_ip=startip,
        end_ip=endip,
        vlan=vlan,
        for_virtual_network=virtual,
        ip6_gateway=ip6gateway,
        ip6_cidr=ip6cidr,
        ip6_range=f"{startipv6}-{endipv6 or startipv6}" if startipv6 else None,
    )
    return render(ctx, svc.create_range(ctx.session, where, spec))


@command(
    "deleteVlanIpRange",
    description="Deletes a VLAN IP range.",
    roles=ROOT_ADMIN,
    event="VLAN.IP.RANGE.DELETE",
    entity="Vlan",
    since="1.0",
)
def delete_vlan_ip_range(
    ctx: Ctx,
    id: Annotated[UUIDStr, Param("the id of the VLAN IP range", required=True, entity="Vlan")],
) -> Success:
    row = svc.find_range(ctx.session, id)
    svc.delete_range(row)
    ctx.event_resource = (row.uuid, row.description)
    return Success()


@command(
    "listVlanIpRanges",
    kind=Kind.LIST,
    description="Lists all VLAN IP ranges.",
    response="vlan",
    roles=ROOT_ADMIN,
    fields=RANGE_FIELDS,
    since="1.0",
)
def list_vlan_ip_ranges(
    ctx: Ctx,
    id: Annotated[UUIDStr | None, Param("the ID of the VLAN IP range", entity="Vlan")] = None,
    zoneid: Annotated[
        UUIDStr | None, Param("the Zone ID of the VLAN IP range", entity="Zone")
    ] = None,
    podid: Annotated[UUIDStr | None, Param("the Pod ID of the VLAN IP range", entity="Pod")] = None,
    physicalnetworkid: Annotated[
        UUIDStr | None, Param("physical network id of the VLAN IP range", entity="PhysicalNetwork")
    ] = None,
    vlan: Annotated[
        str | None, Param('the ID or VID of the VLAN. Default is an "untagged" VLAN.')
    ] = None,
    forvirtualnetwork: Annotated[
        bool | None, Param("true if VLAN is of Virtual type, false if Direct")
    ] = None,
    domainid: Annotated[
        UUIDStr | None,
        Param("the domain ID with which the VLAN IP range is associated.", entity="Domain"),
    ] = None,
    account: Annotated[
        str | None,
        Param(
            "the account with which the VLAN IP range is associated. Must be used with the "
            "domainId parameter."
        ),
    ] = None,
) -> Listing:
    stmt = ranges_select()
    filters = (
        (id, VlanIpRange.uuid),
        (zoneid, Zone.uuid),
        (podid, RangePod.uuid),
        (physicalnetworkid, RangeNetwork.uuid),
        (forvirtualnetwork, VlanIpRange.for_virtual_network),
        (domainid, RangeDomain.uuid),
        (account, RangeAccount.name),
    )
    for value, column in filters:
        if value is not None:
            stmt = stmt.where(column == value)
    if vlan is not None:
        stmt = stmt.where(VlanIpRange.vlan_tag == svc.vlan_uri(vlan))
    if ctx.paging.keyword:
        stmt = stmt.where(VlanIpRange.description.ilike(f"%{ctx.paging.keyword}%"))
    rows, total = ctx.page_records(stmt.order_by(VlanIpRange.id))
    return Listing([range_response(r) for r in rows], total)
