"""VM snapshots: createVMSnapshot, listVMSnapshot, revertToVMSnapshot, deleteVMSnapshot.

The request writes the row after CloudStack's checks (``services.storage.vm_snapshots``);
the job asks the host holding the VM's disks to take, revert to or delete it. revertToVMSnapshot
answers with the VM, as CloudStack's does.
"""

from __future__ import annotations

from typing import Annotated, Any

from sqlalchemy import select

from cumulo.api.cloudstack.commands.vms import VM_FIELDS, render_vm
from cumulo.api.cloudstack.registry import Kind, Param, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx, Listing, Submit, Success
from cumulo.db.models_compute import VirtualMachine
from cumulo.db.models_vmsnapshots import VMSnapshot
from cumulo.services.compute import vms
from cumulo.services.errors import ParamError
from cumulo.services.runtime import Runtime
from cumulo.services.storage import vm_snapshots

VMSNAPSHOT_FIELDS = (
    "id",
    "name",
    "displayname",
    "description",
    "state",
    "type",
    "current",
    "parent",
    "parentName",
    "virtualmachineid",
    "virtualmachinename",
    "created",
    "account",
    "domainid",
    "domain",
    "domainpath",
    "projectid",
    "project",
    "zoneid",
    "zonename",
    "hypervisor",
    "tags",
)
VMSnapshotId = Annotated[
    UUIDStr, Param("The ID of the vm snapshot", required=True, entity="VMSnapshot")
]


def render_vm_snapshot(ctx: Ctx, uuid: str) -> dict[str, Any]:
    snap = ctx.session.scalar(select(VMSnapshot).where(VMSnapshot.uuid == uuid))
    if snap is None:
        raise ParamError(f"Unable to find the VM snapshot with id {uuid}")
    ctx.event_resource = (snap.uuid, snap.display_name)
    items = vm_snapshots.render(ctx.session, [snap.id])
    return items[0] if items else {"id": snap.uuid, "state": snap.state}


def _submit(snap: VMSnapshot, created: bool = False) -> Submit:
    return Submit(
        params={"id": snap.uuid},
        instance_type="VMSnapshot",
        instance_id=snap.uuid,
        created_id=snap.uuid if created else None,
        resource_name=snap.display_name,
    )


@command(
    "createVMSnapshot",
    kind=Kind.ASYNC_CREATE,
    description="Creates snapshot for a vm.",
    response="vmsnapshot",
    event="VMSNAPSHOT.CREATE",
    entity="VMSnapshot",
    fields=VMSNAPSHOT_FIELDS,
)
def create_vm_snapshot(
    ctx: Ctx,
    virtualmachineid: Annotated[UUIDStr, Param("The ID of the vm", required=True, entity="UserVm")],
    name: Annotated[str | None, Param("The display name of the snapshot")] = None,
    description: Annotated[str | None, Param("The description of the snapshot")] = None,
    snapshotmemory: Annotated[
        bool, Param("snapshot memory if true", name="snapshotmemory")
    ] = False,
    quiescevm: Annotated[bool, Param("quiesce vm if true", name="quiescevm")] = False,
) -> Submit:
    del quiescevm  # qcow2 internal snapshots of a running VM are taken paused: consistent
    vm = vms.find_for(ctx.session, ctx.caller, virtualmachineid)
    snap = vm_snapshots.create(
        ctx.session, vm, name, description, snapshotmemory, ctx.runtime.config
    )
    return _submit(snap, created=True)


def _take(rt: Runtime, id: str) -> None:
    vm_snapshots.take(rt, id)


def _abandoned(rt: Runtime, id: str, **_: Any) -> None:
    vm_snapshots.abandon(rt, id)


def _rendered(ctx: Ctx, id: str, **_: Any) -> dict[str, Any]:
    return render_vm_snapshot(ctx, id)


create_vm_snapshot.prepare = _take
create_vm_snapshot.on_abandon = _abandoned
create_vm_snapshot.runs(_rendered)


@command(
    "deleteVMSnapshot",
    kind=Kind.ASYNC,
    description="Deletes a vmsnapshot.",
    event="VMSNAPSHOT.DELETE",
    entity="VMSnapshot",
)
def delete_vm_snapshot(ctx: Ctx, vmsnapshotid: VMSnapshotId) -> Submit:
    snap = vm_snapshots.find_for(ctx.session, ctx.caller, vmsnapshotid)
    vm_snapshots.check_deletable(ctx.session, snap)
    return _submit(snap)


def _delete(rt: Runtime, id: str) -> None:
    vm_snapshots.delete(rt, id)


def _deleted(ctx: Ctx, id: str) -> Success:
    snap = ctx.session.scalar(select(VMSnapshot).where(VMSnapshot.uuid == id))
    if snap is not None:
        ctx.event_resource = (snap.uuid, snap.display_name)
    return Success()


delete_vm_snapshot.prepare = _delete
delete_vm_snapshot.on_abandon = _abandoned
delete_vm_snapshot.runs(_deleted)


@command(
    "revertToVMSnapshot",
    kind=Kind.ASYNC,
    description="Revert VM from a vmsnapshot.",
    response="virtualmachine",
    event="VMSNAPSHOT.REVERTTOVMSNAPSHOT",
    entity="VMSnapshot",
    fields=VM_FIELDS,
)
def revert_to_vm_snapshot(ctx: Ctx, vmsnapshotid: VMSnapshotId) -> Submit:
    snap = vm_snapshots.find_for(ctx.session, ctx.caller, vmsnapshotid)
    vm_snapshots.check_revert(ctx.session, snap)
    return _submit(snap)


def _revert(rt: Runtime, id: str) -> None:
    vm_snapshots.revert(rt, id)


def _reverted(ctx: Ctx, id: str) -> dict[str, Any]:
    snap = ctx.session.scalar(select(VMSnapshot).where(VMSnapshot.uuid == id))
    assert snap is not None
    vm = ctx.session.get(VirtualMachine, snap.vm_id)
    assert vm is not None
    rendered = render_vm(ctx, vm.uuid)
    ctx.event_resource = (snap.uuid, snap.display_name)
    return rendered


revert_to_vm_snapshot.prepare = _revert
revert_to_vm_snapshot.on_abandon = _abandoned
revert_to_vm_snapshot.runs(_reverted)


@command(
    "listVMSnapshot",
    kind=Kind.LIST,
    description="List virtual machine snapshot by conditions",
    response="vmSnapshot",
    scoped=True,
    fields=VMSNAPSHOT_FIELDS,
)
def list_vm_snapshot(
    ctx: Ctx,
    vmsnapshotid: Annotated[
        UUIDStr | None, Param("The ID of the VM snapshot", entity="VMSnapshot")
    ] = None,
    vmsnapshotids: Annotated[
        list[UUIDStr] | None,
        Param(
            "the IDs of the vm snapshots, mutually exclusive with vmsnapshotid", entity="VMSnapshot"
        ),
    ] = None,
    virtualmachineid: Annotated[UUIDStr | None, Param("the ID of the vm", entity="UserVm")] = None,
    name: Annotated[str | None, Param("lists snapshot by snapshot name or display name")] = None,
    state: Annotated[
        str | None,
        Param("state of the virtual machine snapshot"),
    ] = None,
    tags: Annotated[
        list[dict[str, str]] | None, Param("List resources by tags (key/value pairs)")
    ] = None,
    projectid: Annotated[UUIDStr | None, Param("list objects by project", entity="Project")] = None,
) -> Listing:
    if projectid is not None:
        return Listing([], 0)
    if vmsnapshotid is not None and vmsnapshotids:
        raise ParamError("vmsnapshotid and vmsnapshotids can not be given together")
    vf = vm_snapshots.VMSnapshotFilter(
        ids=[vmsnapshotid] if vmsnapshotid else list(vmsnapshotids or []),
        vm=virtualmachineid,
        name=name,
        state=state,
        keyword=ctx.paging.keyword,
        tags=tags,
    )
    page, total = ctx.page(vm_snapshots.page_select(vf, ctx.scope))
    return Listing(vm_snapshots.render(ctx.session, page), total)
