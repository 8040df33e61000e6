"""Changing a VM: updateVirtualMachine, changeServiceForVirtualMachine, scaleVirtualMachine,
restoreVirtualMachine, migrateVirtualMachine.

As in commands/vms.py, a request is checked in its own transaction (ids, access, states,
offerings, templates, target hosts) so a bad call is refused at once with nothing changed; the
jobs' ``prepare`` steps then do the work through ``services.compute`` in short transactions
around any host call, and their bodies render the VM as it now stands.
"""

from __future__ import annotations

from typing import Annotated, Any

from cumulo.api.cloudstack.commands.vms import VM_FIELDS, VmId, render_vm
from cumulo.api.cloudstack.registry import Kind, Param, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx, Submit
from cumulo.db.models_compute import VirtualMachine
from cumulo.services.access import ROOT_ADMIN
from cumulo.services.compute import lifecycle, migration, restore, scaling, vm_update, vms
from cumulo.services.errors import ParamError, PermissionDenied
from cumulo.services.runtime import Runtime

Details = Annotated[
    list[dict[str, str]] | None,
    Param(
        "name value pairs of custom parameters for cpu, memory and cpunumber. example "
        "details[i].name=value"
    ),
]
OfferingId = Annotated[
    UUIDStr,
    Param(
        "the ID of the service offering for the virtual machine",
        required=True,
        entity="ServiceOffering",
    ),
]


def _merged(details: list[dict[str, str]] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for entry in details or []:
        out.update(entry)
    return out


def _submit(vm: VirtualMachine, **params: Any) -> Submit:
    return Submit(
        params={"id": vm.uuid, **params},
        instance_type="VirtualMachine",
        instance_id=vm.uuid,
        resource_name=vm.name,
    )


def _rendered(ctx: Ctx, id: str, **_: Any) -> dict[str, Any]:
    return render_vm(ctx, id)


# --- updateVirtualMachine -------------------------------------------------------------------


@command(
    "updateVirtualMachine",
    kind=Kind.SYNC,
    description="Updates properties of a virtual machine. The VM has to be stopped and restarted "
    "for the new properties to take effect. UpdateVirtualMachine does not first check whether "
    "the VM is stopped. Therefore, stop the VM manually before issuing this call.",
    response="virtualmachine",
    event="VM.UPDATE",
    entity="VirtualMachine",
    fields=VM_FIELDS,
)
def update_virtual_machine(
    ctx: Ctx,
    id: VmId,
    displayname: Annotated[str | None, Param("user generated name")] = None,
    group: Annotated[str | None, Param("group of the virtual machine")] = None,
    haenable: Annotated[
        bool | None,
        Param("true if high-availability is enabled for the virtual machine, false otherwise"),
    ] = None,
    ostypeid: Annotated[
        UUIDStr | None,
        Param("the ID of the OS type that best represents this VM.", entity="GuestOS"),
    ] = None,
    userdata: Annotated[
        str | None,
        Param(
            "an optional binary data that can be sent to the virtual machine upon a successful "
            "deployment. This binary data must be base64 encoded before adding it to the request."
        ),
    ] = None,
    userdataid: Annotated[
        UUIDStr | None, Param("the ID of the userdata", entity="UserData", since="4.18")
    ] = None,
    displayvm: Annotated[
        bool | None,
        Param("an optional field, whether to the display the vm to the end user or not."),
    ] = None,
    isdynamicallyscalable: Annotated[
        bool | None,
        Param(
            "true if VM contains XS/VMWare tools inorder to support dynamic scaling of VM "
            "cpu/memory"
        ),
    ] = None,
    name: Annotated[
        str | None,
        Param(
            "new host name of the vm. The VM has to be stopped/started for this update to take "
            "affect",
            since="4.4",
        ),
    ] = None,
    details: Annotated[
        list[dict[str, str]] | None,
        Param("Details in key/value pairs. 'extraconfig' is not allowed to be passed in details."),
    ] = None,
    cleanupdetails: Annotated[
        bool,
        Param(
            "optional boolean field, which indicates if details should be cleaned up or not (if "
            "set to true, details removed for this resource, details field ignored; if false or "
            "not set, no action)"
        ),
    ] = False,
) -> dict[str, Any]:
    vm = vms.find_for(ctx.session, ctx.caller, id)
    if displayvm is not None and not ctx.caller.is_root_admin:
        raise PermissionDenied("Parameter displayvm can only be changed by a Root Admin")
    upd = vm_update.VmUpdate(
        display_name=displayname,
        group=group,
        ha=haenable,
        os_type_uuid=ostypeid,
        user_data=userdata,
        user_data_uuid=userdataid,
        display_vm=displayvm,
        name=name,
        details=_merged(details),
        cleanup_details=cleanupdetails,
        dynamically_scalable=isdynamicallyscalable,
    )
    vm_update.update(ctx.session, ctx.caller, vm, upd, ctx.runtime.config)
    return render_vm(ctx, vm.uuid)


# --- changeServiceForVirtualMachine and scaleVirtualMachine ----------------------------------


@command(
    "changeServiceForVirtualMachine",
    kind=Kind.SYNC,
    description="Changes the service offering for a virtual machine. The virtual machine must "
    'be in a "Stopped" state for this command to take effect.',
    response="virtualmachine",
    event="VM.UPGRADE",
    entity="VirtualMachine",
    fields=VM_FIELDS,
)
def change_service_for_virtual_machine(
    ctx: Ctx, id: VmId, serviceofferingid: OfferingId, details: Details = None
) -> dict[str, Any]:
    vm = vms.find_for(ctx.session, ctx.caller, id)
    scaling.lock(ctx.session, vm)
    size = scaling.requested_size(
        ctx.session, ctx.caller, vm.zone_id, serviceofferingid, _merged(details)
    )
    scaling.check_change(vm, size, live=False)
    scaling.apply(ctx.session, vm, size, ctx.runtime.config)
    return render_vm(ctx, vm.uuid)


@command(
    "scaleVirtualMachine",
    kind=Kind.ASYNC,
    description="Scales the virtual machine to a new service offering. This command also "
    "considers the volume size in the service offering or disk offering linked to the new "
    "service offering and apply all characteristics to the root volume.",
    response="virtualmachine",
    event="VM.UPGRADE",
    entity="VirtualMachine",
    fields=VM_FIELDS,
)
def scale_virtual_machine(
    ctx: Ctx, id: VmId, serviceofferingid: OfferingId, details: Details = None
) -> Submit:
    vm = vms.find_for(ctx.session, ctx.caller, id)
    size = scaling.requested_size(
        ctx.session, ctx.caller, vm.zone_id, serviceofferingid, _merged(details)
    )
    scaling.check_change(vm, size, live=True)
    return _submit(
        vm,
        offering=size.offering_id,
        cpunumber=size.cpu_number,
        cpuspeed=size.cpu_speed,
        memory=size.memory,
    )


def _scale(rt: Runtime, id: str, offering: int, cpunumber: int, cpuspeed: int, memory: int) -> None:
    """One transaction: counts and (for a Running VM) host capacity move with the size."""
    size = scaling.Size(offering, cpunumber, cpuspeed, memory)
    with rt.db.write() as session:
        vm = vms.find(session, id)
        scaling.lock(session, vm)
        if scaling.current(vm) == size:
            return  # a re-run after the change committed
        scaling.check_change(vm, size, live=True)
        scaling.apply(session, vm, size, rt.config)


scale_virtual_machine.prepare = _scale
scale_virtual_machine.runs(_rendered)


# --- restoreVirtualMachine ----------------------------------------------------------------


@command(
    "restoreVirtualMachine",
    kind=Kind.ASYNC,
    description="Restore a VM to original template/ISO or new template/ISO",
    response="virtualmachine",
    event="VM.RESTORE",
    entity="VirtualMachine",
    fields=VM_FIELDS,
    since="3.0.0",
)
def restore_virtual_machine(
    ctx: Ctx,
    virtualmachineid: Annotated[
        UUIDStr, Param("Virtual Machine ID", required=True, entity="UserVm")
    ],
    templateid: Annotated[
        UUIDStr | None,
        Param(
            "an optional template Id to restore vm from the new template. This can be an ISO "
            "id in case of restore vm deployed using ISO",
            entity="Template",
        ),
    ] = None,
    rootdisksize: Annotated[
        int | None,
        Param(
            "Override root volume's size (in GB). Analogous to details[0].rootdisksize, which "
            "takes precedence over this parameter if both are provided",
            since="4.19.1",
        ),
    ] = None,
) -> Submit:
    vm = vms.find_for(ctx.session, ctx.caller, virtualmachineid)
    template = restore.check(ctx.session, ctx.caller, vm, templateid)
    if rootdisksize is not None and rootdisksize < 1:
        raise ParamError("Root disk size must be a positive number of GiB")
    return Submit(
        params={
            "virtualmachineid": vm.uuid,
            "templateid": template,
            "rootdisksize": rootdisksize,
            "restart": vm.state == "Running",
            "oldroot": restore.root_uuid(ctx.session, vm),
        },
        instance_type="VirtualMachine",
        instance_id=vm.uuid,
        resource_name=vm.name,
    )


def _restore(
    rt: Runtime,
    virtualmachineid: str,
    templateid: str,
    rootdisksize: int | None,
    restart: bool,
    oldroot: str | None = None,
) -> None:
    restore.restore(rt, virtualmachineid, templateid, rootdisksize, restart, oldroot)


def _restored(ctx: Ctx, virtualmachineid: str, **_: Any) -> dict[str, Any]:
    out = render_vm(ctx, virtualmachineid)
    vm = vms.find(ctx.session, virtualmachineid)
    if vm.password:  # a fresh password comes with a fresh root disk, shown once here
        out["password"] = ctx.runtime.box.open(vm.password)
    return out


def _restore_abandoned(rt: Runtime, virtualmachineid: str, **_: Any) -> None:
    lifecycle.settle(rt, virtualmachineid)


restore_virtual_machine.response_key = "restorevmresponse"  # CloudStack's RestoreVMCmd name
restore_virtual_machine.prepare = _restore
restore_virtual_machine.on_abandon = _restore_abandoned
restore_virtual_machine.runs(_restored)


# --- migrateVirtualMachine ----------------------------------------------------------------


@command(
    "migrateVirtualMachine",
    kind=Kind.ASYNC,
    description="Attempts Migration of a VM to a different host or Root volume of the vm to a "
    "different storage pool",
    response="virtualmachine",
    roles=ROOT_ADMIN,
    event="VM.MIGRATE",
    entity="VirtualMachine",
    fields=VM_FIELDS,
)
def migrate_virtual_machine(
    ctx: Ctx,
    virtualmachineid: Annotated[
        UUIDStr, Param("the ID of the virtual machine", required=True, entity="UserVm")
    ],
    hostid: Annotated[
        UUIDStr | None,
        Param(
            "Destination Host ID to migrate VM to. If there is no hostid specified, the host "
            "is chosen by the planner",
            entity="Host",
        ),
    ] = None,
    storageid: Annotated[
        UUIDStr | None,
        Param(
            "Destination storage pool ID to migrate VM volumes to. Required for migrating the "
            "root disk volume",
            entity="StoragePool",
        ),
    ] = None,
    autoselect: Annotated[
        bool,
        Param(
            "Automatically select a destination host which do not require storage migration, "
            "if hostId and storageId are not specified. false by default",
            since="4.16.0",
        ),
    ] = True,
) -> Submit:
    del autoselect
    vm = vms.find_for(ctx.session, ctx.caller, virtualmachineid)
    if storageid is not None:
        raise ParamError("Migrating a VM's volumes to another storage pool is not supported")
    target = migration.choose_target(ctx.session, vm, hostid)
    return Submit(
        params={"virtualmachineid": vm.uuid, "target": target.uuid},
        instance_type="VirtualMachine",
        instance_id=vm.uuid,
        resource_name=vm.name,
    )


def _migrate(rt: Runtime, virtualmachineid: str, target: str) -> None:
    migration.migrate(rt, virtualmachineid, target)


def _migrate_abandoned(rt: Runtime, virtualmachineid: str, target: str) -> None:
    migration.abandon(rt, virtualmachineid, target)


def _migrated(ctx: Ctx, virtualmachineid: str, **_: Any) -> dict[str, Any]:
    return render_vm(ctx, virtualmachineid)


migrate_virtual_machine.prepare = _migrate
migrate_virtual_machine.on_abandon = _migrate_abandoned
migrate_virtual_machine.runs(_migrated)
