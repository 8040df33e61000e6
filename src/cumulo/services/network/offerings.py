"""Network offerings: what a guest network offers and who provides it.

CloudStack's default offerings are seeded by migration 0009; admins create more. An offering
is a menu: ``services`` maps each service to its providers, and a network made from it gets
exactly those services (shown as ``service[]`` on the network).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from cumulo.common.time import utcnow
from cumulo.db.models_network import Network, NetworkOffering
from cumulo.services.errors import NotFound, ParamError, ResourceInUse

GUEST_TYPES = ("Isolated", "Shared", "L2")
STATES = ("Enabled", "Disabled", "Inactive")
AVAILABILITIES = ("Required", "Optional", "Unavailable")
SERVICES = (
    "Vpn", "Dhcp", "Dns", "UserData", "SourceNat", "StaticNat", "PortForwarding", "Firewall",
    "Lb", "Gateway", "SecurityGroup", "NetworkACL",
)  # fmt: skip
PROVIDERS = ("VirtualRouter", "VpcVirtualRouter", "SecurityGroupProvider", "ConfigDrive")
DEFAULT_ISOLATED = "DefaultIsolatedNetworkOfferingWithSourceNatService"


@dataclass
class OfferingSpec:
    name: str
    display_text: str
    guest_ip_type: str
    traffic_type: str = "Guest"
    services: list[str] = field(default_factory=list)
    providers: dict[str, str] = field(default_factory=dict)  # service → provider
    specify_vlan: bool = False
    specify_ip_ranges: bool = False
    conserve_mode: bool = True
    egress_default_allow: bool = True
    for_vpc: bool = False
    availability: str = "Optional"
    tags: str | None = None
    network_rate: int | None = None
    max_connections: int | None = None


def _choice(what: str, value: str, choices: tuple[str, ...]) -> str:
    for choice in choices:
        if choice.lower() == value.strip().lower():
            return choice
    raise ParamError(f"Invalid {what} {value}: expected one of {', '.join(choices)}")


def find(session: Session, uuid: str) -> NetworkOffering:
    found = session.scalar(
        select(NetworkOffering).where(
            NetworkOffering.uuid == uuid, NetworkOffering.removed.is_(None)
        )
    )
    if found is None:
        raise NotFound(f"Unable to find network offering by id {uuid}")
    return found


def find_by_name(session: Session, name: str) -> NetworkOffering | None:
    return session.scalar(
        select(NetworkOffering).where(
            NetworkOffering.name == name, NetworkOffering.removed.is_(None)
        )
    )


def has(offering: NetworkOffering, service: str) -> bool:
    return service in (offering.services or {})


def service_map(spec: OfferingSpec) -> dict[str, list[str]]:
    """service → [provider]; the virtual router provides whatever is not said otherwise."""
    out: dict[str, list[str]] = {}
    for raw in spec.services:
        service = _choice("service", raw, SERVICES)
        provider = spec.providers.get(service) or next(
            (p for s, p in spec.providers.items() if s.lower() == service.lower()), None
        )
        if provider is None:
            provider = "SecurityGroupProvider" if service == "SecurityGroup" else "VirtualRouter"
        out[service] = [_choice("provider", provider, PROVIDERS)]
    return out


def create(session: Session, spec: OfferingSpec) -> NetworkOffering:
    if not spec.name.strip():
        raise ParamError("Network offering name must not be empty")
    if find_by_name(session, spec.name) is not None:
        raise ParamError(f"Network offering with name {spec.name} already exists")
    guest = _choice("guest ip type", spec.guest_ip_type, GUEST_TYPES)
    if spec.traffic_type.lower() != "guest":
        raise ParamError("Only network offerings of traffic type Guest can be created")
    services = service_map(spec)
    if guest == "Shared" and "SourceNat" in services:
        raise ParamError("SourceNat service is not supported by Shared networks")
    if guest == "L2" and services:
        raise ParamError("L2 network offerings can not have services")
    for value in (spec.network_rate, spec.max_connections):
        if value is not None and value < 0:
            raise ParamError("networkrate and maxconnections must not be negative")
    row = NetworkOffering(
        name=spec.name.strip(),
        display_text=spec.display_text,
        guest_ip_type=guest,
        traffic_type="Guest",
        state="Disabled",
        specify_vlan=spec.specify_vlan,
        specify_ip_ranges=spec.specify_ip_ranges or guest == "Shared",
        conserve_mode=spec.conserve_mode,
        egress_default_allow=spec.egress_default_allow,
        for_vpc=spec.for_vpc,
        availability=_choice("availability", spec.availability, AVAILABILITIES),
        tags=spec.tags,
        network_rate=spec.network_rate,
        max_connections=spec.max_connections,
        services=services,
        capabilities={"SupportedSourceNatTypes": "peraccount"} if "SourceNat" in services else {},
    )
    session.add(row)
    session.flush()
    return row


def update(
    session: Session,
    row: NetworkOffering,
    *,
    name: str | None = None,
    display_text: str | None = None,
    state: str | None = None,
    availability: str | None = None,
    max_connections: int | None = None,
    tags: str | None = None,
) -> NetworkOffering:
    if name is not None and name != row.name:
        if not name.strip() or find_by_name(session, name) is not None:
            raise ParamError(f"Network offering with name {name} already exists")
        row.name = name.strip()
    if display_text is not None:
        row.display_text = display_text
    if state is not None:
        row.state = _choice("state", state, STATES)
    if availability is not None:
        row.availability = _choice("availability", availability, AVAILABILITIES)
    if max_connections is not None:
        if max_connections < 0:
            raise ParamError("maxconnections must not be negative")
        row.max_connections = max_connections
    if tags is not None:
        row.tags = tags or None
    return row


def delete(session: Session, row: NetworkOffering) -> None:
    """Default offerings stay (CloudStack refuses them too); used ones stay until unused."""
    if row.is_default:
        raise ParamError(f"Default network offering {row.name} can't be removed")
    used = exists().where(Network.offering_id == row.id, Network.removed.is_(None))
    if session.scalar(select(used)):
        raise ResourceInUse(f"Network offering {row.name} is used by networks")
    row.removed = utcnow()
    row.state = "Inactive"
