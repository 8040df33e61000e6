"""extractVolume: a signed, expiring download link to a copy of the volume
(services.storage.volume_extract)."""

from __future__ import annotations

from datetime import UTC
from typing import Annotated, Any

from cumulo.api.cloudstack.commands.template_transfer import EXTRACT_FIELDS
from cumulo.api.cloudstack.commands.uploads import base_url
from cumulo.api.cloudstack.registry import Kind, Param, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx, Submit
from cumulo.common.time import to_wire
from cumulo.db.models import Account
from cumulo.services.runtime import Runtime
from cumulo.services.storage import volume_extract, volumes


@command(
    "extractVolume",
    kind=Kind.ASYNC,
    description="Extracts volume",
    response="volume",
    event="VOLUME.EXTRACT",
    entity="Volume",
    fields=EXTRACT_FIELDS,
)
def extract_volume(
    ctx: Ctx,
    id: Annotated[UUIDStr, Param("the ID of the volume", required=True, entity="Volume")],
    mode: Annotated[
        str, Param("the mode of extraction - HTTP_DOWNLOAD or FTP_UPLOAD", required=True)
    ],
    zoneid: Annotated[
        UUIDStr,
        Param("the ID of the zone where the volume is located", required=True, entity="Zone"),
    ],
    url: Annotated[str | None, Param("the url to which the volume would be extracted")] = None,
) -> Submit:
    del url
    transfer = volume_extract.request(ctx.session, ctx.runtime, ctx.caller, id, zoneid, mode)
    volume = volumes.find(ctx.session, id)
    return Submit(
        params={"id": id, "extract": transfer.uuid, "base": base_url(ctx)},
        instance_type="Volume",
        instance_id=id,
        resource_name=volume.name,
    )


def _run(rt: Runtime, id: str, extract: str, base: str) -> None:
    del id, base
    volume_extract.run(rt, extract)


def _extracted(ctx: Ctx, id: str, extract: str, base: str) -> dict[str, Any]:
    volume = volumes.find(ctx.session, id)
    transfer = volume_extract.find(ctx.session, extract)
    expires = int(transfer.expires.replace(tzinfo=transfer.expires.tzinfo or UTC).timestamp())
    zone = volumes.zone_of(ctx.session, volume)
    owner = ctx.session.get_one(Account, volume.account_id)
    return {
        "id": volume.uuid,
        "name": volume.name,
        "extractId": transfer.uuid,
        "accountid": owner.uuid,
        "state": "DOWNLOAD_URL_CREATED",
        "status": "DOWNLOAD_URL_CREATED",
        "storagetype": "Image",
        "uploadpercentage": 100,
        "url": volume_extract.link(ctx.runtime.box, base, transfer.uuid, expires),
        "zoneid": zone.uuid,
        "zonename": zone.name,
        "extractMode": "HTTP_DOWNLOAD",
        "created": to_wire(transfer.created),
    }


extract_volume.prepare = _run
extract_volume.runs(_extracted)
