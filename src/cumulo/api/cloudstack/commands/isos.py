"""ISOs: registerIso, listIsos, updateIso, deleteIso, updateIsoPermissions, listIsoPermissions.

An ISO is a template whose format is ISO (CloudStack keeps both in vm_template): everything
but the parameters and the object name ``iso`` is shared with commands/templates.py.
"""

from __future__ import annotations

from typing import Annotated, Any

from cumulo.api.cloudstack.commands import templates as tc
from cumulo.api.cloudstack.registry import Kind, Param, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx, Listing, Submit, Success
from cumulo.db.models_images import Template, TemplateStoreRef
from cumulo.services.catalog.owners import resolve_owner
from cumulo.services.storage import templates as svc

ISO_FIELDS = tuple(f for f in tc.TEMPLATE_FIELDS if f not in ("hypervisor", "passwordenabled"))
IsoId = Annotated[UUIDStr, Param("the ID of the ISO file", required=True, entity="Iso")]


@command(
    "registerIso",
    description="Registers an existing ISO into the CloudStack Cloud.",
    response="iso",
    event="ISO.CREATE",
    entity="Iso",
    fields=ISO_FIELDS,
)
def register_iso(
    ctx: Ctx,
    name: Annotated[str, Param("the name of the ISO", required=True)],
    url: Annotated[
        str, Param("the URL to where the ISO is currently being hosted", required=True, length=2048)
    ],
    zoneid: Annotated[
        str,
        Param(
            "the ID of the zone you wish to register the ISO to; -1 for all zones", required=True
        ),
    ],
    displaytext: Annotated[
        str | None, Param("the display text of the ISO, defaults to name", length=4096)
    ] = None,
    bootable: Annotated[
        bool, Param("true if this ISO is bootable. If not passed explicitly its assumed to be true")
    ] = True,
    ostypeid: tc.OsTypeId = None,
    checksum: tc.Checksum = None,
    ispublic: Annotated[
        bool, Param("true if you want to register the ISO to be publicly available to all users")
    ] = False,
    isfeatured: Annotated[bool, Param("true if you want this ISO to be featured")] = False,
    isextractable: Annotated[
        bool, Param("true if the ISO or its derivatives are extractable")
    ] = False,
    isdynamicallyscalable: Annotated[
        bool, Param("true if ISO contains XS/VMWare tools inorder to support dynamic scaling")
    ] = False,
    passwordenabled: Annotated[bool, Param("true if password reset feature is supported")] = False,
    account: tc.Account = None,
    domainid: tc.DomainId = None,
    projectid: tc.ProjectId = None,
) -> Listing:
    owner = resolve_owner(ctx.session, ctx.caller, account, domainid, projectid)
    reg = svc.Registration(
        is_iso=True,
        name=name,
        display_text=displaytext or name,
        url=url,
        zone_uuid=zoneid,
        format="ISO",
        hypervisor=None,
        os_type_uuid=ostypeid,
        checksum=checksum,
        is_public=ispublic,
        is_featured=isfeatured,
        is_extractable=isextractable,
        password_enabled=passwordenabled,
        is_dynamically_scalable=isdynamicallyscalable,
        bootable=bootable,
    )
    iso = svc.register(ctx.session, ctx.caller, owner, reg)
    tc.submit_download(ctx, "registerIso", iso)
    items = tc.render_all(ctx, iso)
    return Listing(items, len(items))


tc._with_download(register_iso)


@command(
    "listIsos",
    kind=Kind.LIST,
    description="Lists all available ISO files.",
    response="iso",
    entity="Iso",
    scoped=True,
    fields=ISO_FIELDS,
)
def list_isos(
    ctx: Ctx,
    isofilter: Annotated[
        str,
        Param(
            "possible values are featured, self, selfexecutable, sharedexecutable, executable, "
            "community and all"
        ),
    ] = "all",
    id: Annotated[UUIDStr | None, Param("list ISO by ID", entity="Iso")] = None,
    ids: Annotated[list[UUIDStr] | None, Param("the IDs of the ISOs")] = None,
    name: Annotated[str | None, Param("list all ISOs by name")] = None,
    zoneid: Annotated[UUIDStr | None, Param("the ID of the zone", entity="Zone")] = None,
    bootable: Annotated[bool | None, Param("true if the ISO is bootable, false otherwise")] = None,
    isready: Annotated[bool | None, Param("true if this ISO is ready to be deployed")] = None,
    ispublic: Annotated[
        bool | None, Param("true if the ISO is publicly available to all users")
    ] = None,
) -> Listing:
    extra: list[Any] = []
    if bootable is not None:
        extra.append(Template.bootable.is_(bootable))
    if ispublic is not None:
        extra.append(Template.is_public.is_(ispublic))
    if isready is not None:
        ready = TemplateStoreRef.state == svc.READY
        extra.append(ready if isready else ~ready)
    return tc.list_filters(
        ctx,
        is_iso=True,
        filter_name=isofilter,
        id=id,
        ids=ids,
        name=name,
        zoneid=zoneid,
        extra=extra,
    )


@command(
    "updateIso",
    description="Updates an ISO file.",
    response="iso",
    event="TEMPLATE.UPDATE",
    entity="Iso",
    fields=ISO_FIELDS,
)
def update_iso(
    ctx: Ctx,
    id: IsoId,
    name: Annotated[str | None, Param("the name of the image file")] = None,
    displaytext: Annotated[str | None, Param("the display text of the image", length=4096)] = None,
    ostypeid: tc.OsTypeId = None,
    bootable: Annotated[bool | None, Param("true if image is bootable, false otherwise")] = None,
    isdynamicallyscalable: Annotated[
        bool | None, Param("true if template/ISO contains XS/VMWare tools")
    ] = None,
    passwordenabled: Annotated[
        bool | None, Param("true if the image supports the password reset feature")
    ] = None,
) -> dict[str, Any]:
    iso = svc.find(ctx.session, id, is_iso=True)
    changes = tc.update_changes(
        name=name,
        display_text=displaytext,
        bootable=bootable,
        is_dynamically_scalable=isdynamicallyscalable,
        password_enabled=passwordenabled,
    )
    if ostypeid is not None:
        changes["os_type_uuid"] = ostypeid
    return tc.render_one(ctx, svc.update(ctx.session, ctx.caller, iso, changes))


@command(
    "updateIsoPermissions",
    description="Updates ISO permissions",
    event="TEMPLATE.UPDATE",
    entity="Iso",
)
def update_iso_permissions(
    ctx: Ctx,
    id: IsoId,
    ispublic: tc.PermPublic = None,
    isfeatured: tc.PermFeatured = None,
    isextractable: tc.PermExtractable = None,
    accounts: tc.PermAccounts = None,
    op: tc.PermOp = None,
    projectids: tc.PermProjects = None,
) -> Success:
    return tc.update_permissions(
        ctx,
        is_iso=True,
        id=id,
        ispublic=ispublic,
        isfeatured=isfeatured,
        isextractable=isextractable,
        accounts=accounts,
        op=op,
        projectids=projectids,
    )


@command(
    "listIsoPermissions",
    description="List ISO visibility and all accounts that have permissions to view this ISO.",
    response="templatepermission",
    entity="Iso",
    fields=("id", "ispublic", "domainid", "account", "projectids"),
)
def list_iso_permissions(ctx: Ctx, id: IsoId) -> dict[str, Any]:
    iso = svc.find(ctx.session, id, is_iso=True)
    svc.check_owner(ctx.caller, ctx.session, iso)
    return tc.permissions_response(ctx, iso)


@command(
    "deleteIso",
    kind=Kind.ASYNC,
    description="Deletes an ISO file.",
    event="ISO.DELETE",
    entity="Iso",
)
def delete_iso(
    ctx: Ctx,
    id: IsoId,
    zoneid: Annotated[
        UUIDStr | None, Param("the ID of the zone of the ISO file", entity="Zone")
    ] = None,
) -> Submit:
    return tc.submit_delete(ctx, is_iso=True, id=id, zoneid=zoneid, forced=False)


@delete_iso.runs
def _delete_iso(ctx: Ctx, id: str, zoneid: str | None = None, forced: bool = False) -> Success:
    return tc.run_delete(ctx, is_iso=True, id=id, zoneid=zoneid)
