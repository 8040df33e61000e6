"""uploadVolume: a volume whose first bytes come from a URL, through secondary storage.

The request writes the volume row in UploadOp (counted as one ``volume``; its size is not
known yet, so ``primary_storage`` is counted when the download completes). The job streams
the URL into the zone's image store through the staged writer (checksummed, never a partial
file at the final path) and then moves the volume to Uploaded with its virtual size, or to
UploadError with the reason and no file. The first attach copies the file onto a pool
(``volume_ops``) and removes it from the image store.
"""

from __future__ import annotations

import struct

from sqlalchemy.orm import Session

from cumulo.common.time import utcnow
from cumulo.db.models import Account
from cumulo.db.models_compute import Volume
from cumulo.db.models_infra import ImageStore
from cumulo.services import limits
from cumulo.services.access import Caller
from cumulo.services.compute.lifecycle import OperationFailed
from cumulo.services.config import ConfigStore
from cumulo.services.errors import ParamError, PermissionDenied, ResourceLimitExceeded
from cumulo.services.limits import ResourceType
from cumulo.services.runtime import Runtime
from cumulo.services.storage import download, snapshots, volumes
from cumulo.services.storage.imagestore import StoreWriter, backend_for
from cumulo.services.storage.volume_states import Event, State, transition

FORMATS = {"QCOW2": "qcow2", "RAW": "img", "VHD": "vhd", "OVA": "ova"}
MAX_UPLOAD = 64 << 40  # refuse anything claiming more than 64 TiB
QCOW2_MAGIC = b"QFI\xfb"


class _Head:
    """Passes bytes to the store's writer and keeps the first 32 (the image header)."""

    def __init__(self, writer: StoreWriter) -> None:
        self.writer = writer
        self.head = b""

    def write(self, data: bytes) -> None:
        if len(self.head) < 32:
            self.head += data[: 32 - len(self.head)]
        self.writer.write(data)

    def commit(self) -> None:
        self.writer.commit()

    def abort(self) -> None:
        self.writer.abort()


def virtual_size(head: bytes, file_size: int) -> int:
    """A qcow2 image's virtual size from its header (bytes 24-31), else the file's size."""
    if head[:4] == QCOW2_MAGIC and len(head) >= 32:
        (size,) = struct.unpack(">Q", head[24:32])
        if file_size <= size <= MAX_UPLOAD:
            return int(size)
    return file_size


def create(
    session: Session,
    caller: Caller,
    owner: Account,
    name: str,
    zone_uuid: str,
    fmt: str,
    url: str,
    checksum: str | None,
    config: ConfigStore,
) -> Volume:
    return waiting_volume(
        session, caller, owner, name, zone_uuid, fmt, checksum, config, State.UPLOAD_OP, url
    )


def waiting_volume(
    session: Session,
    caller: Caller,
    owner: Account,
    name: str,
    zone_uuid: str,
    fmt: str,
    checksum: str | None,
    config: ConfigStore,
    state: State,
    url: str | None = None,
) -> Volume:
    """A volume row whose bytes come later into the zone's image store (uploadVolume's
    UploadOp, a browser upload's NotUploaded): one ``volume`` counted, its upload path set."""
    if owner.state != "enabled" and not caller.is_root_admin:
        raise PermissionDenied(f"The owner of the volume, account {owner.name}, is disabled")
    ext = FORMATS.get(fmt.upper())
    if ext is None:
        raise ParamError(f"Unsupported volume format {fmt}: use one of {', '.join(FORMATS)}")
    try:
        if url is not None:
            download.check_url(url)
        if checksum:
            download.Checksum.parse(checksum)
    except ValueError as err:
        raise ParamError(str(err)) from None
    zone = volumes.zone_for(session, caller, zone_uuid)
    store = snapshots.zone_store(session, zone.id)
    volume = Volume(
        name=name,
        account_id=owner.id,
        domain_id=owner.domain_id,
        zone_id=zone.id,
        volume_type="DATADISK",
        state=state.value,
        size=0,
        format=fmt.upper(),
        upload_store_id=store.id,
        state_changed=utcnow(),
    )
    session.add(volume)
    limits.check_and_increment_many(session, owner.id, {ResourceType.volume: 1}, config=config)
    session.flush()
    volume.upload_path = f"volume/{owner.id}/{volume.id}/{volume.uuid}.{ext}"
    return volume


def run(rt: Runtime, volume_uuid: str, url: str, checksum: str | None) -> None:
    """Download into the image store; Uploaded with its size, or UploadError and no file."""
    with rt.db.read() as session:
        volume = volumes.find(session, volume_uuid)
        if volume.state != State.UPLOAD_OP:
            return
        store = session.get(ImageStore, volume.upload_store_id)
        assert store is not None and volume.upload_path is not None
        path = volume.upload_path
    writer = _Head(backend_for(store).open_writer(path))
    try:
        parsed = download.Checksum.parse(checksum) if checksum else None
        size = download.fetch(url, writer, checksum=parsed, max_bytes=MAX_UPLOAD)
    except download.DownloadFailed as err:
        _fail(rt, volume_uuid, str(err))
        raise OperationFailed(f"Failed to upload volume {volume_uuid}: {err}") from None
    with rt.db.write() as session:
        volume = volumes.find(session, volume_uuid)
        if volume.state != State.UPLOAD_OP:
            return
        reason = mark_uploaded(session, volume, writer.head, size)
        if reason is None:
            return
    _fail(rt, volume_uuid, reason)
    raise ResourceLimitExceeded(reason)


def mark_uploaded(session: Session, volume: Volume, head: bytes, size: int) -> str | None:
    """Count the image's virtual size as ``primary_storage`` and move the volume to
    Uploaded; the limit's text (nothing changed) when the owner is over it."""
    vsize = virtual_size(head, size)
    try:
        with session.begin_nested():
            limits.check_and_increment_many(
                session, volume.account_id, {ResourceType.primary_storage: vsize}
            )
    except ResourceLimitExceeded as err:
        return err.text
    transition(session, volume, Event.UPLOADED, size=vsize, error=None)
    return None


def abandon(rt: Runtime, volume_uuid: str) -> None:
    _fail(rt, volume_uuid, "the upload job was abandoned: the servers running it stopped")


def _fail(rt: Runtime, volume_uuid: str, reason: str) -> None:
    with rt.db.write() as session:
        volume = volumes.find(session, volume_uuid)
        if volume.state != State.UPLOAD_OP:
            return
        store = session.get(ImageStore, volume.upload_store_id) if volume.upload_store_id else None
        if store is not None and volume.upload_path:
            backend_for(store).delete(volume.upload_path)
        transition(
            session,
            volume,
            Event.UPLOAD_FAILED,
            error=reason,
            upload_path=None,
            upload_store_id=None,
        )
