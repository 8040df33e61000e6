"""Network offering commands: createNetworkOffering, updateNetworkOffering,
deleteNetworkOffering (root admin) and listNetworkOfferings (everyone)."""

from __future__ import annotations

from typing import Annotated, Any

from sqlalchemy import select

from cumulo.api.cloudstack.registry import Kind, Param, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx, Listing, Success
from cumulo.common.time import to_wire
from cumulo.db.models_network import Network, NetworkOffering
from cumulo.services.access import ROOT_ADMIN
from cumulo.services.network import networks as network_svc
from cumulo.services.network import offerings as svc

OFFERING_FIELDS = (
    "id", "name", "displaytext", "tags", "traffictype", "isdefault", "specifyvlan",
    "conservemode", "specifyipranges", "availability", "networkrate", "state", "guestiptype",
    "service", "forvpc", "ispersistent", "egressdefaultpolicy", "maxconnections", "created",
)  # fmt: skip


def services_response(services: dict[str, Any], capabilities: dict[str, Any]) -> list[Any]:
    """``service[]`` as CloudStack renders it: providers and capabilities per service."""
    out = []
    for name in sorted(services):
        item: dict[str, Any] = {
            "name": name,
            "provider": [{"name": p} for p in services[name]],
        }
        if name == "SourceNat" and capabilities.get("SupportedSourceNatTypes"):
            item["capability"] = [
                {
                    "name": "SupportedSourceNatTypes",
                    "value": capabilities["SupportedSourceNatTypes"],
                    "canchooseservicecapability": False,
                }
            ]
        out.append(item)
    return out


def offering_response(row: NetworkOffering) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row.uuid,
        "name": row.name,
        "displaytext": row.display_text,
        "traffictype": row.traffic_type,
        "isdefault": row.is_default,
        "specifyvlan": row.specify_vlan,
        "conservemode": row.conserve_mode,
        "specifyipranges": row.specify_ip_ranges,
        "availability": row.availability,
        "state": row.state,
        "guestiptype": row.guest_ip_type,
        "service": services_response(row.services or {}, row.capabilities or {}),
        "forvpc": row.for_vpc,
        "ispersistent": False,
        "egressdefaultpolicy": row.egress_default_allow,
        "created": to_wire(row.created),
    }
    for key, value in (
        ("tags", row.tags),
        ("networkrate", row.network_rate),
        ("maxconnections", row.max_connections),
    ):
        if value is not None:
            out[key] = value
    return out


OfferingId = Annotated[
    UUIDStr, Param("the id of the network offering", required=True, entity="NetworkOffering")
]


@command(
    "createNetworkOffering",
    description="Creates a network offering.",
    response="networkoffering",
    roles=ROOT_ADMIN,
    event="NETWORK.OFFERING.CREATE",
    entity="NetworkOffering",
    fields=OFFERING_FIELDS,
    since="3.0.0",
)
def create_network_offering(
    ctx: Ctx,
    name: Annotated[str, Param("the name of the network offering", required=True)],
    guestiptype: Annotated[
        str, Param("guest type of the network offering: Shared, Isolated or L2", required=True)
    ],
    traffictype: Annotated[
        str,
        Param(
            "the traffic type for the network offering. Supported type in current release is "
            "GUEST only"
        ),
    ] = "Guest",
    displaytext: Annotated[str | None, Param("the display text of the network offering")] = None,
    supportedservices: Annotated[
        list[str] | None, Param("services supported by the network offering")
    ] = None,
    serviceproviderlist: Annotated[
        list[dict[str, str]] | None,
        Param(
            "provider to service mapping. If not specified, the provider for the service will be "
            "mapped to the default provider on the physical network"
        ),
    ] = None,
    specifyvlan: Annotated[bool, Param("true if network offering supports vlans")] = False,
    specifyipranges: Annotated[
        bool,
        Param(
            "true if network offering supports specifying ip ranges; defaulted to false if not "
            "specified"
        ),
    ] = False,
    conservemode: Annotated[
        bool, Param("true if the network offering is IP conserve mode enabled")
    ] = True,
    availability: Annotated[
        str, Param("the availability of network offering. The default value is Optional")
    ] = "Optional",
    egressdefaultpolicy: Annotated[
        bool,
        Param(
            "true if guest network default egress policy is allow; false if default egress policy"
            " is deny"
        ),
    ] = True,
    forvpc: Annotated[
        bool, Param("true if network offering is meant to be used for VPC, false otherwise.")
    ] = False,
    tags: Annotated[str | None, Param("the tags for the network offering.")] = None,
    networkrate: Annotated[
        int | None, Param("data transfer rate in megabits per second allowed")
    ] = None,
    maxconnections: Annotated[
        int | None,
        Param("maximum number of concurrent connections supported by the network offering"),
    ] = None,
    enable: Annotated[
        bool,
        Param(
            "set to true if the offering is to be enabled during creation. Default is false",
            since="4.16",
        ),
    ] = False,
) -> dict[str, Any]:
    providers = {e.get("service", ""): e.get("provider", "") for e in serviceproviderlist or []}
    spec = svc.OfferingSpec(
        name=name,
        display_text=displaytext or name,
        guest_ip_type=guestiptype,
        traffic_type=traffictype,
        services=list(supportedservices or []),
        providers=providers,
        specify_vlan=specifyvlan,
        specify_ip_ranges=specifyipranges,
        conserve_mode=conservemode,
        egress_default_allow=egressdefaultpolicy,
        for_vpc=forvpc,
        availability=availability,
        tags=tags,
        network_rate=networkrate,
        max_connections=maxconnections,
    )
    row = svc.create(ctx.session, spec)
    if enable:
        row.state = "Enabled"
    return offering_response(row)


@command(
    "updateNetworkOffering",
    description="Updates a network offering.",
    response="networkoffering",
    roles=ROOT_ADMIN,
    event="NETWORK.OFFERING.EDIT",
    entity="NetworkOffering",
    fields=OFFERING_FIELDS,
    since="3.0.0",
)
def update_network_offering(
    ctx: Ctx,
    id: Annotated[UUIDStr, Param("the id of the network offering", entity="NetworkOffering")],
    name: Annotated[str | None, Param("the name of the network offering")] = None,
    displaytext: Annotated[str | None, Param("the display text of the network offering")] = None,
    state: Annotated[
        str | None, Param("update state for the network offering: Enabled or Disabled")
    ] = None,
    availability: Annotated[
        str | None, Param("the availability of network offering: Required or Optional")
    ] = None,
    maxconnections: Annotated[
        int | None,
        Param("maximum number of concurrent connections supported by the network offering"),
    ] = None,
    tags: Annotated[str | None, Param("the tags for the network offering.")] = None,
) -> dict[str, Any]:
    row = svc.find(ctx.session, id)
    svc.update(
        ctx.session,
        row,
        name=name,
        display_text=displaytext,
        state=state,
        availability=availability,
        max_connections=maxconnections,
        tags=tags,
    )
    return offering_response(row)


@command(
    "deleteNetworkOffering",
    description="Deletes a network offering.",
    roles=ROOT_ADMIN,
    event="NETWORK.OFFERING.DELETE",
    entity="NetworkOffering",
    since="3.0.0",
)
def delete_network_offering(ctx: Ctx, id: OfferingId) -> Success:
    row = svc.find(ctx.session, id)
    svc.delete(ctx.session, row)
    ctx.event_resource = (row.uuid, row.name)
    return Success()


@command(
    "listNetworkOfferings",
    kind=Kind.LIST,
    description="Lists all available network offerings.",
    response="networkoffering",
    fields=OFFERING_FIELDS,
    since="3.0.0",
)
def list_network_offerings(
    ctx: Ctx,
    id: Annotated[
        UUIDStr | None, Param("list network offerings by ID", entity="NetworkOffering")
    ] = None,
    name: Annotated[str | None, Param("list network offerings by name")] = None,
    displaytext: Annotated[str | None, Param("list network offerings by display text")] = None,
    traffictype: Annotated[str | None, Param("list by traffic type")] = None,
    isdefault: Annotated[
        bool | None,
        Param("true if need to list only default network offerings. Default value is false"),
    ] = None,
    specifyvlan: Annotated[bool | None, Param("the tags for the network offering.")] = None,
    availability: Annotated[
        str | None, Param("the availability of network offering. Default value is required")
    ] = None,
    state: Annotated[str | None, Param("list network offerings by state")] = None,
    guestiptype: Annotated[
        str | None, Param("list network offerings by guest type: shared or isolated")
    ] = None,
    supportedservices: Annotated[
        list[str] | None, Param("list network offerings supporting certain services")
    ] = None,
    sourcenatsupported: Annotated[
        bool | None,
        Param(
            "true if need to list only netwok offerings where source NAT is supported, false "
            "otherwise"
        ),
    ] = None,
    specifyipranges: Annotated[
        bool | None,
        Param("true if need to list only network offerings which support specifying ip ranges"),
    ] = None,
    forvpc: Annotated[
        bool | None,
        Param("the network offering can be used only for network creation inside the VPC"),
    ] = None,
    zoneid: Annotated[
        UUIDStr | None,
        Param(
            "list network offerings available for network creation in specific zone", entity="Zone"
        ),
    ] = None,
    networkid: Annotated[
        UUIDStr | None,
        Param(
            "the ID of the network. Pass this in if you want to see the available network "
            "offering that a network can be changed to.",
            entity="Network",
        ),
    ] = None,
    tags: Annotated[str | None, Param("list network offerings by tags")] = None,
) -> Listing:
    stmt = select(NetworkOffering).where(NetworkOffering.removed.is_(None))
    for value, column in (
        (id, NetworkOffering.uuid),
        (name, NetworkOffering.name),
        (displaytext, NetworkOffering.display_text),
        (isdefault, NetworkOffering.is_default),
        (specifyvlan, NetworkOffering.specify_vlan),
        (specifyipranges, NetworkOffering.specify_ip_ranges),
        (forvpc, NetworkOffering.for_vpc),
        (tags, NetworkOffering.tags),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    for text, column in (
        (traffictype, NetworkOffering.traffic_type),
        (availability, NetworkOffering.availability),
        (state, NetworkOffering.state),
        (guestiptype, NetworkOffering.guest_ip_type),
    ):
        if text is not None:
            stmt = stmt.where(column.ilike(text))
    if networkid is not None:
        network = network_svc.find(ctx.session, networkid)
        stmt = stmt.where(
            NetworkOffering.guest_ip_type == network.guest_type,
            NetworkOffering.state == "Enabled",
            NetworkOffering.id
            != select(Network.offering_id).where(Network.id == network.id).scalar_subquery(),
        )
    if ctx.paging.keyword:
        stmt = stmt.where(NetworkOffering.name.ilike(f"%{ctx.paging.keyword}%"))
    # Service filters read the JSON column; offerings are few, so they are filtered in the
    # query's result before paging (the page is taken from the filtered list).
    rows = list(ctx.session.scalars(stmt.order_by(NetworkOffering.id)))
    wanted = [s.lower() for s in supportedservices or []]
    if wanted:
        rows = [r for r in rows if all(s in {k.lower() for k in r.services or {}} for s in wanted)]
    if sourcenatsupported is not None:
        rows = [r for r in rows if svc.has(r, "SourceNat") == sourcenatsupported]
    total = len(rows)
    if ctx.paging.pagesize is not None:
        first = ((ctx.paging.page or 1) - 1) * ctx.paging.pagesize
        rows = rows[first : first + ctx.paging.pagesize]
    return Listing([offering_response(r) for r in rows], total)
