"""extractVolume: a copy of a volume in the image store, downloadable through a signed link.

The request checks the volume (a detached one or a stopped VM's, as CloudStack: a volume
attached to a running VM is refused) and writes an ``Extract`` transfer row. The job asks the
volume's host for the same export a snapshot uses (``BackupSnapshot``: written under a
temporary name, renamed when complete) while the volume is Snapshotting, so nothing resizes,
migrates or attaches it meanwhile. The answer's URL is a link on this management server,
signed with a key derived from the master key and compared in constant time, valid for
``extract.url.expiration.interval`` seconds; the sweep removes the copy once it expired.
S3 image stores (presigned URLs) are not handled here yet: their extract is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.orm import Session

from cumulo.agentrpc.messages import BackupSnapshot
from cumulo.common.ids import new_uuid
from cumulo.common.secretbox import SecretBox
from cumulo.common.time import utcnow
from cumulo.db.models_compute import VirtualMachine, Volume
from cumulo.db.models_infra import ImageStore, StoragePool
from cumulo.db.models_transfers import ImageTransfer
from cumulo.services.access import Caller
from cumulo.services.compute.lifecycle import OperationFailed, host_ref
from cumulo.services.config import ConfigKey, define
from cumulo.services.errors import ParamError, UnsupportedAction
from cumulo.services.runtime import Runtime
from cumulo.services.storage import snapshots, volume_ops, volumes
from cumulo.services.storage.imagestore import DirectoryStore, backend_for
from cumulo.services.storage.volume_states import Event, State, transition

PREFIX = "/extract/v1/"
PURPOSE = "volume-extract-v1"
KIND = "Extract"
EXPIRATION = define(
    ConfigKey(
        "extract.url.expiration.interval",
        "Advanced",
        "Integer",
        "14400",
        "The life of an extract URL after which it is deleted (in seconds).",
        min=1,
    )
)


def signature(box: SecretBox, transfer_uuid: str, expires: int) -> str:
    message = f"{transfer_uuid}\n{expires}".encode()
    return hmac.new(box.derive(PURPOSE), message, hashlib.sha256).hexdigest()


def link(box: SecretBox, base_url: str, transfer_uuid: str, expires: int) -> str:
    query = urlencode({"expires": expires, "signature": signature(box, transfer_uuid, expires)})
    return f"{base_url}{PREFIX}{transfer_uuid}?{query}"


def request(
    session: Session, rt: Runtime, caller: Caller, volume_uuid: str, zone_uuid: str, mode: str
) -> ImageTransfer:
    """Check the volume and write the Pending transfer; the export runs in the job."""
    if mode.upper() == "FTP_UPLOAD":
        raise UnsupportedAction("FTP_UPLOAD is not supported: use mode HTTP_DOWNLOAD")
    if mode.upper() != "HTTP_DOWNLOAD":
        raise ParamError(f"Invalid mode {mode}: use HTTP_DOWNLOAD")
    volume = volumes.find_for(session, caller, volume_uuid)
    zone = volumes.zone_for(session, caller, zone_uuid)
    if volume.zone_id != zone.id:
        raise ParamError(f"Volume {volume.name} is not in zone {zone.name}")
    if volume.state != State.READY or volume.pool_id is None:
        raise ParamError(
            f"Volume {volume.name} is in state {volume.state}: only a Ready volume can be extracted"
        )
    vm = session.get(VirtualMachine, volume.vm_id) if volume.vm_id else None
    if vm is not None and vm.state != "Stopped":
        raise ParamError(
            f"Volume {volume.name} is attached to VM {vm.display_name or vm.name} which is "
            f"{vm.state}: stop it to extract the volume"
        )
    store = snapshots.zone_store(session, zone.id)
    if not isinstance(backend_for(store), DirectoryStore):
        raise UnsupportedAction(f"Image store {store.name} cannot serve extracted volumes yet")
    transfer = ImageTransfer(
        kind=KIND,
        resource_uuid=volume.uuid,
        account_id=volume.account_id,
        image_store_id=store.id,
        path="",
        format="QCOW2",
        max_bytes=0,
        expires=utcnow() + timedelta(seconds=int(rt.config.get(session, EXPIRATION))),
        state="Pending",
    )
    session.add(transfer)
    session.flush()
    transfer.path = f"extract/{volume.account_id}/{volume.id}/{transfer.uuid}.qcow2"
    return transfer


def _begin(rt: Runtime, transfer_uuid: str) -> volume_ops.HostCall | None:
    with rt.db.write() as session:
        transfer = find(session, transfer_uuid)
        if transfer.state == "Done":
            return None
        volume = volumes.find(session, transfer.resource_uuid)
        pool = session.get(StoragePool, volume.pool_id) if volume.pool_id else None
        store = session.get_one(ImageStore, transfer.image_store_id)
        if pool is None:
            raise OperationFailed(f"Volume {volume.name} is no longer on primary storage")
        if volume.state != State.SNAPSHOTTING:
            transition(session, volume, Event.SNAPSHOT)
        transfer.state = "InProgress"
        command = BackupSnapshot(
            request_id=new_uuid(),
            snapshot_id=transfer.uuid,
            path=str(volume.path),
            store_url=store.url,
            install_path=transfer.path,
            vm_name=None,
        )
        vm = session.get(VirtualMachine, volume.vm_id) if volume.vm_id else None
        host = volume_ops.host_for_pool(session, pool, vm)
        wait = volume_ops.agent_wait(rt, session)
        return volume_ops.HostCall(host_ref(session, host), command, wait)


def find(session: Session, transfer_uuid: str) -> ImageTransfer:
    transfer = session.scalar(
        select(ImageTransfer).where(ImageTransfer.uuid == transfer_uuid, ImageTransfer.kind == KIND)
    )
    if transfer is None:
        raise ParamError(f"Unable to find extract {transfer_uuid}")
    return transfer


def run(rt: Runtime, transfer_uuid: str) -> None:
    """Export the volume into the image store; on failure no file and the volume Ready."""
    try:
        call = _begin(rt, transfer_uuid)
    except OperationFailed as err:
        _fail(rt, transfer_uuid, err.text)
        raise
    if call is None:
        return
    ok, why, _ = volume_ops.send(rt, call)
    if not ok:
        _fail(rt, transfer_uuid, why)
        raise OperationFailed(f"Failed to extract the volume: {why}")
    with rt.db.write() as session:
        transfer = find(session, transfer_uuid)
        ttl = int(rt.config.get(session, EXPIRATION))
        transfer.state, transfer.expires = "Done", utcnow() + timedelta(seconds=ttl)
        _volume_back(session, transfer, Event.SNAPSHOTTED)


def _volume_back(session: Session, transfer: ImageTransfer, event: Event) -> None:
    volume = session.scalar(select(Volume).where(Volume.uuid == transfer.resource_uuid))
    if volume is not None and volume.state == State.SNAPSHOTTING:
        transition(session, volume, event)


def _fail(rt: Runtime, transfer_uuid: str, reason: str) -> None:
    with rt.db.write() as session:
        transfer = find(session, transfer_uuid)
        if transfer.state == "Done":
            return
        transfer.state, transfer.error = "Failed", reason
        _volume_back(session, transfer, Event.SNAPSHOT_FAILED)
        store = session.get_one(ImageStore, transfer.image_store_id)
        path = transfer.path
    backend_for(store).delete(path)


def local_file(rt: Runtime, transfer_uuid: str, expires: str, sig: str) -> Path | None:
    """The extracted file a valid, unexpired link names; None for anything else."""
    try:
        when = int(expires)
    except ValueError:
        return None
    good = signature(rt.box, transfer_uuid, when)
    if not hmac.compare_digest(good, sig) or when < time.time():
        return None
    with rt.db.read() as session:
        transfer = session.scalar(
            select(ImageTransfer).where(
                ImageTransfer.uuid == transfer_uuid,
                ImageTransfer.kind == KIND,
                ImageTransfer.state == "Done",
            )
        )
        if transfer is None:
            return None
        backend = backend_for(session.get_one(ImageStore, transfer.image_store_id))
        path = transfer.path
    if not isinstance(backend, DirectoryStore):
        return None
    found = backend.local_path(path)
    return found if found.is_file() else None


def sweep(rt: Runtime) -> int:
    """Extracted copies whose link expired: the file goes, the row says Expired."""
    with rt.db.write() as session:
        due = session.scalars(
            select(ImageTransfer).where(
                ImageTransfer.kind == KIND,
                ImageTransfer.state == "Done",
                ImageTransfer.expires < utcnow(),
            )
        ).all()
        for transfer in due:
            backend_for(session.get_one(ImageStore, transfer.image_store_id)).delete(transfer.path)
            transfer.state = "Expired"
        return len(due)
