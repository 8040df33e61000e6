"""Guest OS categories and types: listOsCategories, listOsTypes, addGuestOs, removeGuestOs."""

from __future__ import annotations

from typing import Annotated, Any

from sqlalchemy import select

from cumulo.api.cloudstack.registry import Kind, Param, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx, Listing, Submit, Success
from cumulo.db.models_catalog import GuestOsCategory, GuestOsType
from cumulo.services.access import ALL_ROLES, ROOT_ADMIN
from cumulo.services.catalog import ostypes as svc

OSTYPE_FIELDS = (
    "id",
    "name",
    "description",
    "oscategoryid",
    "oscategoryname",
    "isuserdefined",
    "fordisplay",
)


@command(
    "listOsCategories",
    kind=Kind.LIST,
    description="Lists all supported OS categories for this cloud.",
    response="oscategory",
    roles=ALL_ROLES,
    fields=("id", "name"),
)
def list_os_categories(
    ctx: Ctx,
    id: Annotated[UUIDStr | None, Param("list Os category by id")] = None,
    name: Annotated[str | None, Param("list os category by name", since="3.0.1")] = None,
) -> Listing:
    c = GuestOsCategory
    stmt = select(c.uuid, c.name)
    if id is not None:
        stmt = stmt.where(c.uuid == id)
    if name is not None:
        stmt = stmt.where(c.name == name)
    if ctx.paging.keyword:
        stmt = stmt.where(c.name.ilike(f"%{ctx.paging.keyword}%"))
    rows, total = ctx.page_records(stmt.order_by(c.id))
    return Listing([{"id": r.uuid, "name": r.name} for r in rows], total)


def ostype_response(row: Any) -> dict[str, Any]:
    """CloudStack shows the display name both as ``name`` and ``description``."""
    return {
        "id": row.uuid,
        "name": row.display_name,
        "description": row.display_name,
        "oscategoryid": row.categoryid,
        "oscategoryname": row.categoryname,
        "isuserdefined": row.is_user_defined,
        "fordisplay": row.for_display,
    }


def _ostypes() -> Any:
    t, c = GuestOsType, GuestOsCategory
    return (
        select(
            t.uuid,
            t.display_name,
            t.is_user_defined,
            t.for_display,
            c.uuid.label("categoryid"),
            c.name.label("categoryname"),
        )
        .join(c, c.id == t.category_id)
        .where(t.removed.is_(None))
    )


@command(
    "listOsTypes",
    kind=Kind.LIST,
    description="Lists all supported OS types for this cloud.",
    response="ostype",
    roles=ALL_ROLES,
    fields=OSTYPE_FIELDS,
)
def list_os_types(
    ctx: Ctx,
    id: Annotated[UUIDStr | None, Param("list by Os type Id")] = None,
    oscategoryid: Annotated[
        UUIDStr | None, Param("list by Os Category id", entity="GuestOsCategory")
    ] = None,
    description: Annotated[str | None, Param("list os by description", since="3.0.1")] = None,
    fordisplay: Annotated[
        bool | None,
        Param("list resources by display flag (only root admin may see hidden ones)"),
    ] = None,
) -> Listing:
    t, c = GuestOsType, GuestOsCategory
    stmt = _ostypes()
    if id is not None:
        stmt = stmt.where(t.uuid == id)
    if oscategoryid is not None:
        stmt = stmt.where(c.uuid == oscategoryid)
    if description is not None:
        stmt = stmt.where(t.display_name == description)
    if not ctx.caller.is_root_admin:
        fordisplay = True
    if fordisplay is not None:
        stmt = stmt.where(t.for_display.is_(fordisplay))
    if ctx.paging.keyword:
        stmt = stmt.where(t.display_name.ilike(f"%{ctx.paging.keyword}%"))
    rows, total = ctx.page_records(stmt.order_by(t.id))
    return Listing([ostype_response(r) for r in rows], total)


def _render(ctx: Ctx, os_type_id: int) -> dict[str, Any]:
    return ostype_response(
        ctx.session.execute(_ostypes().where(GuestOsType.id == os_type_id)).one()
    )


@command(
    "addGuestOs",
    kind=Kind.ASYNC_CREATE,
    description="Add a new guest OS type",
    response="ostype",
    roles=ROOT_ADMIN,
    event="GUEST.OS.ADD",
    entity="GuestOs",
    fields=OSTYPE_FIELDS,
    since="4.4.0",
)
def add_guest_os(
    ctx: Ctx,
    oscategoryid: Annotated[
        UUIDStr, Param("ID of Guest OS category", required=True, entity="GuestOsCategory")
    ],
    osdisplayname: Annotated[str, Param("Unique display name for Guest OS", required=True)],
    fordisplay: Annotated[
        bool, Param("whether this guest OS is available for end users", since="4.19.0")
    ] = True,
) -> Submit:
    """The row is written with the request (CloudStack's create phase); the job reports it."""
    category = svc.find_category(ctx.session, oscategoryid)
    os_type = svc.add_guest_os(ctx.session, category, osdisplayname, fordisplay)
    return Submit(
        params={"id": os_type.uuid},
        instance_type="GuestOs",
        created_id=os_type.uuid,
        resource_name=os_type.display_name,
    )


@add_guest_os.runs
def run_add_guest_os(ctx: Ctx, id: str) -> dict[str, Any]:
    return _render(ctx, svc.find_os_type(ctx.session, id).id)


@command(
    "removeGuestOs",
    kind=Kind.ASYNC,
    description="Removes a Guest OS from listing.",
    roles=ROOT_ADMIN,
    event="GUEST.OS.REMOVE",
    entity="GuestOs",
    since="4.4.0",
)
def remove_guest_os(
    ctx: Ctx, id: Annotated[UUIDStr, Param("ID of the guest OS", required=True)]
) -> Submit:
    """Refusals (unknown, built-in) are immediate; the job only marks the row removed."""
    os_type = svc.find_os_type(ctx.session, id)
    svc.check_removable(os_type)
    return Submit(
        params={"id": os_type.uuid},
        instance_type="GuestOs",
        instance_id=os_type.uuid,
        resource_name=os_type.display_name,
    )


@remove_guest_os.runs
def run_remove_guest_os(ctx: Ctx, id: str) -> Success:
    """Idempotent: a re-run after a crash finds the row already removed and succeeds."""
    svc.remove_guest_os(ctx.session, id)
    return Success()
