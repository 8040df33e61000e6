"""Virtual router admin commands: listRouters, rebootRouter, stopRouter, startRouter,
destroyRouter, with CloudStack's ``domainrouter`` object.

A Cumulo router is a network namespace on a host, not a system VM: fields that describe a
VM are answered honestly (no template, no service offering, no link-local address, never
redundant, ``version`` is Cumulo's). The host calls happen in the job's ``prepare`` step,
outside the job's transaction; the job body renders the result.
"""

from __future__ import annotations

from ipaddress import IPv4Network
from typing import Annotated, Any

from sqlalchemy import Select, select

from cumulo import __version__
from cumulo.api.cloudstack.registry import Kind, Param, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx, Listing, Submit
from cumulo.common.time import to_wire
from cumulo.db.models import Account, Domain
from cumulo.db.models_infra import Host, Pod, Zone
from cumulo.db.models_network import Network, PublicIpAddress
from cumulo.db.models_routers import Router
from cumulo.services.access import ADMINS
from cumulo.services.network import routers as svc
from cumulo.services.runtime import Runtime

ROUTER_FIELDS = (
    "id", "name", "account", "domainid", "domain", "zoneid", "zonename", "podid", "podname",
    "hostid", "hostname", "hypervisor", "state", "role", "version", "dns1", "dns2",
    "networkdomain", "gateway", "guestipaddress", "guestmacaddress", "guestnetmask",
    "guestnetworkid", "guestnetworkname", "publicip", "publicnetmask", "linklocalip",
    "isredundantrouter", "redundantstate", "requiresupgrade", "healthcheckfailed", "created",
)  # fmt: skip
RouterId = Annotated[UUIDStr, Param("the ID of the router", required=True, entity="DomainRouter")]


def _select() -> Select[Router, Network, Zone, Account, Domain, Host, Pod]:
    return (
        select(Router, Network, Zone, Account, Domain, Host, Pod)
        .join(Network, Network.id == Router.network_id)
        .join(Zone, Zone.id == Network.zone_id)
        .join(Account, Account.id == Network.account_id)
        .join(Domain, Domain.id == Network.domain_id)
        .outerjoin(Host, Host.id == Router.host_id)
        .outerjoin(Pod, Pod.id == Host.pod_id)
    )


def _item(ctx: Ctx, row: Any) -> dict[str, Any]:
    router, network, zone, account, domain, host, pod = row
    snat = ctx.session.scalar(
        select(PublicIpAddress.address).where(
            PublicIpAddress.network_id == network.id, PublicIpAddress.is_source_nat.is_(True)
        )
    )
    item: dict[str, Any] = {
        "id": router.uuid,
        "name": router.name,
        "account": account.name,
        "domainid": domain.uuid,
        "domain": domain.name,
        "zoneid": zone.uuid,
        "zonename": zone.name,
        "state": router.state,
        "role": "VIRTUAL_ROUTER",
        "version": __version__,
        "dns1": zone.dns1,
        "dns2": zone.dns2,
        "networkdomain": network.network_domain,
        "gateway": network.gateway,
        "guestipaddress": network.gateway,
        "guestnetmask": network.netmask or str(IPv4Network(network.cidr).netmask),
        "guestnetworkid": network.uuid,
        "guestnetworkname": network.name,
        "isredundantrouter": False,
        "redundantstate": "UNKNOWN",
        "requiresupgrade": False,
        "healthcheckfailed": router.last_error is not None,
        "created": to_wire(router.created),
    }
    if host is not None:
        item |= {"hostid": host.uuid, "hostname": host.name, "hypervisor": host.hypervisor_type}
    if pod is not None:
        item |= {"podid": pod.uuid, "podname": pod.name}
    if snat:
        item["publicip"] = snat
    return {k: v for k, v in item.items() if v is not None}


def render(ctx: Ctx, uuid: str) -> dict[str, Any]:
    row = ctx.session.execute(_select().where(Router.uuid == uuid)).one_or_none()
    if row is None:
        svc.find(ctx.session, uuid)  # NotFound
    return _item(ctx, row)


@command(
    "listRouters",
    kind=Kind.LIST,
    description="List routers.",
    response="router",
    roles=ADMINS,
    scoped=True,
    fields=ROUTER_FIELDS,
)
def list_routers(
    ctx: Ctx,
    id: Annotated[UUIDStr | None, Param("the ID of the router", entity="DomainRouter")] = None,
    name: Annotated[str | None, Param("the name of the router")] = None,
    networkid: Annotated[UUIDStr | None, Param("list by network id", entity="Network")] = None,
    hostid: Annotated[UUIDStr | None, Param("the host ID of the router", entity="Host")] = None,
    zoneid: Annotated[UUIDStr | None, Param("the Zone ID of the router", entity="Zone")] = None,
    state: Annotated[str | None, Param("the state of the router")] = None,
    keyword: Annotated[str | None, Param("List by keyword")] = None,
) -> Listing:
    stmt = _select().where(ctx.scope.where(Network.account_id, Domain.path))
    if id is not None:
        stmt = stmt.where(Router.uuid == id)
    if name is not None:
        stmt = stmt.where(Router.name == name)
    if networkid is not None:
        stmt = stmt.where(Network.uuid == networkid)
    if hostid is not None:
        stmt = stmt.where(Host.uuid == hostid)
    if zoneid is not None:
        stmt = stmt.where(Zone.uuid == zoneid)
    if state is not None:
        stmt = stmt.where(Router.state == state)
    if keyword:
        stmt = stmt.where(Router.name.contains(keyword))
    rows, count = ctx.page_rows(stmt.order_by(Router.id))
    return Listing([_item(ctx, row) for row in rows], count)


def _submit(ctx: Ctx, id: str, **params: Any) -> Submit:
    router = svc.find(ctx.session, id)
    return Submit(
        params={"id": router.uuid, **params},
        instance_type="DomainRouter",
        instance_id=router.uuid,
        resource_name=router.name,
    )


def _rendered(ctx: Ctx, id: str, **_: Any) -> dict[str, Any]:
    return render(ctx, id)


@command(
    "rebootRouter",
    kind=Kind.ASYNC,
    description="Starts a router.",
    response="router",
    roles=ADMINS,
    event="ROUTER.REBOOT",
    entity="DomainRouter",
    fields=ROUTER_FIELDS,
)
def reboot_router(
    ctx: Ctx,
    id: RouterId,
    forced: Annotated[bool, Param("Force reboot the router")] = False,
) -> Submit:
    return _submit(ctx, id)


def _reboot(rt: Runtime, id: str, **_: Any) -> None:
    svc.restart_router(rt, id)


reboot_router.prepare = _reboot
reboot_router.runs(_rendered)


@command(
    "stopRouter",
    kind=Kind.ASYNC,
    description="Stops a router.",
    response="router",
    roles=ADMINS,
    event="ROUTER.STOP",
    entity="DomainRouter",
    fields=ROUTER_FIELDS,
)
def stop_router(
    ctx: Ctx,
    id: RouterId,
    forced: Annotated[bool, Param("Force stop the VM")] = False,
) -> Submit:
    return _submit(ctx, id)


def _stop(rt: Runtime, id: str, **_: Any) -> None:
    svc.stop_router(rt, id)


stop_router.prepare = _stop
stop_router.runs(_rendered)


@command(
    "startRouter",
    kind=Kind.ASYNC,
    description="Starts a router.",
    response="router",
    roles=ADMINS,
    event="ROUTER.START",
    entity="DomainRouter",
    fields=ROUTER_FIELDS,
)
def start_router(ctx: Ctx, id: RouterId) -> Submit:
    return _submit(ctx, id)


def _start(rt: Runtime, id: str, **_: Any) -> None:
    svc.start_router(rt, id)


start_router.prepare = _start
start_router.runs(_rendered)


@command(
    "destroyRouter",
    kind=Kind.ASYNC,
    description="Destroys a router.",
    response="router",
    roles=ADMINS,
    event="ROUTER.DESTROY",
    entity="DomainRouter",
    fields=ROUTER_FIELDS,
)
def destroy_router(ctx: Ctx, id: RouterId) -> Submit:
    render_now = render(ctx, id)  # the row goes in prepare: answer with what it was
    return _submit(ctx, id, snapshot=render_now)


def _destroy(rt: Runtime, id: str, **_: Any) -> None:
    svc.destroy_router(rt, id)


@destroy_router.runs
def run_destroy_router(ctx: Ctx, id: str, snapshot: dict[str, Any]) -> dict[str, Any]:
    return {**snapshot, "state": "Destroyed"}


destroy_router.prepare = _destroy
