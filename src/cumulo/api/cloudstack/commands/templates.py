"""Templates: registerTemplate, listTemplates, updateTemplate, deleteTemplate, permissions.

registerTemplate is synchronous in CloudStack and replies at once, list-shaped (``count`` and
``template[]``, one entry per zone), with the status "Download in progress"; the download runs
in a job worker (the job's ``prepare`` step streams outside any transaction) and each zone's
copy ends Ready or in Error with the reason. ISOs share all of this (commands/isos.py).
CloudStack does not show a template's URL in its responses, and neither do we.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from sqlalchemy import or_

from cumulo.api.cloudstack.registry import CommandSpec, Kind, Param, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx, Listing, Submit, Success
from cumulo.common.time import to_wire
from cumulo.db.models import Domain
from cumulo.db.models_images import Template, TemplateStoreRef
from cumulo.db.models_infra import Zone
from cumulo.services.catalog.owners import resolve_owner
from cumulo.services.errors import ParamError
from cumulo.services.jobs import queue
from cumulo.services.runtime import Runtime
from cumulo.services.storage import templates as svc

TEMPLATE_FIELDS = (
    "id",
    "name",
    "displaytext",
    "ispublic",
    "isfeatured",
    "isextractable",
    "isready",
    "passwordenabled",
    "format",
    "ostypeid",
    "ostypename",
    "account",
    "accountid",
    "domain",
    "domainid",
    "zoneid",
    "zonename",
    "status",
    "size",
    "physicalsize",
    "templatetype",
    "hypervisor",
    "created",
    "checksum",
    "crossZones",
    "bootable",
    "sshkeyenabled",
    "isdynamicallyscalable",
    "requireshvm",
    "bits",
    "details",
    "tags",
)

Account = Annotated[
    str | None,
    Param("an optional accountName. Must be used with domainId."),
]
DomainId = Annotated[
    UUIDStr | None,
    Param(
        "an optional domainId. If the account parameter is used, domainId must also be used.",
        entity="Domain",
    ),
]
ProjectId = Annotated[UUIDStr | None, Param("Register to the project", entity="Project")]
ZoneId = Annotated[
    str,
    Param(
        "the ID of the zone the template is to be hosted on; -1 for all zones",
        required=True,
    ),
]
Url = Annotated[str, Param("the URL of where the template is hosted", required=True, length=2048)]
Checksum = Annotated[str | None, Param("the checksum value of this template")]
OsTypeId = Annotated[UUIDStr | None, Param("the ID of the OS Type", entity="GuestOS")]
Details = Annotated[
    list[dict[str, str]] | None,
    Param("Template details in key/value pairs using format details[i].keyname=keyvalue"),
]


def template_response(ctx: Ctx, row: Any) -> dict[str, Any]:
    """One template (or ISO) in one zone, from a ``svc.list_select()`` row."""
    t: Template = row[0]
    ref: TemplateStoreRef = row[1]
    body: dict[str, Any] = {
        "id": t.uuid,
        "name": t.name,
        "displaytext": t.display_text,
        "ispublic": t.is_public,
        "isfeatured": t.is_featured,
        "isextractable": t.is_extractable,
        "isready": ref.state == svc.READY,
        "passwordenabled": t.password_enabled,
        "format": t.format,
        "account": row.account,
        "accountid": row.accountid,
        "domain": row.domain,
        "domainid": row.domainid,
        "zoneid": row.zoneid,
        "zonename": row.zonename,
        "status": svc.status_text(ref),
        "templatetype": t.template_type,
        "created": to_wire(t.created),
        "crossZones": t.cross_zones,
        "bootable": t.bootable,
        "sshkeyenabled": t.ssh_key_enabled,
        "isdynamicallyscalable": t.is_dynamically_scalable,
        "requireshvm": t.requires_hvm,
        "bits": t.bits,
        "hasannotations": False,
        "tags": [],
    }
    if not t.is_iso:
        body["hypervisor"] = t.hypervisor
    if row.ostypeid is not None:
        body["ostypeid"], body["ostypename"] = row.ostypeid, row.ostypename
    if ref.size is not None:
        body["size"], body["physicalsize"] = ref.size, ref.physical_size or ref.size
    if t.checksum:
        body["checksum"] = t.checksum
    if t.details:
        body["details"] = dict(t.details)
    return body


def render_all(ctx: Ctx, template: Template) -> list[dict[str, Any]]:
    ctx.session.flush()
    stmt = svc.list_select().where(Template.id == template.id).order_by(TemplateStoreRef.zone_id)
    ctx.event_resource = (template.uuid, template.name)
    return [template_response(ctx, row) for row in ctx.session.execute(stmt).all()]


def render_one(ctx: Ctx, template: Template) -> dict[str, Any]:
    items = render_all(ctx, template)
    if not items:
        raise ParamError(f"Unable to find template with id {template.uuid}")
    return items[0]


def details_of(details: list[dict[str, str]] | None) -> dict[str, str]:
    """``details[0].key=value`` maps arrive as one dict per index; merge them."""
    merged: dict[str, str] = {}
    for entry in details or []:
        merged.update(entry)
    return merged


def submit_download(ctx: Ctx, cmd: str, template: Template) -> None:
    """A job row whose ``prepare`` step downloads; it runs as the registering caller."""
    queue.submit(
        ctx.session,
        ctx.caller,
        cmd,
        {"id": template.uuid},
        instance_type="Iso" if template.is_iso else "Template",
        instance_id=template.uuid,
    )


def download(rt: Runtime, id: str) -> None:
    svc.download_all(rt.db, rt.config, id)


@command(
    "registerTemplate",
    description="Registers an existing template into the CloudStack cloud.",
    response="template",
    event="TEMPLATE.CREATE",
    entity="VirtualMachineTemplate",
    fields=TEMPLATE_FIELDS,
)
def register_template(
    ctx: Ctx,
    name: Annotated[str, Param("the name of the template", required=True)],
    url: Url,
    zoneid: ZoneId,
    format: Annotated[
        str,
        Param(
            "the format for the template. Possible values include QCOW2, RAW, VHD and OVA.",
            required=True,
        ),
    ],
    hypervisor: Annotated[str, Param("the target hypervisor for the template", required=True)],
    displaytext: Annotated[
        str | None, Param("the display text of the template, defaults to name", length=4096)
    ] = None,
    ostypeid: OsTypeId = None,
    checksum: Checksum = None,
    ispublic: Annotated[bool, Param("true if the template is available to all accounts")] = False,
    isfeatured: Annotated[bool, Param("true if this template is a featured template")] = False,
    isextractable: Annotated[
        bool, Param("true if the template or its derivatives are extractable")
    ] = False,
    passwordenabled: Annotated[
        bool, Param("true if the template supports the password reset feature")
    ] = False,
    sshkeyenabled: Annotated[
        bool, Param("true if the template supports the sshkey upload feature")
    ] = False,
    isdynamicallyscalable: Annotated[
        bool, Param("true if template contains XS/VMWare tools inorder to support dynamic scaling")
    ] = False,
    requireshvm: Annotated[bool, Param("true if this template requires HVM")] = True,
    bits: Annotated[int, Param("32 or 64 bits support. 64 by default")] = 64,
    details: Details = None,
    account: Account = None,
    domainid: DomainId = None,
    projectid: ProjectId = None,
) -> Listing:
    owner = resolve_owner(ctx.session, ctx.caller, account, domainid, projectid)
    reg = svc.Registration(
        is_iso=False,
        name=name,
        display_text=displaytext or name,
        url=url,
        zone_uuid=zoneid,
        format=format,
        hypervisor=hypervisor,
        os_type_uuid=ostypeid,
        checksum=checksum,
        is_public=ispublic,
        is_featured=isfeatured,
        is_extractable=isextractable,
        password_enabled=passwordenabled,
        ssh_key_enabled=sshkeyenabled,
        is_dynamically_scalable=isdynamicallyscalable,
        requires_hvm=requireshvm,
        bits=bits,
        details=details_of(details),
    )
    template = svc.register(ctx.session, ctx.caller, owner, reg)
    submit_download(ctx, "registerTemplate", template)
    items = render_all(ctx, template)
    return Listing(items, len(items))


def _downloaded(ctx: Ctx, id: str) -> dict[str, Any]:
    """The job body after the download: the template as it now stands (first zone)."""
    template = svc.find_any(ctx.session, id, is_iso=False) or svc.find_any(
        ctx.session, id, is_iso=True
    )
    if template is None or template.removed is not None:
        return {"id": id}
    return render_one(ctx, template)


def _abandoned(rt: Runtime, id: str) -> None:
    svc.give_up(rt.db, id, "the download was abandoned: the servers running it stopped")


def _with_download(spec: CommandSpec) -> None:
    spec.prepare = download
    spec.on_abandon = _abandoned
    spec.runs(_downloaded)


_with_download(register_template)


def list_filters(
    ctx: Ctx,
    *,
    is_iso: bool,
    filter_name: str,
    id: str | None,
    ids: Sequence[str] | None,
    name: str | None,
    zoneid: str | None,
    hypervisor: str | None = None,
    extra: list[Any] | None = None,
) -> Listing:
    stmt = svc.list_select().where(
        Template.is_iso == is_iso, svc.filter_where(ctx.caller, ctx.scope, filter_name.lower())
    )
    if id is not None:
        stmt = stmt.where(Template.uuid == id)
    if ids:
        stmt = stmt.where(Template.uuid.in_(ids))
    if name is not None:
        stmt = stmt.where(Template.name == name)
    if zoneid is not None:
        stmt = stmt.where(Zone.uuid == zoneid)
    if hypervisor is not None:
        stmt = stmt.where(Template.hypervisor.ilike(hypervisor))
    if ctx.paging.keyword:
        pattern = f"%{ctx.paging.keyword}%"
        stmt = stmt.where(or_(Template.name.ilike(pattern), Template.display_text.ilike(pattern)))
    for clause in extra or []:
        stmt = stmt.where(clause)
    rows, total = ctx.page_records(stmt.order_by(Template.id, TemplateStoreRef.zone_id))
    return Listing([template_response(ctx, row) for row in rows], total)


TemplateFilter = Annotated[
    str,
    Param(
        "possible values are featured, self, selfexecutable, sharedexecutable, executable, "
        "community and all",
        required=True,
    ),
]


@command(
    "listTemplates",
    kind=Kind.LIST,
    description="List all public, private, and privileged templates.",
    response="template",
    entity="VirtualMachineTemplate",
    scoped=True,
    fields=TEMPLATE_FIELDS,
)
def list_templates(
    ctx: Ctx,
    templatefilter: TemplateFilter,
    id: Annotated[UUIDStr | None, Param("the template ID", entity="VirtualMachineTemplate")] = None,
    ids: Annotated[list[UUIDStr] | None, Param("the IDs of the templates")] = None,
    name: Annotated[str | None, Param("the template name")] = None,
    zoneid: Annotated[UUIDStr | None, Param("list templates by zoneId", entity="Zone")] = None,
    hypervisor: Annotated[
        str | None, Param("the hypervisor for which to restrict the search")
    ] = None,
) -> Listing:
    return list_filters(
        ctx,
        is_iso=False,
        filter_name=templatefilter,
        id=id,
        ids=ids,
        name=name,
        zoneid=zoneid,
        hypervisor=hypervisor,
    )


def update_changes(**values: Any) -> dict[str, Any]:
    """Only the parameters that were sent change something."""
    return {k: v for k, v in values.items() if v is not None}


@command(
    "updateTemplate",
    description="Updates attributes of a template.",
    response="template",
    event="TEMPLATE.UPDATE",
    entity="VirtualMachineTemplate",
    fields=TEMPLATE_FIELDS,
)
def update_template(
    ctx: Ctx,
    id: Annotated[
        UUIDStr, Param("the ID of the image file", required=True, entity="VirtualMachineTemplate")
    ],
    name: Annotated[str | None, Param("the name of the image file")] = None,
    displaytext: Annotated[str | None, Param("the display text of the image", length=4096)] = None,
    ostypeid: OsTypeId = None,
    format: Annotated[str | None, Param("the format for the image")] = None,
    passwordenabled: Annotated[
        bool | None, Param("true if the image supports the password reset feature")
    ] = None,
    sshkeyenabled: Annotated[
        bool | None, Param("true if the template supports the sshkey upload feature")
    ] = None,
    isdynamicallyscalable: Annotated[
        bool | None, Param("true if template/ISO contains XS/VMWare tools")
    ] = None,
    bootable: Annotated[bool | None, Param("true if image is bootable, false otherwise")] = None,
    requireshvm: Annotated[bool | None, Param("true if the template requires HVM")] = None,
    details: Details = None,
) -> dict[str, Any]:
    template = svc.find(ctx.session, id, is_iso=False)
    changes = update_changes(
        name=name,
        display_text=displaytext,
        format=format,
        password_enabled=passwordenabled,
        ssh_key_enabled=sshkeyenabled,
        is_dynamically_scalable=isdynamicallyscalable,
        bootable=bootable,
        requires_hvm=requireshvm,
    )
    if ostypeid is not None:
        changes["os_type_uuid"] = ostypeid
    if details is not None:
        changes["details"] = details_of(details)
    return render_one(ctx, svc.update(ctx.session, ctx.caller, template, changes))


def update_permissions(
    ctx: Ctx,
    *,
    is_iso: bool,
    id: str,
    ispublic: bool | None,
    isfeatured: bool | None,
    isextractable: bool | None,
    accounts: list[str] | None,
    op: str | None,
    projectids: Sequence[str] | None,
) -> Success:
    if projectids:
        raise ParamError(f"Unable to find project by id {projectids[0]}")
    template = svc.find(ctx.session, id, is_iso=is_iso)
    svc.update_permissions(
        ctx.session,
        ctx.caller,
        template,
        is_public=ispublic,
        is_featured=isfeatured,
        is_extractable=isextractable,
        accounts=accounts,
        op=op.lower() if op else None,
    )
    ctx.event_resource = (template.uuid, template.name)
    return Success()


PermId = Annotated[
    UUIDStr, Param("the template ID", required=True, entity="VirtualMachineTemplate")
]
PermPublic = Annotated[bool | None, Param("true for public template/iso, false for private")]
PermFeatured = Annotated[bool | None, Param("true for featured template/iso (admins only)")]
PermExtractable = Annotated[bool | None, Param("true if the template/iso is extractable")]
PermAccounts = Annotated[
    list[str] | None,
    Param("a comma delimited list of accounts within caller's domain"),
]
PermOp = Annotated[str | None, Param("permission operator (add, remove, reset)")]
PermProjects = Annotated[list[UUIDStr] | None, Param("a comma delimited list of projects")]


@command(
    "updateTemplatePermissions",
    description="Updates a template visibility permissions. A public template is visible to "
    "all accounts within the same domain. A private template is visible only to the owner of "
    "the template. A privileged template is a private template with account permissions added.",
    event="TEMPLATE.UPDATE",
    entity="VirtualMachineTemplate",
)
def update_template_permissions(
    ctx: Ctx,
    id: PermId,
    ispublic: PermPublic = None,
    isfeatured: PermFeatured = None,
    isextractable: PermExtractable = None,
    accounts: PermAccounts = None,
    op: PermOp = None,
    projectids: PermProjects = None,
) -> Success:
    return update_permissions(
        ctx,
        is_iso=False,
        id=id,
        ispublic=ispublic,
        isfeatured=isfeatured,
        isextractable=isextractable,
        accounts=accounts,
        op=op,
        projectids=projectids,
    )


def permissions_response(ctx: Ctx, template: Template) -> dict[str, Any]:
    owner_domain = ctx.session.get(Domain, template.domain_id)
    assert owner_domain is not None
    return {
        "id": template.uuid,
        "ispublic": template.is_public,
        "domainid": owner_domain.uuid,
        "account": svc.permitted_accounts(ctx.session, template),
        "projectids": [],
    }


@command(
    "listTemplatePermissions",
    description="List template visibility and all accounts that have permissions to view "
    "this template.",
    response="templatepermission",
    entity="VirtualMachineTemplate",
    fields=("id", "ispublic", "domainid", "account", "projectids"),
)
def list_template_permissions(ctx: Ctx, id: PermId) -> dict[str, Any]:
    template = svc.find(ctx.session, id, is_iso=False)
    svc.check_owner(ctx.caller, ctx.session, template)
    return permissions_response(ctx, template)


def submit_delete(
    ctx: Ctx,
    *,
    is_iso: bool,
    id: str,
    zoneid: str | None,
    forced: bool,
) -> Submit:
    template = svc.find_any(ctx.session, id, is_iso=is_iso)
    if template is None:
        raise ParamError(f"Unable to find {'ISO' if is_iso else 'template'} with id {id}")
    svc.check_owner(ctx.caller, ctx.session, template)
    return Submit(
        params={"id": id, "zoneid": zoneid, "forced": forced},
        instance_type="Iso" if is_iso else "Template",
        instance_id=id,
        resource_name=template.name,
    )


def run_delete(ctx: Ctx, *, is_iso: bool, id: str, zoneid: str | None) -> Success:
    """Idempotent: a template already removed (a re-run after a crash) is simply done."""
    template = svc.find_any(ctx.session, id, is_iso=is_iso)
    if template is not None and template.removed is None:
        svc.delete(ctx.session, template, zoneid)
    return Success()


@command(
    "deleteTemplate",
    kind=Kind.ASYNC,
    description="Deletes a template from the system. All virtual machines using the deleted "
    "template will not be affected.",
    event="TEMPLATE.DELETE",
    entity="VirtualMachineTemplate",
)
def delete_template(
    ctx: Ctx,
    id: Annotated[
        UUIDStr, Param("the ID of the template", required=True, entity="VirtualMachineTemplate")
    ],
    zoneid: Annotated[
        UUIDStr | None, Param("the ID of zone of the template", entity="Zone")
    ] = None,
    forced: Annotated[bool, Param("Force delete a template.")] = False,
) -> Submit:
    return submit_delete(ctx, is_iso=False, id=id, zoneid=zoneid, forced=forced)


@delete_template.runs
def _delete_template(ctx: Ctx, id: str, zoneid: str | None = None, forced: bool = False) -> Success:
    return run_delete(ctx, is_iso=False, id=id, zoneid=zoneid)
