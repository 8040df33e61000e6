"""Domain commands: list, list children, create, update, delete."""

from __future__ import annotations

from typing import Annotated, Any

from sqlalchemy import ColumnElement, Select, exists, false, select
from sqlalchemy.orm import aliased

from cumulo.api.cloudstack.registry import Kind, Param, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx, Listing, Submit, Success
from cumulo.common.time import to_wire
from cumulo.db.models import Domain
from cumulo.services.access import ADMINS, find_domain
from cumulo.services.errors import ParamError
from cumulo.services.identity import domains as svc

DOMAIN_FIELDS = (
    "id",
    "name",
    "level",
    "parentdomainid",
    "parentdomainname",
    "haschild",
    "path",
    "state",
    "networkdomain",
    "created",
)
Parent = aliased(Domain)
Child = aliased(Domain)


def wire_path(path: str) -> str:
    """Domains store "/" and "/a/b/"; CloudStack shows "ROOT" and "ROOT/a/b"."""
    return "ROOT" + path.rstrip("/")


def domain_response(
    domain: Domain, parent_uuid: str | None, parent_name: str | None, has_child: bool
) -> dict[str, Any]:
    return {
        "id": domain.uuid,
        "name": domain.name,
        "level": domain.level,
        "parentdomainid": parent_uuid,
        "parentdomainname": parent_name,
        "haschild": bool(has_child),
        "path": wire_path(domain.path),
        "state": domain.state,
        "networkdomain": domain.network_domain,
        "created": to_wire(domain.created),
    }


def domains_select() -> Select[Domain, str | None, str | None, bool]:
    """Domains with their parent's id and name and whether they have live children."""
    has_child = exists().where(Child.parent_id == Domain.id, Child.removed.is_(None))
    return (
        select(Domain, Parent.uuid, Parent.name, has_child.label("haschild"))
        .outerjoin(Parent, Domain.parent_id == Parent.id)
        .where(Domain.removed.is_(None))
    )


def render_domain(ctx: Ctx, domain: Domain) -> dict[str, Any]:
    ctx.session.flush()
    row = ctx.session.execute(domains_select().where(Domain.id == domain.id)).one()
    return domain_response(*row._tuple())


def page_domains(ctx: Ctx, stmt: Select[Domain, str | None, str | None, bool]) -> Listing:
    if ctx.paging.keyword:
        stmt = stmt.where(Domain.name.ilike(f"%{ctx.paging.keyword}%"))
    rows, total = ctx.page_rows(stmt.order_by(Domain.path))
    return Listing([domain_response(*r) for r in rows], total)


def visible_domains(ctx: Ctx, id: str | None, listall: bool) -> ColumnElement[bool]:
    """listDomains: a root admin sees all; others their own domain, or its subtree if listall.

    A named domain is checked first (531 outside the caller's subtree).
    """
    if id is not None:
        ctx.caller.check_domain(find_domain(ctx.session, id))
        return Domain.uuid == id
    if ctx.caller.is_root_admin:
        return Domain.id.is_not(None)
    if not ctx.caller.is_domain_admin:
        return false()
    if listall:
        return Domain.path.startswith(ctx.caller.domain_path, autoescape=True)
    return Domain.id == ctx.caller.domain_id


# listDomains and listDomainChildren word these two alike.
ListAll = Annotated[
    bool,
    Param(
        "If set to false, list only resources belonging to the command's caller; if set "
        "to true - list resources that the caller is authorized to see. Default value is "
        "false"
    ),
]
ShowIcon = Annotated[bool | None, Param("flag to display the resource icon for domains")]


@command(
    "listDomains",
    kind=Kind.LIST,
    description="Lists domains and provides detailed information for listed domains",
    response="domain",
    roles=ADMINS,
    fields=DOMAIN_FIELDS,
    since="1.0",
)
def list_domains(
    ctx: Ctx,
    id: Annotated[UUIDStr | None, Param("List domain by domain ID.", entity="Domain")] = None,
    name: Annotated[str | None, Param("List domain by domain name.")] = None,
    level: Annotated[int | None, Param("List domains by domain level.")] = None,
    listall: ListAll = False,
    details: Annotated[
        list[str] | None,
        Param(
            "comma separated list of domain details requested, value can be a list of "
            "[ all, resource, min]"
        ),
    ] = None,
    showicon: ShowIcon = None,
) -> Listing:
    stmt = domains_select().where(visible_domains(ctx, id, listall))
    if name is not None:
        stmt = stmt.where(Domain.name == name)
    if level is not None:
        stmt = stmt.where(Domain.level == level)
    return page_domains(ctx, stmt)


@command(
    "listDomainChildren",
    kind=Kind.LIST,
    description="Lists all children domains belonging to a specified domain",
    response="domain",
    roles=ADMINS,
    fields=DOMAIN_FIELDS,
    since="1.0",
)
def list_domain_children(
    ctx: Ctx,
    id: Annotated[
        UUIDStr | None, Param("list children domain by parent domain ID.", entity="Domain")
    ] = None,
    name: Annotated[str | None, Param("list children domains by name")] = None,
    isrecursive: Annotated[
        bool,
        Param(
            'to return the entire tree, use the value "true". To return the first level '
            'children, use the value "false".'
        ),
    ] = False,
    listall: ListAll = False,
    showicon: ShowIcon = None,
) -> Listing:
    parent = (
        find_domain(ctx.session, id) if id else find_domain(ctx.session, ctx.caller.domain_uuid)
    )
    ctx.caller.check_domain(parent)
    stmt = domains_select().where(Domain.id != parent.id)
    if isrecursive or listall:
        stmt = stmt.where(Domain.path.startswith(parent.path, autoescape=True))
    else:
        stmt = stmt.where(Domain.parent_id == parent.id)
    if name is not None:
        stmt = stmt.where(Domain.name == name)
    return page_domains(ctx, stmt)


@command(
    "createDomain",
    description="Creates a domain",
    response="domain",
    roles=ADMINS,
    event="DOMAIN.CREATE",
    entity="Domain",
    fields=DOMAIN_FIELDS,
    since="1.0",
)
def create_domain(
    ctx: Ctx,
    name: Annotated[str, Param("creates domain with this name", required=True)],
    parentdomainid: Annotated[
        UUIDStr | None,
        Param(
            "assigns new domain a parent domain by domain ID of the parent.  If no parent "
            "domain is specified, the ROOT domain is assumed.",
            entity="Domain",
        ),
    ] = None,
    networkdomain: Annotated[str | None, Param("Network domain for networks in the domain")] = None,
    domainid: Annotated[
        str | None, Param("Domain UUID, required for adding domain from another Region")
    ] = None,
) -> dict[str, Any]:
    parent = find_domain(ctx.session, parentdomainid) if parentdomainid else _root(ctx)
    domain = svc.create_domain(ctx.session, ctx.caller, parent, name, networkdomain, domainid)
    return render_domain(ctx, domain)


def _root(ctx: Ctx) -> Domain:
    root = ctx.session.scalar(select(Domain).where(Domain.parent_id.is_(None)))
    assert root is not None
    return root


@command(
    "updateDomain",
    description="Updates a domain with a new name",
    response="domain",
    roles=ADMINS,
    event="DOMAIN.UPDATE",
    entity="Domain",
    fields=DOMAIN_FIELDS,
    since="2.0.0",
)
def update_domain(
    ctx: Ctx,
    id: Annotated[UUIDStr, Param("ID of domain to update", required=True, entity="Domain")],
    name: Annotated[str | None, Param("updates domain with this name")] = None,
    networkdomain: Annotated[
        str | None,
        Param(
            "Network domain for the domain's networks; empty string will update domainName "
            "with NULL value"
        ),
    ] = None,
) -> dict[str, Any]:
    domain = find_domain(ctx.session, id)
    if name is not None and name != domain.name:
        svc.check_may_change(ctx.caller, domain)
        svc.rename_domain(ctx.session, domain, name)
        # Cached callers carry their domain's path; a renamed subtree must not keep the old one.
        ctx.runtime.key_cache.forget_all()
    else:
        ctx.caller.check_domain(domain)
    if networkdomain is not None:
        svc.update_network_domain(domain, networkdomain)
    return render_domain(ctx, domain)


@command(
    "deleteDomain",
    kind=Kind.ASYNC,
    description="Deletes a specified domain",
    roles=ADMINS,
    event="DOMAIN.DELETE",
    entity="Domain",
    since="1.0",
)
def delete_domain(
    ctx: Ctx,
    id: Annotated[UUIDStr, Param("ID of domain to delete", required=True, entity="Domain")],
    cleanup: Annotated[
        bool,
        Param(
            "true if all domain resources (child domains, accounts) have to be cleaned up, "
            "false otherwise"
        ),
    ] = False,
) -> Submit:
    domain = find_domain(ctx.session, id)
    svc.check_may_change(ctx.caller, domain)
    svc.check_deletable(ctx.session, domain, cleanup)
    return Submit(
        params={"id": id, "cleanup": cleanup},
        instance_type="Domain",
        instance_id=domain.uuid,
        resource_name=domain.name,
    )


@delete_domain.runs
def run_delete_domain(ctx: Ctx, id: str, cleanup: bool) -> Success:
    """Checked again in the job: accounts may have appeared since the request."""
    domain = ctx.session.scalar(select(Domain).where(Domain.uuid == id))
    if domain is None:
        raise ParamError(f"Unable to find domain by id {id}")
    if domain.removed is None:
        svc.check_may_change(ctx.caller, domain)
        svc.delete_domain(ctx.session, domain, cleanup)
        ctx.runtime.key_cache.forget_all()
    return Success()
