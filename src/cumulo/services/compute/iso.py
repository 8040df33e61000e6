"""ISOs in a VM's CD-ROM drive: attachIso and detachIso.

A VM has at most one ISO (``vm_instances.iso_id``). On a running VM the host changes the
medium of the CD-ROM drive every VM gets (``ChangeIso``); on a stopped VM the ISO is only
recorded and the next start passes it as the CD-ROM disk (``start_disks``). The ISO is read
in place from the zone's image store, which every host mounts (a ``file://`` store); an ISO
only on another kind of store cannot be attached yet.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from sqlalchemy import select
from sqlalchemy.orm import Session

from cumulo.agentrpc.messages import ChangeIso, DiskSpec
from cumulo.common.ids import new_uuid
from cumulo.db.models_compute import VirtualMachine
from cumulo.db.models_images import Template, TemplateStoreRef
from cumulo.db.models_infra import Host, ImageStore
from cumulo.services.access import Caller
from cumulo.services.compute import lifecycle, vms
from cumulo.services.errors import ParamError, PermissionDenied
from cumulo.services.runtime import Runtime
from cumulo.services.storage import templates, volume_ops

CDROM_DEVICE = 3
_STATES = ("Running", "Stopped")


def _path_in_zone(session: Session, iso: Template, zone_id: int) -> str | None:
    """The ISO's file on a Ready copy in the zone's file store; None when there is none."""
    rows = session.execute(
        select(TemplateStoreRef.install_path, ImageStore.url)
        .join(ImageStore, ImageStore.id == TemplateStoreRef.image_store_id)
        .where(
            TemplateStoreRef.template_id == iso.id,
            TemplateStoreRef.zone_id == zone_id,
            TemplateStoreRef.state == "Ready",
            ImageStore.removed.is_(None),
        )
        .order_by(TemplateStoreRef.id)
    )
    for install_path, url in rows:
        parsed = urlparse(url)
        if parsed.scheme == "file" and install_path:
            return str(Path(unquote(parsed.path)) / install_path)
    return None


def check_attach(session: Session, caller: Caller, vm: VirtualMachine, iso_uuid: str) -> Template:
    """CloudStack's checks: one ISO per VM, a Running or Stopped VM, an ISO the caller may
    use (their own, public or featured, or shared with them) that is Ready in the VM's zone."""
    if vm.iso_id is not None:
        raise ParamError(f"An ISO is already attached to VM {vm.name}: detach it first")
    if vm.state not in _STATES:
        raise ParamError(f"Unable to attach an ISO to VM {vm.name}: it is in state {vm.state}")
    iso = templates.find(session, iso_uuid, is_iso=True)
    if not (iso.is_featured or templates.can_see(session, caller, iso)):
        raise PermissionDenied(
            f"Account {caller.account_name} does not have access to ISO {iso.name}"
        )
    if _path_in_zone(session, iso, vm.zone_id) is None:
        raise ParamError(
            f"Unable to attach ISO {iso.name}: it is not in Ready state in the VM's zone"
        )
    return iso


def check_detach(vm: VirtualMachine) -> None:
    if vm.iso_id is None:
        raise ParamError(f"No ISO is attached to VM {vm.name}")
    if vm.state not in _STATES:
        raise ParamError(f"Unable to detach the ISO of VM {vm.name}: it is in state {vm.state}")


def _host_call(
    rt: Runtime, session: Session, vm: VirtualMachine, path: str | None
) -> volume_ops.HostCall | None:
    """The medium change for a running VM; None for a stopped one (recorded only)."""
    if vm.state != "Running" or vm.host_id is None:
        return None
    host = session.get(Host, vm.host_id)
    if host is None:
        return None
    command = ChangeIso(request_id=new_uuid(), vm_name=vm.instance_name, path=path)
    return volume_ops.HostCall(
        lifecycle.host_ref(session, host), command, volume_ops.agent_wait(rt, session)
    )


def attach(rt: Runtime, vm_uuid: str, iso_uuid: str) -> None:
    """The job: insert the medium (running VM), then record the ISO; re-runs are harmless."""
    with rt.db.read() as session:
        vm = vms.find(session, vm_uuid)
        iso = templates.find(session, iso_uuid, is_iso=True)
        if vm.iso_id == iso.id:
            return
        path = _path_in_zone(session, iso, vm.zone_id)
        if path is None:
            raise ParamError(f"ISO {iso.name} is no longer Ready in the VM's zone")
        call = _host_call(rt, session, vm, path)
    _send(rt, call, f"attach ISO {iso.name}")
    with rt.db.write() as session:
        vm = vms.find(session, vm_uuid)
        vm.iso_id = iso.id


def detach(rt: Runtime, vm_uuid: str) -> None:
    """The job: eject (running VM), then forget the ISO."""
    with rt.db.read() as session:
        vm = vms.find(session, vm_uuid)
        if vm.iso_id is None:
            return
        call = _host_call(rt, session, vm, None)
    _send(rt, call, "eject the ISO")
    with rt.db.write() as session:
        vms.find(session, vm_uuid).iso_id = None


def _send(rt: Runtime, call: volume_ops.HostCall | None, what: str) -> None:
    if call is None:
        return
    ok, why, _ = volume_ops.send(rt, call)
    if not ok:
        raise lifecycle.OperationFailed(f"Failed to {what}: {why}")


def start_disks(session: Session, vm: VirtualMachine) -> list[DiskSpec]:
    """The CD-ROM disk a start passes when the VM has an ISO (none when it is gone)."""
    if vm.iso_id is None:
        return []
    iso = session.get(Template, vm.iso_id)
    path = _path_in_zone(session, iso, vm.zone_id) if iso is not None else None
    if iso is None or path is None:
        return []
    return [DiskSpec(iso.uuid, CDROM_DEVICE, path, int(iso.size or 0), None, "ISO")]
