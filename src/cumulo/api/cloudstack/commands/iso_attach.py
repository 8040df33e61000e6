"""attachIso and detachIso: an ISO in a VM's CD-ROM drive (``services.compute.iso``).

Both are async, as in CloudStack, and answer with the VM, whose ``isoid``/``isoname``/
``isodisplaytext`` name the ISO now in the drive.
"""

from __future__ import annotations

from typing import Annotated, Any

from cumulo.api.cloudstack.commands.vms import VM_FIELDS, render_vm
from cumulo.api.cloudstack.registry import Kind, Param, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx, Submit
from cumulo.db.models_images import Template
from cumulo.services.compute import iso, vms
from cumulo.services.runtime import Runtime

FIELDS = (*VM_FIELDS, "isodisplaytext")
VmId = Annotated[UUIDStr, Param("the ID of the virtual machine", required=True, entity="UserVm")]


def _rendered(ctx: Ctx, virtualmachineid: str, **_: Any) -> dict[str, Any]:
    out = render_vm(ctx, virtualmachineid)
    vm = vms.find(ctx.session, virtualmachineid, include_removed=True)
    found = ctx.session.get(Template, vm.iso_id) if vm.iso_id is not None else None
    if found is not None:
        out.update(isoid=found.uuid, isoname=found.name, isodisplaytext=found.display_text)
    return out


def _submit(vm: Any, **params: Any) -> Submit:
    return Submit(
        params={"virtualmachineid": vm.uuid, **params},
        instance_type="VirtualMachine",
        instance_id=vm.uuid,
        resource_name=vm.name,
    )


@command(
    "attachIso",
    kind=Kind.ASYNC,
    description="Attaches an ISO to a virtual machine.",
    response="virtualmachine",
    event="ISO.ATTACH",
    entity="Iso",
    fields=FIELDS,
)
def attach_iso(
    ctx: Ctx,
    id: Annotated[UUIDStr, Param("the ID of the ISO file", required=True, entity="Iso")],
    virtualmachineid: VmId,
    forced: Annotated[
        bool, Param("If true, ejects existing ISO before attaching on VMware. Default: false")
    ] = False,
) -> Submit:
    del forced  # VMware only
    vm = vms.find_for(ctx.session, ctx.caller, virtualmachineid)
    found = iso.check_attach(ctx.session, ctx.caller, vm, id)
    return _submit(vm, id=found.uuid)


def _attach(rt: Runtime, virtualmachineid: str, id: str) -> None:
    iso.attach(rt, virtualmachineid, id)


attach_iso.prepare = _attach
attach_iso.runs(_rendered)


@command(
    "detachIso",
    kind=Kind.ASYNC,
    description="Detaches any ISO file (if any) currently attached to a virtual machine.",
    response="virtualmachine",
    event="ISO.DETACH",
    entity="Iso",
    fields=FIELDS,
)
def detach_iso(ctx: Ctx, virtualmachineid: VmId) -> Submit:
    vm = vms.find_for(ctx.session, ctx.caller, virtualmachineid)
    iso.check_detach(vm)
    return _submit(vm)


def _detach(rt: Runtime, virtualmachineid: str) -> None:
    iso.detach(rt, virtualmachineid)


detach_iso.prepare = _detach
detach_iso.runs(_rendered)
