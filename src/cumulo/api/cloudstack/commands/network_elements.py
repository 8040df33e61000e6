"""Network elements: the virtual router and internal load balancer elements of a provider.

CloudStack keeps an element row beside the VirtualRouter, VpcVirtualRouter and InternalLbVm
providers of every physical network, and deployment scripts (marvin's deployDataCenter, the
UI's zone wizard) enable it with configure*Element before enabling the provider. Cumulo keeps
the element on the provider's row; enabling a provider does not insist on it.
"""

from __future__ import annotations

from typing import Annotated, Any

from sqlalchemy import select

from cumulo.api.cloudstack.registry import Kind, Param, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx, Listing, Submit
from cumulo.db.models_infra import NetworkServiceProvider
from cumulo.services.access import ROOT_ADMIN
from cumulo.services.infra import physical_networks as svc

ELEMENT_FIELDS = ("id", "nspid", "enabled")


def element_response(row: NetworkServiceProvider) -> dict[str, Any]:
    return {"id": row.element_uuid, "nspid": row.uuid, "enabled": row.element_enabled}


def _list(
    ctx: Ctx,
    providers: tuple[str, ...],
    id: str | None,
    nspid: str | None,
    enabled: bool | None,
) -> Listing:
    stmt = select(NetworkServiceProvider).where(
        NetworkServiceProvider.provider_name.in_(providers),
        NetworkServiceProvider.element_uuid.is_not(None),
    )
    if id is not None:
        stmt = stmt.where(NetworkServiceProvider.element_uuid == id)
    if nspid is not None:
        stmt = stmt.where(NetworkServiceProvider.uuid == nspid)
    if enabled is not None:
        stmt = stmt.where(NetworkServiceProvider.element_enabled == enabled)
    rows, total = ctx.page(stmt.order_by(NetworkServiceProvider.id))
    return Listing([element_response(r) for r in rows], total)


def _submit(ctx: Ctx, providers: tuple[str, ...], id: str, enabled: bool) -> Submit:
    row = svc.find_element(ctx.session, id, providers)
    return Submit(
        params={"id": id, "enabled": enabled},
        instance_id=row.element_uuid,
        resource_name=row.provider_name,
    )


def _configure(ctx: Ctx, providers: tuple[str, ...], id: str, enabled: bool) -> dict[str, Any]:
    """Idempotent: setting the flag twice leaves it as once."""
    row = svc.find_element(ctx.session, id, providers)
    row.element_enabled = enabled
    ctx.session.flush()
    return element_response(row)


Id = Annotated[UUIDStr | None, Param("list elements by id", entity="Element")]
NspId = Annotated[
    UUIDStr | None,
    Param("list elements by network service provider id", entity="Provider"),
]
Enabled = Annotated[bool | None, Param("list elements by enabled state")]
ConfigureId = Annotated[
    UUIDStr, Param("the ID of the virtual router provider", required=True, entity="Element")
]
ConfigureEnabled = Annotated[bool, Param("Enabled/Disabled the service provider", required=True)]


@command(
    "listVirtualRouterElements",
    kind=Kind.LIST,
    description="Lists all available virtual router elements.",
    response="virtualrouterelement",
    roles=ROOT_ADMIN,
    fields=ELEMENT_FIELDS,
    since="3.0.0",
)
def list_virtual_router_elements(
    ctx: Ctx, id: Id = None, nspid: NspId = None, enabled: Enabled = None
) -> Listing:
    return _list(ctx, svc.VIRTUAL_ROUTER_ELEMENTS, id, nspid, enabled)


@command(
    "configureVirtualRouterElement",
    kind=Kind.ASYNC,
    description="Configures a virtual router element.",
    response="virtualrouterelement",
    roles=ROOT_ADMIN,
    event="NETWORK.ELEMENT.CONFIGURE",
    entity="VirtualRouterElement",
    fields=ELEMENT_FIELDS,
    since="3.0.0",
)
def configure_virtual_router_element(
    ctx: Ctx, id: ConfigureId, enabled: ConfigureEnabled
) -> Submit:
    return _submit(ctx, svc.VIRTUAL_ROUTER_ELEMENTS, id, enabled)


@configure_virtual_router_element.runs
def run_configure_virtual_router_element(ctx: Ctx, id: str, enabled: bool) -> dict[str, Any]:
    return _configure(ctx, svc.VIRTUAL_ROUTER_ELEMENTS, id, enabled)


@command(
    "listInternalLoadBalancerElements",
    kind=Kind.LIST,
    description="Lists all available Internal Load Balancer elements.",
    response="internalloadbalancerelement",
    roles=ROOT_ADMIN,
    fields=ELEMENT_FIELDS,
    since="4.2.0",
)
def list_internal_load_balancer_elements(
    ctx: Ctx, id: Id = None, nspid: NspId = None, enabled: Enabled = None
) -> Listing:
    return _list(ctx, svc.INTERNAL_LB_ELEMENTS, id, nspid, enabled)


@command(
    "configureInternalLoadBalancerElement",
    kind=Kind.ASYNC,
    description="Configures an Internal Load Balancer element.",
    response="internalloadbalancerelement",
    roles=ROOT_ADMIN,
    event="NETWORK.ELEMENT.CONFIGURE",
    entity="InternalLoadBalancerElement",
    fields=ELEMENT_FIELDS,
    since="4.2.0",
)
def configure_internal_load_balancer_element(
    ctx: Ctx, id: ConfigureId, enabled: ConfigureEnabled
) -> Submit:
    return _submit(ctx, svc.INTERNAL_LB_ELEMENTS, id, enabled)


@configure_internal_load_balancer_element.runs
def run_configure_internal_load_balancer_element(
    ctx: Ctx, id: str, enabled: bool
) -> dict[str, Any]:
    return _configure(ctx, svc.INTERNAL_LB_ELEMENTS, id, enabled)
