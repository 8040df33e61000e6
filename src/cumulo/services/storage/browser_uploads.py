"""Uploads from a user's machine (getUploadParamsForVolume/Template/Iso), as CloudStack has them.

The request writes the volume (NotUploaded) or the template/ISO with a NotUploaded copy in
the zone's image store, counts it against the owner's limits, and answers a postURL with an
HMAC signature over (transfer id, metadata, expiry). The client then POSTs the file there;
``receive`` checks the link in constant time, takes the transfer Pending -> InProgress with a
conditional UPDATE (a replay or a second POST gets 409), and streams the body through the
store's staged writer: nothing is visible until the checksum, the size bound and the format
sniff all passed. Any failure aborts the writer (no file, no temp file) and puts the resource
in UploadError with the reason. ``sweep`` marks links that expired unused UploadAbandoned and
gives their limits back, as CloudStack's upload monitor does.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cumulo.common.secretbox import SecretBox
from cumulo.common.time import utcnow
from cumulo.db.models import Account
from cumulo.db.models_compute import Volume
from cumulo.db.models_images import Template, TemplateStoreRef
from cumulo.db.models_infra import ImageStore
from cumulo.db.models_transfers import ImageTransfer
from cumulo.services import limits
from cumulo.services.access import Caller
from cumulo.services.config import ConfigKey, define
from cumulo.services.errors import ParamError, PermissionDenied
from cumulo.services.limits import ResourceType
from cumulo.services.runtime import Runtime
from cumulo.services.storage import download, templates, uploads, volumes
from cumulo.services.storage.imagestore import StoreUnavailable, StoreWriter, backend_for
from cumulo.services.storage.volume_states import Event, State, transition

PREFIX = "/upload/v1/"
PURPOSE = "browser-upload-v1"
NOT_UPLOADED, IN_PROGRESS = "NotUploaded", "UploadInProgress"
UPLOAD_ERROR, ABANDONED = "UploadError", "UploadAbandoned"
ISO_MAGIC_AT, ISO_MAGIC = 0x8001, b"CD001"
HEAD_BYTES = ISO_MAGIC_AT + len(ISO_MAGIC)
# An upload still InProgress this long after its link expired lost the server receiving it
# (a crash mid-body): the sweep puts it in UploadError and removes what it staged.
STALE_AFTER = timedelta(hours=24)
STALE_REASON = "the upload stopped: the server receiving it went away"

UPLOAD_TIMEOUT = define(
    ConfigKey(
        "upload.operation.timeout",
        "Advanced",
        "Integer",
        "60",
        "Time (in minutes) a browser upload link stays valid; unused, the upload is abandoned.",
        min=1,
    )
)
MAX_VOLUME_GB = define(
    ConfigKey(
        "max.upload.volume.size",
        "Storage",
        "Integer",
        "500",
        "The maximum size for an uploaded volume (in GB).",
        min=1,
    )
)
MAX_TEMPLATE_GB = templates.MAX_SIZE  # the same bound as a URL download


class Kind(enum.StrEnum):
    VOLUME = "Volume"
    TEMPLATE = "Template"
    ISO = "Iso"


class Refused(Exception):
    """The POST is refused with an HTTP status; ``text`` is safe to show the client."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status, self.text = status, text


@dataclass(frozen=True)
class Params:
    """The getuploadparams response (id is the volume's/template's id, as CloudStack)."""

    id: str
    post_url: str
    metadata: str
    expires: str
    signature: str

    def render(self) -> dict[str, str]:
        return {
            "id": self.id,
            "postURL": self.post_url,
            "metadata": self.metadata,
            "expires": self.expires,
            "signature": self.signature,
        }


def signature(box: SecretBox, transfer_uuid: str, metadata: str, expires: str) -> str:
    message = f"{transfer_uuid}\n{metadata}\n{expires}".encode()
    return hmac.new(box.derive(PURPOSE), message, hashlib.sha256).hexdigest()


def _wire_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def _issue(
    session: Session,
    box: SecretBox,
    base_url: str,
    kind: Kind,
    resource_uuid: str,
    owner: Account,
    store: ImageStore,
    path: str,
    fmt: str,
    checksum: str | None,
    max_bytes: int,
    ttl_min: int,
) -> Params:
    expires = utcnow() + timedelta(minutes=ttl_min)
    transfer = ImageTransfer(
        kind=kind.value,
        resource_uuid=resource_uuid,
        account_id=owner.id,
        image_store_id=store.id,
        path=path,
        format=fmt,
        checksum=checksum or None,
        max_bytes=max_bytes,
        expires=expires,
        state="Pending",
    )
    session.add(transfer)
    session.flush()
    exp = _wire_time(expires)
    metadata = f"{kind.value}:{resource_uuid}"
    sig = signature(box, transfer.uuid, metadata, exp)
    return Params(resource_uuid, f"{base_url}{PREFIX}{transfer.uuid}", metadata, exp, sig)


def _check_owner(caller: Caller, owner: Account) -> None:
    if owner.state != "enabled" and not caller.is_root_admin:
        raise PermissionDenied(f"The owner, account {owner.name}, is disabled")


def for_volume(
    session: Session,
    rt: Runtime,
    caller: Caller,
    owner: Account,
    base_url: str,
    name: str,
    zone_uuid: str,
    fmt: str,
    checksum: str | None,
) -> Params:
    """A NotUploaded volume (one ``volume`` counted) and the link its bytes go to."""
    volume = uploads.waiting_volume(
        session, caller, owner, name, zone_uuid, fmt, checksum, rt.config, State.NOT_UPLOADED
    )
    assert volume.upload_path is not None and volume.upload_store_id is not None
    store = session.get_one(ImageStore, volume.upload_store_id)
    max_bytes = int(rt.config.get(session, MAX_VOLUME_GB)) << 30
    ttl = int(rt.config.get(session, UPLOAD_TIMEOUT))
    return _issue(
        session, rt.box, base_url, Kind.VOLUME, volume.uuid, owner, store,
        volume.upload_path, fmt.upper(), checksum, max_bytes, ttl,
    )  # fmt: skip


def for_template(
    session: Session,
    rt: Runtime,
    caller: Caller,
    owner: Account,
    base_url: str,
    reg: templates.Registration,
) -> Params:
    """A template/ISO (one ``template`` counted) with one NotUploaded copy in the zone."""
    _check_owner(caller, owner)
    if reg.zone_uuid == "-1":
        raise ParamError("Please specify a single zone: an upload goes to one zone's image store")
    # The URL the template records is where its bytes come from: the upload link.
    template = templates.register(session, caller, owner, _with_url(reg, base_url))
    refs = list(
        session.scalars(
            select(TemplateStoreRef)
            .where(TemplateStoreRef.template_id == template.id)
            .order_by(TemplateStoreRef.id)
        )
    )
    ref = next((r for r in refs if _writable(session.get_one(ImageStore, r.image_store_id))), None)
    if ref is None:
        raise ParamError("Failed to find an image store this server can write in the zone")
    for extra in refs:  # one store receives the upload; others copy later, as copyTemplate
        if extra is not ref:
            session.delete(extra)
    ref.state = NOT_UPLOADED
    store = session.get_one(ImageStore, ref.image_store_id)
    assert ref.install_path is not None
    max_bytes = int(rt.config.get(session, MAX_TEMPLATE_GB)) << 30
    ttl = int(rt.config.get(session, UPLOAD_TIMEOUT))
    kind = Kind.ISO if reg.is_iso else Kind.TEMPLATE
    params = _issue(
        session, rt.box, base_url, kind, template.uuid, owner, store, ref.install_path,
        template.format, reg.checksum, max_bytes, ttl,
    )  # fmt: skip
    template.url = params.post_url
    return params


def _writable(store: ImageStore) -> bool:
    try:
        backend_for(store)
    except StoreUnavailable:
        return False
    return True


def _with_url(reg: templates.Registration, base_url: str) -> templates.Registration:
    return replace(reg, url=f"{base_url}{PREFIX}")


# --- receiving the POST ----------------------------------------------------------------------


@dataclass(frozen=True)
class Begun:
    transfer_id: int
    kind: Kind
    resource_uuid: str
    store: ImageStore
    path: str
    format: str
    checksum: str | None
    max_bytes: int


def _expired(expires: str) -> bool:
    try:
        when = datetime.strptime(expires, "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        return True
    return when.timestamp() < time.time()


def begin(
    rt: Runtime, transfer_uuid: str, metadata: str, expires: str, sig: str, declared: int | None
) -> Begun:
    """Check the link and claim the transfer (Pending -> InProgress), or Refused."""
    good = signature(rt.box, transfer_uuid, metadata, expires)
    if not hmac.compare_digest(good, sig):
        raise Refused(403, "signature validation failed")
    if _expired(expires):
        raise Refused(410, "the upload link has expired")
    with rt.db.write() as session:
        transfer = session.scalar(select(ImageTransfer).where(ImageTransfer.uuid == transfer_uuid))
        if transfer is None or transfer.kind == "Extract":
            raise Refused(404, "no such upload")
        if transfer.expires.replace(tzinfo=transfer.expires.tzinfo or UTC) < utcnow():
            raise Refused(410, "the upload link has expired")
        if declared is not None and declared > transfer.max_bytes + 65536:
            raise Refused(413, f"the upload is larger than the {transfer.max_bytes}-byte limit")
        if not _resource_waiting(session, transfer):
            raise Refused(409, "this upload link was already used")
        claimed = session.execute(
            update(ImageTransfer)
            .where(ImageTransfer.id == transfer.id, ImageTransfer.state == "Pending")
            .values(state="InProgress")
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        if not claimed:
            raise Refused(409, "this upload link was already used")
        _set_resource_state(session, transfer, IN_PROGRESS, None)
        store = session.get_one(ImageStore, transfer.image_store_id)
        session.expunge(store)
        return Begun(
            transfer.id, Kind(transfer.kind), transfer.resource_uuid, store, transfer.path,
            transfer.format, transfer.checksum, transfer.max_bytes,
        )  # fmt: skip


def _resource_waiting(session: Session, transfer: ImageTransfer) -> bool:
    if transfer.state != "Pending":
        return False
    if transfer.kind == Kind.VOLUME:
        volume = session.scalar(select(Volume).where(Volume.uuid == transfer.resource_uuid))
        return volume is not None and volume.state == State.NOT_UPLOADED
    ref = _template_ref(session, transfer)
    return ref is not None and ref.state == NOT_UPLOADED


def _template_ref(session: Session, transfer: ImageTransfer) -> TemplateStoreRef | None:
    return session.scalar(
        select(TemplateStoreRef)
        .join(Template, Template.id == TemplateStoreRef.template_id)
        .where(
            Template.uuid == transfer.resource_uuid,
            Template.removed.is_(None),
            TemplateStoreRef.image_store_id == transfer.image_store_id,
        )
    )


def _set_resource_state(
    session: Session, transfer: ImageTransfer, state: str, error: str | None
) -> None:
    if transfer.kind == Kind.VOLUME:
        volume = volumes.find(session, transfer.resource_uuid)
        event = {
            IN_PROGRESS: Event.UPLOAD_START,
            UPLOAD_ERROR: Event.UPLOAD_FAILED,
            ABANDONED: Event.UPLOAD_ABANDON,
        }[state]
        extra: dict[str, object] = {"error": error}
        if state != IN_PROGRESS:
            extra.update(upload_path=None, upload_store_id=None)
        transition(session, volume, event, **extra)
        return
    ref = _template_ref(session, transfer)
    if ref is not None:  # a failed copy is Error, as a failed download: its status says why
        ref.state = templates.ERROR if state == UPLOAD_ERROR else state
        ref.error, ref.updated = error, utcnow()


def sniff(head: bytes) -> str:
    """qcow2, iso or raw, from an image's first bytes."""
    if head[:4] == uploads.QCOW2_MAGIC:
        return "QCOW2"
    if head[ISO_MAGIC_AT:HEAD_BYTES] == ISO_MAGIC:
        return "ISO"
    return "RAW"


def _format_ok(declared: str, found: str) -> bool:
    if declared in ("QCOW2", "ISO"):
        return found == declared
    if declared == "RAW":
        return found != "QCOW2"
    return found != "QCOW2" or declared == "QCOW2"  # VHD, OVA...: at least not a qcow2


class _Sink:
    """Hashes, bounds and keeps the head of what goes to the store's writer."""

    def __init__(self, writer: StoreWriter, begun: Begun) -> None:
        self.writer, self.begun = writer, begun
        self.head = b""
        self.size = 0
        self.parsed = download.Checksum.parse(begun.checksum) if begun.checksum else None
        self.hash = hashlib.new(self.parsed.algorithm) if self.parsed else None

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.begun.max_bytes:
            raise Refused(413, f"the upload is larger than the {self.begun.max_bytes}-byte limit")
        if len(self.head) < HEAD_BYTES:
            self.head += data[: HEAD_BYTES - len(self.head)]
        if self.hash is not None:
            self.hash.update(data)
        self.writer.write(data)

    def verify(self) -> None:
        if self.size == 0:
            raise Refused(400, "the upload is empty")
        digest = self.hash.hexdigest() if self.hash is not None else ""
        if self.parsed is not None and not hmac.compare_digest(digest, self.parsed.hexdigest):
            raise Refused(400, "checksum mismatch: the uploaded file is not the declared one")
        found = sniff(self.head)
        if not _format_ok(self.begun.format, found):
            raise Refused(400, f"the file is {found}, not the declared format {self.begun.format}")


async def receive(rt: Runtime, begun: Begun, chunks: AsyncIterator[bytes]) -> None:
    """Stream ``chunks`` into the store; the resource is Uploaded/Ready or UploadError."""
    writer = backend_for(begun.store).open_writer(begun.path)
    sink = _Sink(writer, begun)
    try:
        async for chunk in chunks:
            if chunk:
                await asyncio.to_thread(sink.write, chunk)
        sink.verify()
        await asyncio.to_thread(writer.commit)
    except BaseException as err:
        # Synchronously: a cancelled task could not await a thread here.
        writer.abort()
        reason = err.text if isinstance(err, Refused) else f"the upload did not complete: {err!r}"
        if not fail(rt, begun, reason) and isinstance(err, Exception):
            # Swept as stale meanwhile (its staged file went with it): answered as a replay.
            raise Refused(409, STALE_REASON) from err
        raise
    await asyncio.to_thread(_done, rt, begun, sink)


def fail(rt: Runtime, begun: Begun, reason: str) -> bool:
    """UploadError with the reason; False if the transfer was no longer in progress."""
    with rt.db.write() as session:
        transfer = session.get_one(ImageTransfer, begun.transfer_id)
        if transfer.state != "InProgress":
            return False
        transfer.state, transfer.error = "Failed", reason
        _set_resource_state(session, transfer, UPLOAD_ERROR, reason)
        return True


def _done(rt: Runtime, begun: Begun, sink: _Sink) -> None:
    with rt.db.read() as session:
        live = session.get_one(ImageTransfer, begun.transfer_id).state == "InProgress"
    if not live:  # swept as stale meanwhile: the resource is in UploadError already
        backend_for(begun.store).delete(begun.path)
        raise Refused(409, STALE_REASON)
    if begun.kind == Kind.VOLUME:
        _volume_done(rt, begun, sink)
        return
    with rt.db.write() as session:
        transfer = session.get_one(ImageTransfer, begun.transfer_id)
        transfer.state = "Done"
        ref = _template_ref(session, transfer)
        if ref is None or ref.state != IN_PROGRESS:  # deleted while it uploaded
            backend_for(begun.store).delete(begun.path)
            return
        ref.state = templates.DOWNLOADING
        ref_id = ref.id
    # The same completion as a URL download: secondary storage counted, usage, events.
    templates._finish(rt.db, ref_id, sink.size, None)


def _volume_done(rt: Runtime, begun: Begun, sink: _Sink) -> None:
    with rt.db.write() as session:
        transfer = session.get_one(ImageTransfer, begun.transfer_id)
        volume = volumes.find(session, begun.resource_uuid)
        reason = uploads.mark_uploaded(session, volume, sink.head, sink.size)
        if reason is None:
            transfer.state = "Done"
            return
    backend_for(begun.store).delete(begun.path)
    if not fail(rt, begun, reason):
        raise Refused(409, STALE_REASON)
    raise Refused(413, reason)


# --- sweep -----------------------------------------------------------------------------------


def sweep(rt: Runtime) -> int:
    """Links that expired unused: the resource is UploadAbandoned and its limits given back."""
    n = 0
    with rt.db.write() as session:
        due = session.scalars(
            select(ImageTransfer).where(
                ImageTransfer.state == "Pending",
                ImageTransfer.kind != "Extract",
                ImageTransfer.expires < utcnow(),
            )
        ).all()
        for transfer in due:
            if _resource_waiting(session, transfer):
                _abandon(session, transfer)
                n += 1
            transfer.state = "Abandoned"
        stale = session.scalars(
            select(ImageTransfer).where(
                ImageTransfer.state == "InProgress",
                ImageTransfer.kind != "Extract",
                ImageTransfer.expires < utcnow() - STALE_AFTER,
            )
        ).all()
        for transfer in stale:  # the server receiving it died: no answer will ever come
            store = session.get_one(ImageStore, transfer.image_store_id)
            backend_for(store).delete(transfer.path)  # with what it staged beside the path
            transfer.state, transfer.error = "Failed", STALE_REASON
            _set_resource_state(session, transfer, UPLOAD_ERROR, STALE_REASON)
    return n


def _abandon(session: Session, transfer: ImageTransfer) -> None:
    if transfer.kind == Kind.VOLUME:
        volume = volumes.find(session, transfer.resource_uuid)
        _set_resource_state(session, transfer, ABANDONED, "the upload link expired unused")
        limits.decrement_many(session, volume.account_id, {ResourceType.volume: 1})
        volume.removed = utcnow()  # gone from lists; its count is already given back
        return
    _set_resource_state(session, transfer, ABANDONED, "the upload link expired unused")
    limits.decrement(session, transfer.account_id, ResourceType.template)
    template = session.scalar(select(Template).where(Template.uuid == transfer.resource_uuid))
    if template is not None:
        template.removed = utcnow()
