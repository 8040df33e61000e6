"""getUploadParamsForVolume / getUploadParamsForTemplate / getUploadParamsForIso: uploads from
a user's machine (the dashboard's "Upload from this computer", or curl).

Each call writes the resource in its NotUploaded state and answers ``getuploadparams``: the
postURL on this management server, and the metadata, expiry and signature the POST carries
(services.storage.browser_uploads).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from cumulo.api.cloudstack.commands.templates import (
    Account,
    Checksum,
    Details,
    DomainId,
    OsTypeId,
    ProjectId,
    details_of,
)
from cumulo.api.cloudstack.registry import Kind, Param, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx
from cumulo.services.catalog.owners import resolve_owner
from cumulo.services.storage import browser_uploads
from cumulo.services.storage import templates as svc

FIELDS = ("id", "postURL", "metadata", "expires", "signature")
Zone = Annotated[
    UUIDStr, Param("the ID of the zone the upload goes to", required=True, entity="Zone")
]
Name = Annotated[str, Param("the name of the volume/template/iso", required=True)]
DisplayText = Annotated[
    str | None, Param("the display text of the template/iso, defaults to name", length=4096)
]
Format = Annotated[
    str, Param("the format for the volume/template/iso: QCOW2, RAW, VHD, OVA...", required=True)
]


def base_url(ctx: Ctx) -> str:
    """This server as the caller reached it (the postURL must be the dashboard's origin); the
    configured API address for calls that arrived without one (the integration port)."""
    req = ctx.request
    base = getattr(req, "base_url", "") if not getattr(req, "integration", False) else ""
    if base and urlsplit(base).hostname:
        return str(base).rstrip("/")
    api = ctx.runtime.settings.api
    host = f"[{api.host}]" if ":" in api.host else api.host
    return f"http://{host}:{api.port}"


@command(
    "getUploadParamsForVolume",
    kind=Kind.SYNC,
    description="Upload a data disk to the cloudstack cloud.",
    response="getuploadparams",
    event="VOLUME.UPLOAD",
    entity="Volume",
    fields=FIELDS,
)
def get_upload_params_for_volume(
    ctx: Ctx,
    name: Name,
    zoneid: Zone,
    format: Format,
    checksum: Annotated[str | None, Param("the checksum value of this volume.")] = None,
    account: Account = None,
    domainid: DomainId = None,
    projectid: ProjectId = None,
    diskofferingid: Annotated[
        UUIDStr | None, Param("the ID of the disk offering.", entity="DiskOffering")
    ] = None,
    imagestoreuuid: Annotated[str | None, Param("Image store uuid")] = None,
) -> dict[str, str]:
    del diskofferingid, imagestoreuuid
    owner = resolve_owner(ctx.session, ctx.caller, account, domainid, projectid)
    params = browser_uploads.for_volume(
        ctx.session, ctx.runtime, ctx.caller, owner, base_url(ctx), name, zoneid, format, checksum
    )
    ctx.event_resource = (params.id, name)
    return params.render()


def _template(ctx: Ctx, reg: svc.Registration, account: str | None, domainid: str | None,
              projectid: str | None) -> dict[str, str]:  # fmt: skip
    owner = resolve_owner(ctx.session, ctx.caller, account, domainid, projectid)
    params = browser_uploads.for_template(
        ctx.session, ctx.runtime, ctx.caller, owner, base_url(ctx), reg
    )
    ctx.event_resource = (params.id, reg.name)
    return params.render()


@command(
    "getUploadParamsForTemplate",
    kind=Kind.SYNC,
    description="upload an existing template into the CloudStack cloud.",
    response="getuploadparams",
    event="TEMPLATE.CREATE",
    entity="VirtualMachineTemplate",
    fields=FIELDS,
)
def get_upload_params_for_template(
    ctx: Ctx,
    name: Name,
    zoneid: Zone,
    format: Format,
    hypervisor: Annotated[str, Param("the target hypervisor for the template", required=True)],
    displaytext: DisplayText = None,
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
) -> dict[str, str]:
    reg = svc.Registration(
        is_iso=False,
        name=name,
        display_text=displaytext or name,
        url="",
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
    return _template(ctx, reg, account, domainid, projectid)


@command(
    "getUploadParamsForIso",
    kind=Kind.SYNC,
    description="upload an existing ISO into the CloudStack cloud.",
    response="getuploadparams",
    event="ISO.CREATE",
    entity="Iso",
    fields=FIELDS,
)
def get_upload_params_for_iso(
    ctx: Ctx,
    name: Name,
    zoneid: Zone,
    displaytext: DisplayText = None,
    bootable: Annotated[bool, Param("true if this ISO is bootable (true by default)")] = True,
    ostypeid: OsTypeId = None,
    checksum: Checksum = None,
    ispublic: Annotated[bool, Param("true if the ISO is available to all accounts")] = False,
    isfeatured: Annotated[bool, Param("true if you want this ISO to be featured")] = False,
    isextractable: Annotated[
        bool, Param("true if the ISO or its derivatives are extractable")
    ] = False,
    account: Account = None,
    domainid: DomainId = None,
    projectid: ProjectId = None,
) -> dict[str, str]:
    reg = svc.Registration(
        is_iso=True,
        name=name,
        display_text=displaytext or name,
        url="",
        zone_uuid=zoneid,
        format="ISO",
        hypervisor=None,
        os_type_uuid=ostypeid,
        checksum=checksum,
        is_public=ispublic,
        is_featured=isfeatured,
        is_extractable=isextractable,
        bootable=bootable,
    )
    return _template(ctx, reg, account, domainid, projectid)
