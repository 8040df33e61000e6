"""Image (secondary) store commands: add, list, update, delete. S3 comes with addImageStoreS3."""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any

from sqlalchemy import Select, select

from cumulo.api.cloudstack.registry import Kind, Param, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx, Listing, Success
from cumulo.db.models_infra import ImageStore, Zone
from cumulo.services.access import ROOT_ADMIN
from cumulo.services.infra import storage as storage_service

STORE_FIELDS = (
    "id",
    "name",
    "zoneid",
    "zonename",
    "url",
    "protocol",
    "providername",
    "scope",
    "readonly",
    "disksizetotal",
    "disksizeused",
)


@cache
def stores_select() -> Select[*tuple[Any, ...]]:
    return (
        select(ImageStore, Zone.uuid.label("zoneid"), Zone.name.label("zonename"))
        .outerjoin(Zone, Zone.id == ImageStore.zone_id)
        .where(ImageStore.removed.is_(None))
    )


def store_response(row: Any) -> dict[str, Any]:
    """Details (which may hold credentials) are never echoed."""
    store: ImageStore = row[0]
    return {
        "id": store.uuid,
        "name": store.name,
        "zoneid": row.zoneid,
        "zonename": row.zonename,
        "url": store.url,
        "protocol": store.protocol,
        "providername": store.provider,
        "scope": "ZONE" if store.zone_id is not None else "REGION",
        "readonly": store.readonly,
        "hasannotations": False,
    }


def render(ctx: Ctx, store: ImageStore) -> dict[str, Any]:
    ctx.session.flush()
    row = ctx.session.execute(stores_select().where(ImageStore.id == store.id)).one()
    return store_response(row)


@command(
    "addImageStore",
    description="Adds backup image store.",
    response="imagestore",
    roles=ROOT_ADMIN,
    entity="ImageStore",
    fields=STORE_FIELDS,
)
def add_image_store(
    ctx: Ctx,
    provider: Annotated[
        str, Param("the image store provider name (NFS or Directory here)", required=True)
    ],
    name: Annotated[str | None, Param("the name for the image store")] = None,
    url: Annotated[str | None, Param("the URL for the image store", length=2048)] = None,
    zoneid: Annotated[
        UUIDStr | None, Param("the Zone ID for the image store", entity="Zone")
    ] = None,
    details: Annotated[
        list[dict[str, str]] | None,
        Param(
            "the details for the image store. Example: "
            "details[0].key=accesskey&details[0].value=s389ddssaa"
        ),
    ] = None,
) -> dict[str, Any]:
    store = storage_service.add_image_store(
        ctx.session,
        provider=provider,
        url=url,
        name=name,
        zoneid=zoneid,
        details=storage_service.details_map(details),
    )
    return render(ctx, store)


@command(
    "listImageStores",
    kind=Kind.LIST,
    description="Lists image stores.",
    response="imagestore",
    roles=ROOT_ADMIN,
    fields=STORE_FIELDS,
)
def list_image_stores(
    ctx: Ctx,
    id: Annotated[UUIDStr | None, Param("the ID of the storage pool", entity="ImageStore")] = None,
    name: Annotated[str | None, Param("the name of the image store")] = None,
    zoneid: Annotated[
        UUIDStr | None, Param("the Zone ID for the image store", entity="Zone")
    ] = None,
    provider: Annotated[str | None, Param("the image store provider")] = None,
    protocol: Annotated[str | None, Param("the image store protocol")] = None,
    readonly: Annotated[
        bool | None, Param("read-only status of the image store", since="4.15")
    ] = None,
) -> Listing:
    stmt = stores_select()
    exact = {
        ImageStore.uuid: id,
        ImageStore.name: name,
        Zone.uuid: zoneid,
        ImageStore.readonly: readonly,
    }
    for column, value in exact.items():
        if value is not None:
            stmt = stmt.where(column == value)
    if provider is not None:
        stmt = stmt.where(ImageStore.provider.ilike(provider))
    if protocol is not None:
        stmt = stmt.where(ImageStore.protocol.ilike(protocol))
    if ctx.paging.keyword:
        stmt = stmt.where(ImageStore.name.ilike(f"%{ctx.paging.keyword}%"))
    rows, total = ctx.page_records(stmt.order_by(ImageStore.id))
    return Listing([store_response(r) for r in rows], total)


@command(
    "updateImageStore",
    description="Updates image store read-only status",
    response="imagestore",
    roles=ROOT_ADMIN,
    entity="ImageStore",
    fields=STORE_FIELDS,
    since="4.15.0",
)
def update_image_store(
    ctx: Ctx,
    id: Annotated[UUIDStr, Param("Image Store UUID", required=True, entity="ImageStore")],
    readonly: Annotated[
        bool | None,
        Param(
            "If set to true, it designates the corresponding image store to "
            "read-only, hence not considering them during storage migration"
        ),
    ] = None,
    name: Annotated[str | None, Param("The new name for the Image Store.")] = None,
) -> dict[str, Any]:
    store = storage_service.find_image_store(ctx.session, id)
    storage_service.update_image_store(store, readonly=readonly, name=name)
    return render(ctx, store)


@command(
    "deleteImageStore",
    description="Deletes an image store or Secondary Storage.",
    roles=ROOT_ADMIN,
    entity="ImageStore",
)
def delete_image_store(
    ctx: Ctx,
    id: Annotated[
        UUIDStr,
        Param("The image store ID or Secondary Storage ID.", required=True, entity="ImageStore"),
    ],
) -> Success:
    store = storage_service.find_image_store(ctx.session, id)
    storage_service.delete_image_store(store)
    return Success()


@command(
    "addSecondaryStorage",
    description="Adds secondary storage.",
    response="secondarystorage",
    roles=ROOT_ADMIN,
    entity="ImageStore",
    fields=STORE_FIELDS,
)
def add_secondary_storage(
    ctx: Ctx,
    url: Annotated[str, Param("the URL for the secondary storage", required=True, length=2048)],
    zoneid: Annotated[
        UUIDStr | None, Param("the Zone ID for the secondary storage", entity="Zone")
    ] = None,
) -> dict[str, Any]:
    """The pre-4.2 spelling of ``addImageStore provider=NFS`` that older deployment scripts
    still send; CloudStack answers it with the store under ``secondarystorage``."""
    store = storage_service.add_image_store(
        ctx.session, provider="NFS", url=url, name=None, zoneid=zoneid, details={}
    )
    return render(ctx, store)
