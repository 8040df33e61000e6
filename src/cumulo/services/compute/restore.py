"""restoreVirtualMachine: a fresh root disk from the VM's template (or a new one).

The VM keeps its identity (name, NICs, key pairs, affinity groups, data); its root volume is
replaced in one transaction: the old one is removed (its pool allocation, volume count and
primary storage given back) and a new Allocated one takes its place (counted again, 532 when
a limit no longer allows it, with nothing changed), created on primary storage at the next
start as at deploy. A Running VM is stopped first and started again afterwards; a template
with passwords enabled gives the VM a new password, shown once in the job's result.

The job carries the root volume the request saw, so a job resumed after a crash replaces the
disk only if that volume is still the VM's root, then finishes the restart.
"""

from __future__ import annotations

import logging

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cumulo.agentrpc.hub import HubError
from cumulo.agentrpc.messages import DestroyVm
from cumulo.common.ids import new_password, new_uuid
from cumulo.common.secretbox import SecretBox
from cumulo.common.time import utcnow
from cumulo.db.models_compute import VirtualMachine, Volume
from cumulo.db.models_images import Template, TemplateStoreRef
from cumulo.db.models_infra import Host
from cumulo.services import limits
from cumulo.services.access import Caller
from cumulo.services.compute import lifecycle, planner, vms
from cumulo.services.compute.states import IllegalState, State
from cumulo.services.config import AGENT_WAIT, ConfigStore
from cumulo.services.errors import ParamError, PermissionDenied
from cumulo.services.limits import ResourceType
from cumulo.services.runtime import Runtime
from cumulo.services.storage import templates
from cumulo.services.usage import events as usage

log = logging.getLogger(__name__)
GIB = 1024**3


def check(session: Session, caller: Caller, vm: VirtualMachine, template_uuid: str | None) -> str:
    """431/531 unless the VM can be restored from the template; the template's uuid."""
    if vm.state not in (State.RUNNING, State.STOPPED):
        raise ParamError(f"Unable to restore VM {vm.name}: it is in state {vm.state}")
    if template_uuid is None:
        template = session.get(Template, vm.template_id)
        if template is None or template.removed is not None:
            raise ParamError(f"Unable to restore VM {vm.name}: its template no longer exists")
    else:
        template = templates.find(session, template_uuid, is_iso=False)
        if not templates.can_see(session, caller, template):
            raise PermissionDenied(
                f"Account {caller.account_name} cannot use template {template_uuid}"
            )
    hypervisor = (template.hypervisor or "").lower()
    if hypervisor and vm.hypervisor_type and hypervisor != vm.hypervisor_type.lower():
        raise ParamError(
            f"Template {template.name} is for {template.hypervisor}, not for the VM's "
            f"hypervisor {vm.hypervisor_type}"
        )
    ready = session.scalar(
        select(func.count())
        .select_from(TemplateStoreRef)
        .where(
            TemplateStoreRef.template_id == template.id,
            TemplateStoreRef.zone_id == vm.zone_id,
            TemplateStoreRef.state == "Ready",
        )
    )
    if not ready:
        raise ParamError(f"Template {template.name} is not ready in the VM's zone")
    return template.uuid


def _size(template: Template, old: Volume | None, root_gib: int | None) -> int:
    floor = max(int(template.size or 0), GIB)
    if root_gib is not None:
        if root_gib < 1 or root_gib * GIB < int(template.size or 0):
            raise ParamError(f"Root disk size {root_gib} GiB is too small for the template")
        return root_gib * GIB
    return max(old.size, floor) if old is not None else floor


def replace_root(
    session: Session,
    vm: VirtualMachine,
    template: Template,
    root_gib: int | None,
    *,
    box: SecretBox,
    config: ConfigStore,
) -> tuple[str, ...]:
    """Swap the Stopped VM's root volume for a fresh one; the old disk's paths to delete."""
    if vm.state != State.STOPPED:
        raise IllegalState(f"Unable to restore the VM: it is in state {vm.state}")
    old = vms.root_volume(session, vm)
    size = _size(template, old, root_gib)
    paths: tuple[str, ...] = ()
    if old is not None:
        if old.pool_id is not None:
            planner.release_pool(session, old.pool_id, old.size)
        if old.path and old.state != "Allocated":
            paths = (old.path,)
        old.state, old.removed = "Expunged", utcnow()
        usage.record_volume(session, usage.VOLUME_DELETE, old)
        limits.decrement(session, vm.account_id, ResourceType.volume)
        limits.decrement(session, vm.account_id, ResourceType.primary_storage, old.size)
    limits.check_and_increment(session, vm.account_id, ResourceType.volume, config=config)
    limits.check_and_increment(
        session, vm.account_id, ResourceType.primary_storage, size, config=config
    )
    root = Volume(
        name=f"ROOT-{vm.id}",
        account_id=vm.account_id,
        domain_id=vm.domain_id,
        zone_id=vm.zone_id,
        vm_id=vm.id,
        device_id=0,
        volume_type="ROOT",
        state="Allocated",
        size=size,
        template_id=template.id,
        format=template.format,
    )
    session.add(root)
    vm.template_id, vm.guest_os_id = template.id, template.os_type_id
    vm.password = box.seal(new_password(12)) if template.password_enabled else None
    session.flush()
    usage.record_volume(session, usage.VOLUME_CREATE, root)
    return paths


def _clean_host(rt: Runtime, host_id: int | None, name: str, paths: tuple[str, ...]) -> None:
    """Delete the old disk on the host it was last used on (best effort: logged if not)."""
    if not paths or host_id is None:
        return
    with rt.db.read() as session:
        host = session.get(Host, host_id)
        if host is None:
            return
        ref, timeout = lifecycle.host_ref(session, host), float(rt.config.get(session, AGENT_WAIT))
    try:
        rt.hub.send(ref, DestroyVm(request_id=new_uuid(), name=name, disk_paths=paths), timeout)
    except HubError as err:
        log.warning("old root disk left on its host", extra={"host": ref.name, "err": str(err)})


def root_uuid(session: Session, vm: VirtualMachine) -> str | None:
    root = vms.root_volume(session, vm)
    return root.uuid if root is not None else None


def restore(
    rt: Runtime,
    vm_uuid: str,
    template_uuid: str,
    root_gib: int | None,
    restart: bool,
    old_root: str | None,
) -> None:
    """Stop (if running), replace the root disk, start again (if it ran).

    ``old_root`` is the root volume the request saw: once it is gone the disk was replaced by
    an earlier run of this job, which then only has the restart left to do.
    """
    with rt.db.read() as session:
        vm = vms.find(session, vm_uuid)
        state, replaced = vm.state, root_uuid(session, vm) != old_root
    if not replaced:
        if state in (State.RUNNING, State.STOPPING):
            lifecycle.stop(rt, vm_uuid)
        with rt.db.write() as session:
            vm = vms.find(session, vm_uuid)
            template = templates.find(session, template_uuid, is_iso=False)
            paths = replace_root(session, vm, template, root_gib, box=rt.box, config=rt.config)
            last, name = vm.last_host_id, vm.instance_name
        _clean_host(rt, last, name, paths)
    if restart:
        lifecycle.start(rt, vm_uuid)
