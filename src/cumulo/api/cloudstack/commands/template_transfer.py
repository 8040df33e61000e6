"""Moving templates and ISOs: copyTemplate/copyIso between zones, extractTemplate/extractIso
as a download link.

A copy is an Allocated copy in each target zone's image store, written with the request; the
job streams the bytes from a Ready copy this server holds (outside any transaction), checks
the checksum, and renames the file into place, exactly like a download. An extract answers
with a signed, expiring link on the management server (the same links hosts use), so nothing
is staged and no secret leaves the server.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from sqlalchemy import select

from cumulo.api.cloudstack.commands.templates import download, render_all
from cumulo.api.cloudstack.registry import CommandSpec, Kind, Param, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx, Submit
from cumulo.common.time import to_wire, utcnow
from cumulo.db.models import Account
from cumulo.db.models_images import Template, TemplateStoreRef
from cumulo.db.models_infra import Zone
from cumulo.services.catalog.offerings import find_zone
from cumulo.services.errors import ParamError, PermissionDenied
from cumulo.services.storage import links
from cumulo.services.storage import templates as svc

EXTRACT_TTL_S = 4 * 3600  # CloudStack's extract.url.expiration.interval default
EXTRACT_FIELDS = (
    "id",
    "name",
    "extractId",
    "accountid",
    "state",
    "status",
    "storagetype",
    "uploadpercentage",
    "url",
    "zoneid",
    "zonename",
    "extractMode",
    "created",
)


def _copy(
    ctx: Ctx,
    is_iso: bool,
    id: str,
    sourcezoneid: str | None,
    destzoneid: str | None,
    destzoneids: Sequence[str] | None,
) -> Submit:
    template = svc.find(ctx.session, id, is_iso=is_iso)
    svc.check_owner(ctx.caller, ctx.session, template)
    wanted = [*([destzoneid] if destzoneid else []), *(destzoneids or [])]
    targets = [find_zone(ctx.session, z) for z in wanted]
    if not targets:
        raise ParamError("Please specify destzoneid or destzoneids")
    if sourcezoneid is not None:
        source = find_zone(ctx.session, sourcezoneid)
    else:
        ready = ctx.session.scalar(
            select(TemplateStoreRef.zone_id).where(
                TemplateStoreRef.template_id == template.id, TemplateStoreRef.state == "Ready"
            )
        )
        if ready is None:
            raise ParamError(f"Template {template.name} is not ready in any zone")
        source = ctx.session.get_one(Zone, ready)
    svc.copy_to_zones(ctx.session, template, source, targets)
    return Submit(
        params={"id": template.uuid, "zones": [z.uuid for z in targets]},
        instance_type="Iso" if is_iso else "Template",
        instance_id=template.uuid,
        resource_name=template.name,
    )


def _copied(ctx: Ctx, id: str, zones: list[str]) -> dict[str, Any]:
    template = svc.find_any(ctx.session, id, is_iso=False) or svc.find_any(
        ctx.session, id, is_iso=True
    )
    if template is None:
        return {"id": id}
    items = [i for i in render_all(ctx, template) if i.get("zoneid") in zones]
    if (
        items
        and items[0].get("status", "").startswith(("Download", "Error", "Failed"))
        and not (items[0].get("isready"))
    ):
        raise ParamError(f"Failed to copy {template.name}: {items[0]['status']}")
    return items[0] if items else {"id": id}


def _with_copy(spec: CommandSpec) -> None:
    spec.prepare = lambda rt, id, zones: download(rt, id)
    spec.runs(_copied)


ZoneParams = Annotated[UUIDStr | None, Param("ID of the zone the template is being copied from.")]


@command(
    "copyTemplate",
    kind=Kind.ASYNC,
    description="Copies a template from one zone to another.",
    response="template",
    event="TEMPLATE.COPY",
    entity="VirtualMachineTemplate",
)
def copy_template(
    ctx: Ctx,
    id: Annotated[UUIDStr, Param("Template ID.", required=True, entity="VirtualMachineTemplate")],
    sourcezoneid: ZoneParams = None,
    destzoneid: Annotated[
        UUIDStr | None, Param("ID of the zone the template is being copied to.", entity="Zone")
    ] = None,
    destzoneids: Annotated[
        list[UUIDStr] | None,
        Param("A list of IDs of the zones that the template needs to be copied to.", entity="Zone"),
    ] = None,
) -> Submit:
    return _copy(ctx, False, id, sourcezoneid, destzoneid, destzoneids)


@command(
    "copyIso",
    kind=Kind.ASYNC,
    description="Copies an iso from one zone to another.",
    response="template",
    event="ISO.COPY",
    entity="Iso",
)
def copy_iso(
    ctx: Ctx,
    id: Annotated[UUIDStr, Param("Template ID.", required=True, entity="Iso")],
    sourcezoneid: ZoneParams = None,
    destzoneid: Annotated[
        UUIDStr | None, Param("ID of the zone the template is being copied to.", entity="Zone")
    ] = None,
    destzoneids: Annotated[
        list[UUIDStr] | None,
        Param("A list of IDs of the zones that the template needs to be copied to.", entity="Zone"),
    ] = None,
) -> Submit:
    return _copy(ctx, True, id, sourcezoneid, destzoneid, destzoneids)


_with_copy(copy_template)
_with_copy(copy_iso)


def _extract(
    ctx: Ctx, is_iso: bool, id: str, mode: str, zoneid: str | None, url: str | None
) -> Submit:
    template = svc.find(ctx.session, id, is_iso=is_iso)
    if mode.upper() != "HTTP_DOWNLOAD" or url:
        raise ParamError("Only HTTP_DOWNLOAD mode is supported: FTP upload is not")
    owner = ctx.session.get_one(Account, template.account_id)
    if not ctx.caller.is_root_admin:
        ctx.caller.check_account(owner)
        if not template.is_extractable:
            raise PermissionDenied(
                f"The {'ISO' if is_iso else 'template'} {template.name} is not extractable"
            )
    stmt = select(TemplateStoreRef).where(
        TemplateStoreRef.template_id == template.id, TemplateStoreRef.state == "Ready"
    )
    if zoneid is not None:
        stmt = stmt.where(TemplateStoreRef.zone_id == find_zone(ctx.session, zoneid).id)
    ref = ctx.session.scalars(stmt.order_by(TemplateStoreRef.id)).first()
    if ref is None:
        raise ParamError(f"{template.name} is not ready in the requested zone")
    zone = ctx.session.get_one(Zone, ref.zone_id)
    return Submit(
        params={"id": template.uuid, "zone": zone.uuid, "mode": "HTTP_DOWNLOAD"},
        instance_type="Iso" if is_iso else "Template",
        instance_id=template.uuid,
        resource_name=template.name,
    )


def _extracted(ctx: Ctx, id: str, zone: str, mode: str) -> dict[str, Any]:
    template = ctx.session.scalar(select(Template).where(Template.uuid == id))
    zone_row = ctx.session.scalar(select(Zone).where(Zone.uuid == zone))
    if template is None or zone_row is None:
        raise ParamError(f"Unable to find template with id {id}")
    api = ctx.runtime.settings.api
    link = links.template_link(ctx.runtime.box, template.uuid, EXTRACT_TTL_S)
    ctx.event_resource = (template.uuid, template.name)
    owner = ctx.session.get_one(Account, template.account_id)
    return {
        "id": template.uuid,
        "name": template.name,
        "extractId": template.uuid,
        "accountid": owner.uuid,
        "state": "DOWNLOAD_URL_CREATED",
        "status": "DOWNLOAD_URL_CREATED",
        "storagetype": "Image",
        "uploadpercentage": 100,
        "url": f"http://{api.host}:{api.port}{link}",
        "zoneid": zone_row.uuid,
        "zonename": zone_row.name,
        "extractMode": mode,
        "created": to_wire(utcnow()),
    }


@command(
    "extractTemplate",
    kind=Kind.ASYNC,
    description="Extracts a template",
    response="template",
    event="TEMPLATE.EXTRACT",
    entity="VirtualMachineTemplate",
    fields=EXTRACT_FIELDS,
)
def extract_template(
    ctx: Ctx,
    id: Annotated[
        UUIDStr, Param("the ID of the template", required=True, entity="VirtualMachineTemplate")
    ],
    mode: Annotated[
        str,
        Param("the mode of extraction - HTTP_DOWNLOAD or FTP_UPLOAD", required=True),
    ],
    zoneid: Annotated[
        UUIDStr | None,
        Param("the ID of the zone where the ISO is originally located", entity="Zone"),
    ] = None,
    url: Annotated[str | None, Param("the url to which the ISO would be extracted")] = None,
) -> Submit:
    return _extract(ctx, False, id, mode, zoneid, url)


@command(
    "extractIso",
    kind=Kind.ASYNC,
    description="Extracts an ISO",
    response="iso",
    event="ISO.EXTRACT",
    entity="Iso",
    fields=EXTRACT_FIELDS,
)
def extract_iso(
    ctx: Ctx,
    id: Annotated[UUIDStr, Param("the ID of the ISO file", required=True, entity="Iso")],
    mode: Annotated[
        str,
        Param("the mode of extraction - HTTP_DOWNLOAD or FTP_UPLOAD", required=True),
    ],
    zoneid: Annotated[
        UUIDStr | None,
        Param("the ID of the zone where the ISO is originally located", entity="Zone"),
    ] = None,
    url: Annotated[str | None, Param("the url to which the ISO would be extracted")] = None,
) -> Submit:
    return _extract(ctx, True, id, mode, zoneid, url)


extract_template.runs(_extracted)
extract_iso.runs(_extracted)
