"""Templates made from a snapshot or from a stopped VM's volume (createTemplate).

The template row and its copy in the zone's image store are written in the request's
transaction (Allocated, counted against the owner's ``template`` limit); the job asks a host
to write the image (``ExportTemplate``: temporary name, rename when complete) and only then
marks the copy Ready with its size, counting ``secondary_storage``. A failure removes the
template again and gives its count back, so a failed createTemplate leaves nothing listed.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from cumulo.agentrpc.messages import ExportTemplate
from cumulo.common.ids import new_uuid
from cumulo.common.time import utcnow
from cumulo.db.models import Account
from cumulo.db.models_compute import VirtualMachine, Volume
from cumulo.db.models_images import Template, TemplateStoreRef
from cumulo.db.models_infra import Host, ImageStore, StoragePool
from cumulo.db.models_storage import Snapshot
from cumulo.services import limits
from cumulo.services.access import Caller
from cumulo.services.compute.lifecycle import OperationFailed, host_ref
from cumulo.services.errors import ParamError, ResourceLimitExceeded
from cumulo.services.limits import ResourceType
from cumulo.services.runtime import Runtime
from cumulo.services.storage import snapshots, templates, volume_ops
from cumulo.services.storage.imagestore import backend_for
from cumulo.services.storage.volume_states import State as VolumeState


@dataclass
class TemplateRequest:
    name: str
    display_text: str
    os_type_uuid: str | None
    is_public: bool = False
    is_featured: bool = False
    password_enabled: bool = False
    is_dynamically_scalable: bool = False
    bits: int = 64


def source_volume(session: Session, snap: Snapshot | None, volume: Volume | None) -> Volume:
    """Check the source and return the volume it comes from."""
    if (snap is None) == (volume is None):
        raise ParamError("Please specify exactly one of snapshotid and volumeid")
    if snap is not None:
        if snap.state != snapshots.State.BACKED_UP:
            raise ParamError(f"Snapshot {snap.name} is not backed up: it is in state {snap.state}")
        found = session.get(Volume, snap.volume_id)
        assert found is not None
        return found
    assert volume is not None
    if volume.state != VolumeState.READY or volume.path is None:
        raise ParamError(f"Volume {volume.name} is not on primary storage (state {volume.state})")
    vm = session.get(VirtualMachine, volume.vm_id) if volume.vm_id else None
    if vm is not None and vm.state != "Stopped":
        raise ParamError(f"VM {vm.name} must be stopped to create a template from its volume")
    return volume


def create(
    session: Session,
    caller: Caller,
    owner: Account,
    req: TemplateRequest,
    snap: Snapshot | None,
    volume: Volume | None,
) -> Template:
    source = source_volume(session, snap, volume)
    store = snapshots.zone_store(session, source.zone_id)
    os_type = templates._os_type(session, req.os_type_uuid)
    vm = session.get(VirtualMachine, source.vm_id) if source.vm_id else None
    base = session.get(Template, source.template_id) if source.template_id else None
    limits.check_and_increment(session, owner.id, ResourceType.template)
    template = Template(
        name=req.name,
        display_text=req.display_text or req.name,
        format="QCOW2",
        hypervisor=(vm.hypervisor_type if vm else None) or (base.hypervisor if base else None),
        os_type_id=os_type.id if os_type else None,
        account_id=owner.id,
        domain_id=owner.domain_id,
        is_public=req.is_public,
        is_featured=req.is_featured and caller.is_root_admin,
        password_enabled=req.password_enabled,
        is_dynamically_scalable=req.is_dynamically_scalable,
        bits=req.bits,
        url="",
        details=dict(base.details or {}) if base else {},
    )
    session.add(template)
    session.flush()
    session.add(
        TemplateStoreRef(
            template_id=template.id,
            image_store_id=store.id,
            zone_id=source.zone_id,
            state=templates.ALLOCATED,
            install_path=f"template/tmpl/{owner.id}/{template.id}/{template.uuid}.qcow2",
        )
    )
    session.flush()
    return template


def _plan(
    rt: Runtime, template_uuid: str, snapshot_uuid: str | None, volume_uuid: str | None
) -> volume_ops.HostCall | None:
    with rt.db.write() as session:
        template = session.scalar(select(Template).where(Template.uuid == template_uuid))
        ref = (
            session.scalar(
                select(TemplateStoreRef).where(TemplateStoreRef.template_id == template.id)
            )
            if template is not None
            else None
        )
        if template is None or ref is None or ref.state == templates.READY:
            return None
        store = session.get(ImageStore, ref.image_store_id)
        assert store is not None
        source_url, path, pool = None, None, None
        if snapshot_uuid is not None:
            snap = snapshots.find(session, snapshot_uuid)
            source_url = volume_ops.export_url(session, snap)
            volume = session.get(Volume, snap.volume_id)
        else:
            volume = session.scalar(select(Volume).where(Volume.uuid == volume_uuid))
            path = volume.path if volume is not None else None
        pool = session.get(StoragePool, volume.pool_id) if volume and volume.pool_id else None
        host = volume_ops.host_for_pool(session, pool, None) if pool else _any_host(session, ref)
        ref.state = templates.DOWNLOADING
        command = ExportTemplate(
            request_id=new_uuid(),
            template_id=template.uuid,
            store_url=store.url,
            install_path=str(ref.install_path),
            path=path,
            source_url=source_url,
        )
        return volume_ops.HostCall(
            host_ref(session, host), command, volume_ops.agent_wait(rt, session)
        )


def _any_host(session: Session, ref: TemplateStoreRef) -> Host:
    host = session.scalar(
        select(Host).where(
            Host.zone_id == ref.zone_id,
            Host.removed.is_(None),
            Host.status == "Up",
            Host.type == "Routing",
        )
    )
    if host is None:
        raise OperationFailed("No host in the zone is up to write the template")
    return host


def export(
    rt: Runtime, template_uuid: str, snapshot_uuid: str | None, volume_uuid: str | None
) -> None:
    """Write the image; Ready with its size, or the template removed and its count back."""
    try:
        call = _plan(rt, template_uuid, snapshot_uuid, volume_uuid)
    except (OperationFailed, ParamError) as err:
        give_up(rt, template_uuid, err.text)
        raise
    if call is None:
        return
    done, why, result = volume_ops.send(rt, call)
    if not done:
        give_up(rt, template_uuid, why)
        raise OperationFailed(f"Failed to create template {template_uuid}: {why}")
    with rt.db.write() as session:
        template = session.scalar(select(Template).where(Template.uuid == template_uuid))
        assert template is not None
        ref = session.scalar(
            select(TemplateStoreRef).where(TemplateStoreRef.template_id == template.id)
        )
        if ref is None or ref.state != templates.DOWNLOADING:
            return
        size = int(str(result.get("size") or 0))
        physical = int(str(result.get("physical_size") or 0))
        over: str | None = None
        try:
            with session.begin_nested():
                limits.check_and_increment(
                    session, template.account_id, ResourceType.secondary_storage, size
                )
        except ResourceLimitExceeded as err:
            over = err.text
        else:
            ref.state, ref.download_pct = templates.READY, 100
            ref.size, ref.physical_size, template.size = size, physical, size
            ref.updated = utcnow()
    if over is not None:
        give_up(rt, template_uuid, over)
        raise ResourceLimitExceeded(over)


def give_up(rt: Runtime, template_uuid: str, reason: str) -> None:
    """The template goes away again: no file, no row listed, its count given back."""
    with rt.db.write() as session:
        template = session.scalar(select(Template).where(Template.uuid == template_uuid))
        if template is None or template.removed is not None:
            return
        for ref in session.scalars(
            select(TemplateStoreRef).where(TemplateStoreRef.template_id == template.id)
        ).all():
            store = session.get(ImageStore, ref.image_store_id)
            if store is not None and ref.install_path:
                backend_for(store).delete(ref.install_path)
            session.delete(ref)
        template.removed = utcnow()
        template.details = {**(template.details or {}), "error": reason}
        limits.decrement(session, template.account_id, ResourceType.template)
