"""Physical network, traffic type and network service provider commands (root admin).

CloudStack makes these asynchronous: creates are async-create (the row exists, Disabled,
when the reply carries its id; the job only reports it), updates and deletes are checked on
the request so a refusal is immediate, and the job applies them idempotently.
"""

from __future__ import annotations

from typing import Annotated, Any

from sqlalchemy import select

from cumulo.api.cloudstack.registry import Kind, Param, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx, Listing, Submit, Success
from cumulo.db.models import Domain
from cumulo.db.models_infra import NetworkServiceProvider, PhysicalNetwork, TrafficType, Zone
from cumulo.services.access import ROOT_ADMIN, find_domain
from cumulo.services.errors import ParamError
from cumulo.services.infra import physical_networks as svc
from cumulo.services.infra import zones as zone_service

NETWORK_FIELDS = (
    "id", "name", "zoneid", "zonename", "state", "vlan", "domainid", "tags",
    "isolationmethods", "broadcastdomainrange", "networkspeed",
)  # fmt: skip
TRAFFIC_FIELDS = (
    "id", "traffictype", "physicalnetworkid", "kvmnetworklabel", "simulatorlabel", "vlan",
    "isolationmethods",
)  # fmt: skip
PROVIDER_FIELDS = (
    "id", "name", "physicalnetworkid", "destinationphysicalnetworkid", "state", "servicelist",
    "canenableindividualservice",
)  # fmt: skip


def network_response(ctx: Ctx, net: PhysicalNetwork) -> dict[str, Any]:
    zone = ctx.session.get(Zone, net.zone_id)
    domain = ctx.session.get(Domain, net.domain_id) if net.domain_id is not None else None
    return {
        "id": net.uuid,
        "name": net.name,
        "zoneid": zone.uuid if zone is not None else None,
        "zonename": zone.name if zone is not None else None,
        "state": net.state,
        "vlan": net.vlan,
        "domainid": domain.uuid if domain is not None else None,
        "tags": net.tags or None,
        "isolationmethods": net.isolation_methods,
        "broadcastdomainrange": net.broadcast_domain_range,
        "networkspeed": net.speed,
    }


def _network_uuid(ctx: Ctx, network_id: int | None) -> str | None:
    if network_id is None:
        return None
    return ctx.session.scalar(select(PhysicalNetwork.uuid).where(PhysicalNetwork.id == network_id))


def traffic_response(ctx: Ctx, row: TrafficType) -> dict[str, Any]:
    net = ctx.session.get(PhysicalNetwork, row.physical_network_id)
    return {
        "id": row.uuid,
        "traffictype": row.traffic_type,
        "physicalnetworkid": _network_uuid(ctx, row.physical_network_id),
        "kvmnetworklabel": row.kvm_label,
        "simulatorlabel": row.simulator_label,
        "vlan": row.vlan,
        "isolationmethods": row.isolation_method or (net.isolation_methods if net else None),
    }


def provider_response(ctx: Ctx, row: NetworkServiceProvider) -> dict[str, Any]:
    return {
        "id": row.uuid,
        "name": row.provider_name,
        "physicalnetworkid": _network_uuid(ctx, row.physical_network_id),
        "destinationphysicalnetworkid": _network_uuid(ctx, row.destination_physical_network_id),
        "state": row.state,
        "servicelist": list(row.services),
        "canenableindividualservice": True,
    }


# --- physical networks ---------------------------------------------------------------------


@command(
    "createPhysicalNetwork",
    kind=Kind.ASYNC_CREATE,
    description="Creates a physical network",
    response="physicalnetwork",
    roles=ROOT_ADMIN,
    event="PHYSICAL.NETWORK.CREATE",
    entity="PhysicalNetwork",
    fields=NETWORK_FIELDS,
    since="3.0.0",
)
def create_physical_network(
    ctx: Ctx,
    zoneid: Annotated[
        UUIDStr,
        Param("the Zone ID for the physical network", required=True, entity="Zone"),
    ],
    name: Annotated[str, Param("the name of the physical network", required=True)],
    vlan: Annotated[str | None, Param("the VLAN for the physical network")] = None,
    isolationmethods: Annotated[
        list[str] | None,
        Param("the isolation method for the physical network[VLAN/VXLAN/GRE]"),
    ] = None,
    broadcastdomainrange: Annotated[
        str | None,
        Param(
            "the broadcast domain range for the physical network[Pod or Zone]. In Advanced "
            "Zone, default is Zone. In Basic Zone, default is Pod"
        ),
    ] = None,
    networkspeed: Annotated[str | None, Param("the speed for the physical network[1G/10G]")] = None,
    tags: Annotated[list[str] | None, Param("Tag the physical network")] = None,
    domainid: Annotated[
        UUIDStr | None, Param("domain ID of the account owning a physical network", entity="Domain")
    ] = None,
) -> Submit:
    zone = zone_service.find_zone(ctx.session, zoneid)
    domain = find_domain(ctx.session, domainid) if domainid else None
    default_range = "POD" if zone.network_type == "Basic" else "ZONE"
    net = svc.create_physical_network(
        ctx.session,
        zone,
        name,
        methods=isolationmethods,
        vlan=vlan,
        broadcast_range=broadcastdomainrange or default_range,
        speed=networkspeed,
        tags=tags,
        domain_id=domain.id if domain is not None else None,
    )
    return Submit(
        params={"id": net.uuid},
        instance_type="PhysicalNetwork",
        created_id=net.uuid,
        resource_name=net.name,
    )


@create_physical_network.runs
def run_create_physical_network(ctx: Ctx, id: str) -> dict[str, Any]:
    """The row was written with the request; the job reports it (idempotent by nature)."""
    return network_response(ctx, svc.find_physical_network(ctx.session, id))


@command(
    "updatePhysicalNetwork",
    kind=Kind.ASYNC,
    description="Updates a physical network",
    response="physicalnetwork",
    roles=ROOT_ADMIN,
    event="PHYSICAL.NETWORK.UPDATE",
    entity="PhysicalNetwork",
    fields=NETWORK_FIELDS,
    since="3.0.0",
)
def update_physical_network(
    ctx: Ctx,
    id: Annotated[UUIDStr, Param("physical network id", required=True, entity="PhysicalNetwork")],
    state: Annotated[str | None, Param("Enabled/Disabled")] = None,
    vlan: Annotated[str | None, Param("the VLAN for the physical network")] = None,
    tags: Annotated[list[str] | None, Param("Tag the physical network")] = None,
    networkspeed: Annotated[str | None, Param("the speed for the physical network[1G/10G]")] = None,
) -> Submit:
    net = svc.find_physical_network(ctx.session, id)
    # Checked now so a bad value is a 431 on the request, not a failed job.
    svc.check_update(net, state, vlan)
    return Submit(
        params={"id": id, "state": state, "vlan": vlan, "tags": tags, "speed": networkspeed},
        instance_type="PhysicalNetwork",
        instance_id=net.uuid,
        resource_name=net.name,
    )


@update_physical_network.runs
def run_update_physical_network(
    ctx: Ctx,
    id: str,
    state: str | None,
    vlan: str | None,
    tags: list[str] | None,
    speed: str | None,
) -> dict[str, Any]:
    net = svc.find_physical_network(ctx.session, id)
    svc.update_physical_network(net, state=state, vlan=vlan, tags=tags, speed=speed)
    ctx.session.flush()
    return network_response(ctx, net)


@command(
    "deletePhysicalNetwork",
    kind=Kind.ASYNC,
    description="Deletes a Physical Network.",
    roles=ROOT_ADMIN,
    event="PHYSICAL.NETWORK.DELETE",
    entity="PhysicalNetwork",
    since="3.0.0",
)
def delete_physical_network(
    ctx: Ctx,
    id: Annotated[
        UUIDStr, Param("the ID of the Physical network", required=True, entity="PhysicalNetwork")
    ],
) -> Submit:
    net = svc.find_physical_network(ctx.session, id)
    svc.check_deletable(ctx.session, net)
    return Submit(
        params={"id": id},
        instance_type="PhysicalNetwork",
        instance_id=net.uuid,
        resource_name=net.name,
    )


@delete_physical_network.runs
def run_delete_physical_network(ctx: Ctx, id: str) -> Success:
    """A re-run after the network is gone succeeds: the work is done."""
    net = ctx.session.scalar(select(PhysicalNetwork).where(PhysicalNetwork.uuid == id))
    if net is None:
        raise ParamError(f"Unable to find physical network by id {id}")
    if net.removed is None:
        svc.delete_physical_network(ctx.session, net)
    return Success()


@command(
    "listPhysicalNetworks",
    kind=Kind.LIST,
    description="Lists physical networks",
    response="physicalnetwork",
    roles=ROOT_ADMIN,
    fields=NETWORK_FIELDS,
    since="3.0.0",
)
def list_physical_networks(
    ctx: Ctx,
    id: Annotated[
        UUIDStr | None, Param("list physical network by id", entity="PhysicalNetwork")
    ] = None,
    zoneid: Annotated[
        UUIDStr | None, Param("the Zone ID for the physical network", entity="Zone")
    ] = None,
    name: Annotated[str | None, Param("search by name")] = None,
) -> Listing:
    stmt = (
        select(PhysicalNetwork)
        .join(Zone, PhysicalNetwork.zone_id == Zone.id)
        .where(PhysicalNetwork.removed.is_(None))
    )
    if id is not None:
        stmt = stmt.where(PhysicalNetwork.uuid == id)
    if zoneid is not None:
        stmt = stmt.where(Zone.uuid == zoneid)
    if name is not None:
        stmt = stmt.where(PhysicalNetwork.name == name)
    if ctx.paging.keyword:
        stmt = stmt.where(PhysicalNetwork.name.ilike(f"%{ctx.paging.keyword}%"))
    rows, total = ctx.page(stmt.order_by(PhysicalNetwork.id))
    return Listing([network_response(ctx, n) for n in rows], total)


# --- traffic types -------------------------------------------------------------------------

KvmLabel = Annotated[
    str | None,
    Param("The network name label of the physical device dedicated to this traffic on a KVM host"),
]
SimulatorLabel = Annotated[
    str | None,
    Param("The network name label of this traffic on a Simulator host (Cumulo)"),
]


@command(
    "addTrafficType",
    kind=Kind.ASYNC_CREATE,
    description="Adds traffic type to a physical network",
    response="traffictype",
    roles=ROOT_ADMIN,
    event="TRAFFIC.TYPE.CREATE",
    entity="TrafficType",
    fields=TRAFFIC_FIELDS,
    since="3.0.0",
)
def add_traffic_type(
    ctx: Ctx,
    physicalnetworkid: Annotated[
        UUIDStr, Param("the Physical Network ID", required=True, entity="PhysicalNetwork")
    ],
    traffictype: Annotated[
        str, Param("the trafficType to be added to the physical network", required=True)
    ],
    kvmnetworklabel: KvmLabel = None,
    simulatorlabel: SimulatorLabel = None,
    vlan: Annotated[
        str | None,
        Param("The VLAN id to be used for Management traffic by the host"),
    ] = None,
    isolationmethod: Annotated[
        str | None,
        Param("Used if physical network has multiple isolation types and traffic type is public."),
    ] = None,
) -> Submit:
    net = svc.find_physical_network(ctx.session, physicalnetworkid)
    row = svc.add_traffic_type(
        ctx.session,
        net,
        traffictype,
        kvm_label=kvmnetworklabel,
        simulator_label=simulatorlabel,
        vlan=vlan,
        isolation_method=isolationmethod,
    )
    return Submit(
        params={"id": row.uuid},
        instance_type="TrafficType",
        created_id=row.uuid,
        resource_name=row.traffic_type,
    )


@add_traffic_type.runs
def run_add_traffic_type(ctx: Ctx, id: str) -> dict[str, Any]:
    return traffic_response(ctx, svc.find_traffic_type(ctx.session, id))


@command(
    "updateTrafficType",
    kind=Kind.ASYNC,
    description="Updates traffic type of a physical network",
    response="traffictype",
    roles=ROOT_ADMIN,
    event="TRAFFIC.TYPE.UPDATE",
    entity="TrafficType",
    fields=TRAFFIC_FIELDS,
    since="3.0.0",
)
def update_traffic_type(
    ctx: Ctx,
    id: Annotated[UUIDStr, Param("traffic type id", required=True, entity="TrafficType")],
    kvmnetworklabel: KvmLabel = None,
    simulatorlabel: SimulatorLabel = None,
) -> Submit:
    row = svc.find_traffic_type(ctx.session, id)
    return Submit(
        params={"id": id, "kvm": kvmnetworklabel, "simulator": simulatorlabel},
        instance_type="TrafficType",
        instance_id=row.uuid,
        resource_name=row.traffic_type,
    )


@update_traffic_type.runs
def run_update_traffic_type(
    ctx: Ctx, id: str, kvm: str | None, simulator: str | None
) -> dict[str, Any]:
    row = svc.update_traffic_type(svc.find_traffic_type(ctx.session, id), kvm, simulator)
    ctx.session.flush()
    return traffic_response(ctx, row)


@command(
    "deleteTrafficType",
    kind=Kind.ASYNC,
    description="Deletes traffic type of a physical network",
    roles=ROOT_ADMIN,
    event="TRAFFIC.TYPE.DELETE",
    entity="TrafficType",
    since="3.0.0",
)
def delete_traffic_type(
    ctx: Ctx,
    id: Annotated[UUIDStr, Param("traffic type id", required=True, entity="TrafficType")],
) -> Submit:
    row = svc.find_traffic_type(ctx.session, id)
    return Submit(
        params={"id": id},
        instance_type="TrafficType",
        instance_id=row.uuid,
        resource_name=row.traffic_type,
    )


@delete_traffic_type.runs
def run_delete_traffic_type(ctx: Ctx, id: str) -> Success:
    """Idempotent: a traffic type already gone is the state the job wants."""
    row = ctx.session.scalar(select(TrafficType).where(TrafficType.uuid == id))
    if row is not None:
        ctx.session.delete(row)
    return Success()


@command(
    "listTrafficTypes",
    kind=Kind.LIST,
    description="Lists traffic types of a given physical network.",
    response="traffictype",
    roles=ROOT_ADMIN,
    fields=TRAFFIC_FIELDS,
    since="3.0.0",
)
def list_traffic_types(
    ctx: Ctx,
    physicalnetworkid: Annotated[
        UUIDStr, Param("the Physical Network ID", required=True, entity="PhysicalNetwork")
    ],
) -> Listing:
    net = svc.find_physical_network(ctx.session, physicalnetworkid)
    stmt = select(TrafficType).where(TrafficType.physical_network_id == net.id)
    rows, total = ctx.page(stmt.order_by(TrafficType.id))
    return Listing([traffic_response(ctx, r) for r in rows], total)


# --- network service providers -------------------------------------------------------------


@command(
    "listNetworkServiceProviders",
    kind=Kind.LIST,
    description="Lists network serviceproviders for a given physical network.",
    response="networkserviceprovider",
    roles=ROOT_ADMIN,
    fields=PROVIDER_FIELDS,
    since="3.0.0",
)
def list_network_service_providers(
    ctx: Ctx,
    physicalnetworkid: Annotated[
        UUIDStr | None, Param("the Physical Network ID", entity="PhysicalNetwork")
    ] = None,
    name: Annotated[str | None, Param("list providers by name")] = None,
    state: Annotated[str | None, Param("list providers by state")] = None,
) -> Listing:
    stmt = (
        select(NetworkServiceProvider)
        .join(PhysicalNetwork, NetworkServiceProvider.physical_network_id == PhysicalNetwork.id)
        .where(PhysicalNetwork.removed.is_(None))
    )
    if physicalnetworkid is not None:
        stmt = stmt.where(PhysicalNetwork.uuid == physicalnetworkid)
    if name is not None:
        stmt = stmt.where(NetworkServiceProvider.provider_name == name)
    if state is not None:
        stmt = stmt.where(NetworkServiceProvider.state == state)
    if ctx.paging.keyword:
        stmt = stmt.where(NetworkServiceProvider.provider_name.ilike(f"%{ctx.paging.keyword}%"))
    rows, total = ctx.page(stmt.order_by(NetworkServiceProvider.id))
    return Listing([provider_response(ctx, r) for r in rows], total)


ServiceList = Annotated[
    list[str] | None,
    Param("the list of services to be enabled for this physical network service provider"),
]


@command(
    "addNetworkServiceProvider",
    kind=Kind.ASYNC_CREATE,
    description="Adds a network serviceProvider to a physical network",
    response="networkserviceprovider",
    roles=ROOT_ADMIN,
    event="SERVICE.PROVIDER.CREATE",
    entity="PhysicalNetworkServiceProvider",
    fields=PROVIDER_FIELDS,
    since="3.0.0",
)
def add_network_service_provider(
    ctx: Ctx,
    name: Annotated[
        str, Param("the name for the physical network service provider", required=True)
    ],
    physicalnetworkid: Annotated[
        UUIDStr,
        Param(
            "the Physical Network ID to add the provider to",
            required=True,
            entity="PhysicalNetwork",
        ),
    ],
    destinationphysicalnetworkid: Annotated[
        UUIDStr | None,
        Param("the destination Physical Network ID to bridge to", entity="PhysicalNetwork"),
    ] = None,
    servicelist: ServiceList = None,
) -> Submit:
    net = svc.find_physical_network(ctx.session, physicalnetworkid)
    dest = (
        svc.find_physical_network(ctx.session, destinationphysicalnetworkid)
        if destinationphysicalnetworkid
        else None
    )
    row = svc.add_provider(ctx.session, net, name, servicelist, dest)
    return Submit(
        params={"id": row.uuid},
        instance_type="PhysicalNetworkServiceProvider",
        created_id=row.uuid,
        resource_name=row.provider_name,
    )


@add_network_service_provider.runs
def run_add_network_service_provider(ctx: Ctx, id: str) -> dict[str, Any]:
    return provider_response(ctx, svc.find_provider(ctx.session, id))


@command(
    "updateNetworkServiceProvider",
    kind=Kind.ASYNC,
    description="Updates a network serviceProvider of a physical network",
    response="networkserviceprovider",
    roles=ROOT_ADMIN,
    event="SERVICE.PROVIDER.UPDATE",
    entity="PhysicalNetworkServiceProvider",
    fields=PROVIDER_FIELDS,
    since="3.0.0",
)
def update_network_service_provider(
    ctx: Ctx,
    id: Annotated[
        UUIDStr,
        Param(
            "network service provider id", required=True, entity="PhysicalNetworkServiceProvider"
        ),
    ],
    state: Annotated[
        str | None, Param("Enabled/Disabled/Shutdown the physical network service provider")
    ] = None,
    servicelist: ServiceList = None,
) -> Submit:
    row = svc.find_provider(ctx.session, id)
    if state is not None:
        svc.provider_state(state)
    return Submit(
        params={"id": id, "state": state, "services": servicelist},
        instance_type="PhysicalNetworkServiceProvider",
        instance_id=row.uuid,
        resource_name=row.provider_name,
    )


@update_network_service_provider.runs
def run_update_network_service_provider(
    ctx: Ctx, id: str, state: str | None, services: list[str] | None
) -> dict[str, Any]:
    row = svc.update_provider(svc.find_provider(ctx.session, id), state, services)
    ctx.session.flush()
    return provider_response(ctx, row)


@command(
    "deleteNetworkServiceProvider",
    kind=Kind.ASYNC,
    description="Deletes a Network Service Provider.",
    roles=ROOT_ADMIN,
    event="SERVICE.PROVIDER.DELETE",
    entity="PhysicalNetworkServiceProvider",
    since="3.0.0",
)
def delete_network_service_provider(
    ctx: Ctx,
    id: Annotated[
        UUIDStr,
        Param(
            "the ID of the network service provider",
            required=True,
            entity="PhysicalNetworkServiceProvider",
        ),
    ],
) -> Submit:
    row = svc.find_provider(ctx.session, id)
    return Submit(
        params={"id": id},
        instance_type="PhysicalNetworkServiceProvider",
        instance_id=row.uuid,
        resource_name=row.provider_name,
    )


@delete_network_service_provider.runs
def run_delete_network_service_provider(ctx: Ctx, id: str) -> Success:
    row = ctx.session.scalar(
        select(NetworkServiceProvider).where(NetworkServiceProvider.uuid == id)
    )
    if row is not None:
        ctx.session.delete(row)
    return Success()
