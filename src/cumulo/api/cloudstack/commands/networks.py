"""Guest network commands: createNetwork (sync, as in CloudStack), listNetworks, updateNetwork,
restartNetwork and deleteNetwork (async).

Refusals are immediate: a restart or delete that cannot happen (unknown network, someone
else's, VMs still on it) fails in the request and writes no job. Job bodies are idempotent.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any

from sqlalchemy import Select, and_, literal, or_, select

from cumulo.api.cloudstack.commands.network_offerings import services_response
from cumulo.api.cloudstack.registry import Kind, Param, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx, Listing, Submit, Success
from cumulo.common.time import to_wire
from cumulo.db.models import Account, Domain
from cumulo.db.models_infra import PhysicalNetwork, Zone
from cumulo.db.models_network import Network, NetworkOffering
from cumulo.services.catalog.owners import resolve_owner
from cumulo.services.errors import ParamError
from cumulo.services.network import networks as svc

NETWORK_FIELDS = (
    "id", "name", "displaytext", "broadcastdomaintype", "traffictype", "gateway", "netmask",
    "cidr", "zoneid", "zonename", "networkofferingid", "networkofferingname",
    "networkofferingdisplaytext", "networkofferingconservemode", "networkofferingavailability",
    "issystem", "state", "related", "broadcasturi", "dns1", "dns2", "type", "vlan", "acltype",
    "account", "domainid", "domain", "domainpath", "service", "networkdomain",
    "physicalnetworkid", "restartrequired", "specifyipranges", "canusefordeploy",
    "ispersistent", "tags", "displaynetwork", "redundantrouter", "created",
)  # fmt: skip
NetworkId = Annotated[UUIDStr, Param("the ID of the network", required=True, entity="Network")]


@cache
def networks_select() -> Select[*tuple[Any, ...]]:
    return (
        select(
            Network,
            NetworkOffering,
            Zone.uuid.label("zoneid"),
            Zone.name.label("zonename"),
            Zone.dns1,
            Zone.dns2,
            PhysicalNetwork.uuid.label("physicalnetworkid"),
            Account.name.label("account"),
            Domain.uuid.label("domainid"),
            Domain.name.label("domain"),
            Domain.path.label("domainpath"),
        )
        .join(NetworkOffering, NetworkOffering.id == Network.offering_id)
        .join(Zone, Zone.id == Network.zone_id)
        .outerjoin(PhysicalNetwork, PhysicalNetwork.id == Network.physical_network_id)
        .join(Account, Account.id == Network.account_id)
        .join(Domain, Domain.id == Network.domain_id)
    )


def network_response(row: Any) -> dict[str, Any]:
    net: Network = row.Network
    offering: NetworkOffering = row.NetworkOffering
    out: dict[str, Any] = {
        "id": net.uuid,
        "name": net.name,
        "displaytext": net.display_text,
        "broadcastdomaintype": "Vxlan",
        "traffictype": net.traffic_type,
        "gateway": net.gateway,
        "netmask": net.netmask,
        "cidr": net.cidr,
        "zoneid": row.zoneid,
        "zonename": row.zonename,
        "networkofferingid": offering.uuid,
        "networkofferingname": offering.name,
        "networkofferingdisplaytext": offering.display_text,
        "networkofferingconservemode": offering.conserve_mode,
        "networkofferingavailability": offering.availability,
        "issystem": False,
        "state": net.state,
        "related": net.uuid,
        "type": net.guest_type,
        "acltype": net.acl_type,
        "account": row.account,
        "domainid": row.domainid,
        "domain": row.domain,
        "domainpath": row.domainpath,
        "service": services_response(offering.services or {}, offering.capabilities or {}),
        "networkdomain": net.network_domain,
        "physicalnetworkid": row.physicalnetworkid,
        "restartrequired": net.restart_required,
        "specifyipranges": offering.specify_ip_ranges,
        "canusefordeploy": True,
        "ispersistent": False,
        "tags": [],
        "displaynetwork": net.display,
        "redundantrouter": False,
        "created": to_wire(net.created),
    }
    if net.segment_id is not None:
        out["broadcasturi"] = f"vxlan://{net.segment_id}"
        out["vlan"] = str(net.segment_id)
    for key in ("dns1", "dns2"):
        if getattr(row, key):
            out[key] = getattr(row, key)
    return out


def render(ctx: Ctx, network_id: int) -> dict[str, Any]:
    row = ctx.session.execute(networks_select().where(Network.id == network_id)).one()
    ctx.event_resource = (row.Network.uuid, row.Network.name)
    return network_response(row)


# --- create -----------------------------------------------------------------------------


@command(
    "createNetwork",
    description="Creates a network",
    response="network",
    event="NETWORK.CREATE",
    entity="Network",
    fields=NETWORK_FIELDS,
)
def create_network(
    ctx: Ctx,
    networkofferingid: Annotated[
        UUIDStr,
        Param("the network offering ID", required=True, entity="NetworkOffering"),
    ],
    zoneid: Annotated[UUIDStr, Param("the zone ID for the network", required=True, entity="Zone")],
    name: Annotated[str | None, Param("the name of the network")] = None,
    displaytext: Annotated[str | None, Param("the display text of the network")] = None,
    physicalnetworkid: Annotated[
        UUIDStr | None,
        Param("the physical network ID the network belongs to", entity="PhysicalNetwork"),
    ] = None,
    gateway: Annotated[
        str | None,
        Param(
            "the gateway of the network. Required for shared networks and isolated networks when "
            "it belongs to VPC"
        ),
    ] = None,
    netmask: Annotated[
        str | None,
        Param(
            "the netmask of the network. Required for shared networks and isolated networks when "
            "it belongs to VPC"
        ),
    ] = None,
    startip: Annotated[
        str | None, Param("the beginning IP address in the network IP range")
    ] = None,
    endip: Annotated[
        str | None,
        Param(
            "the ending IP address in the network IP range. If not specified, will be defaulted "
            "to startIP"
        ),
    ] = None,
    vlan: Annotated[str | None, Param("the ID or VID of the network")] = None,
    networkdomain: Annotated[str | None, Param("network domain")] = None,
    acltype: Annotated[
        str | None,
        Param(
            "Access control type; supported values are account and domain. In 3.0 all shared "
            "networks should have aclType=Domain, and all isolated networks - Account."
        ),
    ] = None,
    account: Annotated[
        str | None,
        Param("account that will own the network. Account should be under the selected domain"),
    ] = None,
    domainid: Annotated[
        UUIDStr | None, Param("domain ID of the account owning a network", entity="Domain")
    ] = None,
    projectid: Annotated[
        UUIDStr | None, Param("an optional project for the network", entity="Project")
    ] = None,
    vpcid: Annotated[UUIDStr | None, Param("the VPC network belongs to", entity="Vpc")] = None,
    displaynetwork: Annotated[
        bool, Param("an optional field, whether to the display the network to the end user or not.")
    ] = True,
) -> dict[str, Any]:
    if vpcid is not None:
        raise ParamError(f"Unable to find VPC by id {vpcid}")
    owner = resolve_owner(ctx.session, ctx.caller, account, domainid, projectid)
    spec = svc.NetworkSpec(
        name=name or displaytext or "",
        display_text=displaytext,
        offering_uuid=networkofferingid,
        zone_uuid=zoneid,
        gateway=gateway,
        netmask=netmask,
        start_ip=startip,
        end_ip=endip,
        vlan=vlan,
        network_domain=networkdomain,
        acl_type=acltype,
        physical_network_uuid=physicalnetworkid,
        display=displaynetwork,
    )
    network = svc.create(ctx.session, ctx.caller, owner, spec, config=ctx.runtime.config)
    return render(ctx, network.id)


# --- list -------------------------------------------------------------------------------


def _visible(ctx: Ctx) -> Any:
    """The caller's scope, plus shared (Domain) networks over the caller's own domain."""
    shared = and_(
        Network.acl_type == "Domain",
        literal(ctx.caller.domain_path).startswith(Domain.path),
    )
    return or_(ctx.scope.where(Network.account_id, Domain.path), shared)


def _offerings_with(ctx: Ctx, services: list[str]) -> list[int]:
    wanted = {s.lower() for s in services}
    return [
        o.id
        for o in ctx.session.scalars(select(NetworkOffering))
        if wanted <= {k.lower() for k in o.services or {}}
    ]


@command(
    "listNetworks",
    kind=Kind.LIST,
    description="Lists all available networks.",
    response="network",
    scoped=True,
    fields=NETWORK_FIELDS,
)
def list_networks(
    ctx: Ctx,
    id: Annotated[UUIDStr | None, Param("list networks by ID", entity="Network")] = None,
    name: Annotated[str | None, Param("list networks by name")] = None,
    zoneid: Annotated[UUIDStr | None, Param("the zone ID of the network", entity="Zone")] = None,
    type: Annotated[
        str | None,
        Param("the type of the network. Supported values are: isolated, l2, shared and all"),
    ] = None,
    traffictype: Annotated[str | None, Param("type of the traffic")] = None,
    issystem: Annotated[bool | None, Param("true if network is system, false otherwise")] = None,
    physicalnetworkid: Annotated[
        UUIDStr | None, Param("list networks by physical network id", entity="PhysicalNetwork")
    ] = None,
    networkofferingid: Annotated[
        UUIDStr | None, Param("list networks by network offering ID", entity="NetworkOffering")
    ] = None,
    supportedservices: Annotated[
        list[str] | None, Param("list networks supporting certain services")
    ] = None,
    restartrequired: Annotated[bool | None, Param("list networks by restartRequired")] = None,
    canusefordeploy: Annotated[
        bool | None, Param("list networks available for VM deployment")
    ] = None,
    forvpc: Annotated[bool | None, Param("the network belongs to VPC")] = None,
    vpcid: Annotated[UUIDStr | None, Param("List networks by VPC", entity="Vpc")] = None,
    displaynetwork: Annotated[
        bool | None,
        Param("list resources by display flag; only ROOT admin is eligible to pass this parameter"),
    ] = None,
    projectid: Annotated[UUIDStr | None, Param("list objects by project", entity="Project")] = None,
    state: Annotated[str | None, Param("list networks by state")] = None,
) -> Listing:
    if issystem or canusefordeploy is False or forvpc or vpcid or projectid:
        return Listing([], 0)  # no system, VPC or project networks exist; all can deploy
    stmt = networks_select().where(Network.removed.is_(None), _visible(ctx))
    for value, column in (
        (id, Network.uuid),
        (name, Network.name),
        (zoneid, Zone.uuid),
        (physicalnetworkid, PhysicalNetwork.uuid),
        (networkofferingid, NetworkOffering.uuid),
        (restartrequired, Network.restart_required),
        (displaynetwork, Network.display),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if type is not None and type.lower() != "all":
        stmt = stmt.where(Network.guest_type.ilike(type))
    if traffictype is not None:
        stmt = stmt.where(Network.traffic_type.ilike(traffictype))
    if state is not None:
        stmt = stmt.where(Network.state.ilike(state))
    if supportedservices:
        stmt = stmt.where(Network.offering_id.in_(_offerings_with(ctx, supportedservices)))
    if ctx.paging.keyword:
        stmt = stmt.where(Network.name.ilike(f"%{ctx.paging.keyword}%"))
    rows, total = ctx.page_records(stmt.order_by(Network.id))
    return Listing([network_response(r) for r in rows], total)


# --- update, restart, delete ------------------------------------------------------------


@command(
    "updateNetwork",
    kind=Kind.ASYNC,
    description="Updates a network",
    response="network",
    event="NETWORK.UPDATE",
    entity="Network",
    fields=NETWORK_FIELDS,
)
def update_network(
    ctx: Ctx,
    id: NetworkId,
    name: Annotated[str | None, Param("the new name for the network")] = None,
    displaytext: Annotated[str | None, Param("the new display text for the network")] = None,
    networkdomain: Annotated[str | None, Param("network domain")] = None,
    networkofferingid: Annotated[
        UUIDStr | None, Param("network offering ID", entity="NetworkOffering")
    ] = None,
    displaynetwork: Annotated[
        bool | None,
        Param("an optional field, whether to the display the network to the end user or not."),
    ] = None,
) -> Submit:
    """The change is checked and written in the request; the job reports the network."""
    network = svc.find_for(ctx.session, ctx.caller, id)
    svc.update(
        ctx.session,
        network,
        name=name,
        display_text=displaytext,
        network_domain=networkdomain,
        display=displaynetwork,
        offering_uuid=networkofferingid,
    )
    return Submit(
        params={"id": network.uuid},
        instance_type="Network",
        instance_id=network.uuid,
        resource_name=network.name,
    )


@update_network.runs
def run_update_network(ctx: Ctx, id: str) -> dict[str, Any]:
    return render(ctx, svc.find(ctx.session, id).id)


@command(
    "restartNetwork",
    kind=Kind.ASYNC,
    description="Restarts the network; includes 1) restarting network elements - virtual "
    "routers, DHCP servers 2) reapplying all public IPs 3) reapplying "
    "loadBalancing/portForwarding rules",
    response="network",
    event="NETWORK.RESTART",
    entity="Network",
    fields=NETWORK_FIELDS,
)
def restart_network(
    ctx: Ctx,
    id: NetworkId,
    cleanup: Annotated[bool, Param("If cleanup old network elements")] = False,
    makeredundant: Annotated[
        bool, Param("Turn the network into a network with redundant routers.")
    ] = False,
) -> Submit:
    network = svc.find_for(ctx.session, ctx.caller, id)
    if makeredundant:
        raise ParamError("Redundant routers are not supported")
    return Submit(
        params={"id": network.uuid, "cleanup": cleanup, "generation": network.router_generation},
        instance_type="Network",
        instance_id=network.uuid,
        resource_name=network.name,
    )


@restart_network.runs
def run_restart_network(ctx: Ctx, id: str, cleanup: bool, generation: int) -> dict[str, Any]:
    """Idempotent: a re-run finds the generation already moved past the one it saw."""
    network = svc.find(ctx.session, id)
    if network.router_generation == generation:
        svc.restart(ctx.session, network, cleanup=cleanup)
    return render(ctx, network.id)


@command(
    "deleteNetwork",
    kind=Kind.ASYNC,
    description="Deletes a network",
    event="NETWORK.DELETE",
    entity="Network",
)
def delete_network(
    ctx: Ctx,
    id: NetworkId,
    forced: Annotated[
        str | None,
        Param(
            "Force delete a network. Network will be marked as 'Destroy' even when commands to "
            "shutdown and cleanup to the backend fails."
        ),
    ] = None,
) -> Submit:
    """``forced`` is read as Java's Boolean.valueOf reads it (libcloud sends "None")."""
    del forced  # nothing on the simulator can fail to shut down
    network = svc.find_for(ctx.session, ctx.caller, id)
    svc.check_deletable(ctx.session, network)
    return Submit(
        params={"id": network.uuid},
        instance_type="Network",
        instance_id=network.uuid,
        resource_name=network.name,
    )


@delete_network.runs
def run_delete_network(ctx: Ctx, id: str) -> Success:
    network = ctx.session.scalar(
        select(Network).where(Network.uuid == id, Network.removed.is_(None))
    )
    if network is not None:
        svc.check_deletable(ctx.session, network)
        svc.destroy(ctx.session, network)
    return Success()
