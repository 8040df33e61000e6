"""Physical networks, the traffic types they carry, and their network service providers.

A physical network is created Disabled with CloudStack's default providers (all Disabled),
so a deployment script can enable exactly the ones it wants, in CloudStack's order. Guest
segment ids are VXLAN VNIs on these machines (isolation method VXLAN); VLAN and GRE are
accepted and stored for clients that send them.
"""

from __future__ import annotations

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session

from cumulo.common.ids import new_uuid
from cumulo.common.time import utcnow
from cumulo.db.models_infra import (
    NetworkServiceProvider,
    PhysicalNetwork,
    TrafficType,
    VlanIpRange,
    Zone,
)
from cumulo.services.errors import ParamError, ResourceInUse
from cumulo.services.infra import DISABLED, ENABLED

ISOLATION_METHODS = ("VLAN", "VXLAN", "GRE")
BROADCAST_RANGES = ("ZONE", "POD")
TRAFFIC_TYPES = ("Guest", "Public", "Management", "Storage")
PROVIDER_STATES = (ENABLED, DISABLED, "Shutdown")
# The largest segment id per isolation method: 12-bit VLAN tags, 24-bit VNIs and GRE keys.
MAX_SEGMENT = {"VLAN": 4095, "VXLAN": 16777214, "GRE": 4294967295}
# Providers CloudStack adds to every new physical network, with the services each offers.
DEFAULT_PROVIDERS: dict[str, tuple[str, ...]] = {
    "VirtualRouter": (
        "Vpn", "Dhcp", "Dns", "UserData", "SourceNat", "StaticNat", "PortForwarding",
        "Firewall", "Lb", "Gateway",
    ),
    "SecurityGroupProvider": ("SecurityGroup",),
    "VpcVirtualRouter": (
        "Vpn", "Dhcp", "Dns", "UserData", "SourceNat", "StaticNat", "PortForwarding",
        "Lb", "Gateway", "NetworkACL",
    ),
    "InternalLbVm": ("Lb",),
    "ConfigDrive": ("UserData",),
}  # fmt: skip
# Providers that come with an element row of their own, and the element's kind.
VIRTUAL_ROUTER_ELEMENTS = ("VirtualRouter", "VpcVirtualRouter")
INTERNAL_LB_ELEMENTS = ("InternalLbVm",)


def _choice(what: str, value: str, choices: tuple[str, ...]) -> str:
    for choice in choices:
        if choice.lower() == value.lower():
            return choice
    raise ParamError(f"Invalid {what} {value}: one of {', '.join(choices)}")


def find_physical_network(session: Session, uuid: str) -> PhysicalNetwork:
    found = session.scalar(
        select(PhysicalNetwork).where(
            PhysicalNetwork.uuid == uuid, PhysicalNetwork.removed.is_(None)
        )
    )
    if found is None:
        raise ParamError(f"Unable to find physical network by id {uuid}")
    return found


def isolation_methods(values: list[str] | None) -> str:
    if not values:
        return "VXLAN"
    methods = [_choice("isolation method", v, ISOLATION_METHODS) for v in values]
    return ",".join(dict.fromkeys(methods))


def segment_ranges(text: str, methods: str) -> str:
    """``"100-199,300"``: each part a number or an ascending pair within the method's ids."""
    ceiling = min(MAX_SEGMENT.get(m, MAX_SEGMENT["VXLAN"]) for m in methods.split(","))
    parts: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        bounds = part.split("-")
        if len(bounds) > 2 or not all(b.strip().isdigit() for b in bounds):
            raise ParamError(f"Invalid vlan range {part}: expected N or N-M")
        low, high = int(bounds[0]), int(bounds[-1])
        if low > high or high > ceiling:
            raise ParamError(f"Invalid vlan range {part}: ids go from 0 to {ceiling}, ascending")
        parts.append(f"{low}-{high}")
    return ",".join(parts)


def create_physical_network(
    session: Session,
    zone: Zone,
    name: str,
    *,
    methods: list[str] | None = None,
    vlan: str | None = None,
    broadcast_range: str | None = None,
    speed: str | None = None,
    tags: list[str] | None = None,
    domain_id: int | None = None,
) -> PhysicalNetwork:
    isolation = isolation_methods(methods)
    network = PhysicalNetwork(
        name=name,
        zone_id=zone.id,
        domain_id=domain_id,
        vlan=segment_ranges(vlan, isolation) if vlan else None,
        isolation_methods=isolation,
        broadcast_domain_range=_choice(
            "broadcast domain range", broadcast_range or "ZONE", BROADCAST_RANGES
        ),
        speed=speed or "1G",
        tags=",".join(tags or []),
        state=DISABLED,
    )
    session.add(network)
    session.flush()
    for provider, services in DEFAULT_PROVIDERS.items():
        session.add(
            NetworkServiceProvider(
                physical_network_id=network.id,
                provider_name=provider,
                state=DISABLED,
                services=list(services),
                element_uuid=_element_uuid(provider),
            )
        )
    session.flush()
    return network


def check_update(network: PhysicalNetwork, state: str | None, vlan: str | None) -> None:
    """Validate an update without applying it, so a bad value is refused on the request."""
    if state is not None:
        _choice("state", state, (ENABLED, DISABLED))
    if vlan:
        segment_ranges(vlan, network.isolation_methods)


def update_physical_network(
    network: PhysicalNetwork,
    *,
    state: str | None = None,
    vlan: str | None = None,
    tags: list[str] | None = None,
    speed: str | None = None,
) -> PhysicalNetwork:
    """Idempotent: a job that runs twice sets the same values twice."""
    if state is not None:
        network.state = _choice("state", state, (ENABLED, DISABLED))
    if vlan is not None:
        network.vlan = segment_ranges(vlan, network.isolation_methods) if vlan else None
    if tags is not None:
        network.tags = ",".join(tags)
    if speed is not None:
        network.speed = speed
    return network


def check_deletable(session: Session, network: PhysicalNetwork) -> None:
    used = exists().where(
        VlanIpRange.physical_network_id == network.id, VlanIpRange.removed.is_(None)
    )
    if session.scalar(select(used)):
        raise ResourceInUse(
            f"The physical network {network.name} cannot be deleted while IP ranges use it"
        )


def delete_physical_network(session: Session, network: PhysicalNetwork) -> None:
    """Its traffic types and providers go with it, as CloudStack's do."""
    check_deletable(session, network)
    session.execute(delete(TrafficType).where(TrafficType.physical_network_id == network.id))
    session.execute(
        delete(NetworkServiceProvider).where(
            NetworkServiceProvider.physical_network_id == network.id
        )
    )
    network.removed = utcnow()


# --- traffic types -------------------------------------------------------------------------


def find_traffic_type(session: Session, uuid: str) -> TrafficType:
    found = session.scalar(select(TrafficType).where(TrafficType.uuid == uuid))
    if found is None:
        raise ParamError(f"Unable to find traffic type by id {uuid}")
    return found


def add_traffic_type(
    session: Session,
    network: PhysicalNetwork,
    traffic_type: str,
    *,
    kvm_label: str | None = None,
    simulator_label: str | None = None,
    vlan: str | None = None,
    isolation_method: str | None = None,
) -> TrafficType:
    kind = _choice("traffic type", traffic_type, TRAFFIC_TYPES)
    taken = select(TrafficType.id).where(
        TrafficType.physical_network_id == network.id, TrafficType.traffic_type == kind
    )
    if session.scalar(taken) is not None:
        raise ParamError(
            f"The traffic type {kind} is already added to physical network {network.name}"
        )
    row = TrafficType(
        physical_network_id=network.id,
        traffic_type=kind,
        kvm_label=kvm_label,
        simulator_label=simulator_label,
        vlan=vlan,
        isolation_method=(
            _choice("isolation method", isolation_method, ISOLATION_METHODS)
            if isolation_method
            else None
        ),
    )
    session.add(row)
    session.flush()
    return row


def update_traffic_type(
    row: TrafficType, kvm_label: str | None, simulator_label: str | None
) -> TrafficType:
    if kvm_label is not None:
        row.kvm_label = kvm_label
    if simulator_label is not None:
        row.simulator_label = simulator_label
    return row


# --- network service providers -------------------------------------------------------------


def find_provider(session: Session, uuid: str) -> NetworkServiceProvider:
    found = session.scalar(
        select(NetworkServiceProvider).where(NetworkServiceProvider.uuid == uuid)
    )
    if found is None:
        raise ParamError(f"Unable to find network service provider by id {uuid}")
    return found


def _element_uuid(provider: str) -> str | None:
    return new_uuid() if provider in VIRTUAL_ROUTER_ELEMENTS + INTERNAL_LB_ELEMENTS else None


def find_element(session: Session, uuid: str, providers: tuple[str, ...]) -> NetworkServiceProvider:
    """The provider whose element ``uuid`` names, if it is one of ``providers``' kind."""
    found = session.scalar(
        select(NetworkServiceProvider).where(
            NetworkServiceProvider.element_uuid == uuid,
            NetworkServiceProvider.provider_name.in_(providers),
        )
    )
    if found is None:
        raise ParamError(f"Unable to find the network element by id {uuid}")
    return found


def provider_state(value: str) -> str:
    return _choice("provider state", value, PROVIDER_STATES)


def add_provider(
    session: Session,
    network: PhysicalNetwork,
    name: str,
    services: list[str] | None,
    destination: PhysicalNetwork | None = None,
) -> NetworkServiceProvider:
    taken = select(NetworkServiceProvider.id).where(
        NetworkServiceProvider.physical_network_id == network.id,
        NetworkServiceProvider.provider_name == name,
    )
    if session.scalar(taken) is not None:
        raise ParamError(f"The provider {name} is already added to physical network {network.name}")
    row = NetworkServiceProvider(
        physical_network_id=network.id,
        provider_name=name,
        state=DISABLED,
        services=list(services or DEFAULT_PROVIDERS.get(name, ())),
        destination_physical_network_id=destination.id if destination is not None else None,
        element_uuid=_element_uuid(name),
    )
    session.add(row)
    session.flush()
    return row


def update_provider(
    row: NetworkServiceProvider, state: str | None, services: list[str] | None
) -> NetworkServiceProvider:
    if state is not None:
        row.state = provider_state(state)
    if services is not None:
        row.services = list(services)
    return row
