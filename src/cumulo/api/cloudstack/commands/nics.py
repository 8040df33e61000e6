"""VM NIC commands: addNicToVirtualMachine, removeNicFromVirtualMachine,
updateDefaultNicForVirtualMachine (async, answering with the VM) and listNics.

On the simulator the change is recorded (the NIC list a later start sends); hot-plugging into
a running guest is the dataplane's step. Refusals are immediate; job bodies are idempotent.
"""

from __future__ import annotations

from typing import Annotated, Any

from sqlalchemy import select

from cumulo.api.cloudstack.registry import Kind, Param, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx, Listing, Submit, Success
from cumulo.db.models import Account
from cumulo.db.models_compute import Nic, VirtualMachine
from cumulo.db.models_network import Network, NicSecondaryIp
from cumulo.services.compute import views, vms
from cumulo.services.errors import ParamError
from cumulo.services.network import networks
from cumulo.services.network import nics as svc

VmId = Annotated[UUIDStr, Param("Virtual Machine ID", required=True, entity="UserVm")]
NicId = Annotated[UUIDStr, Param("NIC ID", required=True, entity="Nic")]
NIC_FIELDS = (
    "id", "networkid", "networkname", "netmask", "gateway", "ipaddress", "isdefault",
    "macaddress", "traffictype", "type", "broadcasturi", "isolationuri", "deviceid",
    "virtualmachineid", "secondaryip", "extradhcpoption",
)  # fmt: skip


def _vm_result(ctx: Ctx, vm_uuid: str) -> dict[str, Any]:
    vm = vms.find(ctx.session, vm_uuid)
    ctx.event_resource = (vm.uuid, vm.name)
    return views.render(ctx.session, ctx.caller, [vm.id])[0]


def _submit(vm: Any, **params: Any) -> Submit:
    return Submit(
        params={"id": vm.uuid, **params},
        instance_type="VirtualMachine",
        instance_id=vm.uuid,
        resource_name=vm.name,
    )


@command(
    "addNicToVirtualMachine",
    kind=Kind.ASYNC,
    description="Adds VM to specified network by creating a NIC",
    response="virtualmachine",
    event="NIC.CREATE",
    entity="VirtualMachine",
    fields=("id", "name", "nic"),
)
def add_nic_to_virtual_machine(
    ctx: Ctx,
    virtualmachineid: VmId,
    networkid: Annotated[UUIDStr, Param("Network ID", required=True, entity="Network")],
    ipaddress: Annotated[str | None, Param("IP Address for the new network")] = None,
) -> Submit:
    vm = vms.find_for(ctx.session, ctx.caller, virtualmachineid)
    network = networks.find(ctx.session, networkid)
    owner = ctx.session.get(Account, vm.account_id)
    assert owner is not None
    svc.check_add(ctx.session, owner, vm, network)
    svc.add_to_vm(ctx.session, vm, network, ipaddress)  # the address is taken now, or 431
    return _submit(vm, networkid=network.uuid)


@add_nic_to_virtual_machine.runs
def run_add_nic(ctx: Ctx, id: str, networkid: str) -> dict[str, Any]:
    return _vm_result(ctx, id)


@command(
    "removeNicFromVirtualMachine",
    kind=Kind.ASYNC,
    description="Removes VM from specified network by deleting a NIC",
    response="virtualmachine",
    event="NIC.DELETE",
    entity="VirtualMachine",
    fields=("id", "name", "nic"),
)
def remove_nic_from_virtual_machine(ctx: Ctx, virtualmachineid: VmId, nicid: NicId) -> Submit:
    vm = vms.find_for(ctx.session, ctx.caller, virtualmachineid)
    svc.check_remove(svc.find_nic(ctx.session, vm, nicid))
    return _submit(vm, nicid=nicid)


@remove_nic_from_virtual_machine.runs
def run_remove_nic(ctx: Ctx, id: str, nicid: str) -> dict[str, Any]:
    vm = vms.find(ctx.session, id)
    nic = ctx.session.scalar(select(Nic).where(Nic.uuid == nicid, Nic.removed.is_(None)))
    if nic is not None:
        svc.remove_from_vm(ctx.session, vm, nic)
    return _vm_result(ctx, id)


@command(
    "updateDefaultNicForVirtualMachine",
    kind=Kind.ASYNC,
    description="Changes the default NIC on a VM",
    response="virtualmachine",
    event="NIC.UPDATE",
    entity="VirtualMachine",
    fields=("id", "name", "nic"),
)
def update_default_nic_for_virtual_machine(
    ctx: Ctx, virtualmachineid: VmId, nicid: NicId
) -> Submit:
    vm = vms.find_for(ctx.session, ctx.caller, virtualmachineid)
    svc.find_nic(ctx.session, vm, nicid)
    return _submit(vm, nicid=nicid)


@update_default_nic_for_virtual_machine.runs
def run_update_default_nic(ctx: Ctx, id: str, nicid: str) -> dict[str, Any]:
    vm = vms.find(ctx.session, id)
    svc.make_default(ctx.session, vm, svc.find_nic(ctx.session, vm, nicid))
    return _vm_result(ctx, id)


@command(
    "listNics",
    kind=Kind.LIST,
    description="list the vm nics  IP to NIC",
    response="nic",
    fields=NIC_FIELDS,
)
def list_nics(
    ctx: Ctx,
    virtualmachineid: VmId,
    nicid: Annotated[UUIDStr | None, Param("the ID of the nic to list IPs", entity="Nic")] = None,
    networkid: Annotated[
        UUIDStr | None, Param("list nic of the specific vm's network", entity="Network")
    ] = None,
) -> Listing:
    vm = vms.find_for(ctx.session, ctx.caller, virtualmachineid)
    items = views.render(ctx.session, ctx.caller, [vm.id])[0].get("nic", [])
    if nicid is not None:
        items = [n for n in items if n["id"] == nicid]
    if networkid is not None:
        items = [n for n in items if n.get("networkid") == networkid]
    extra = svc.secondary_ips(ctx.session, [n.id for n, _ in svc.vm_nics(ctx.session, vm.id)])
    by_uuid = {n.uuid: extra.get(n.id, []) for n, _ in svc.vm_nics(ctx.session, vm.id)}
    for item in items:
        item["virtualmachineid"] = vm.uuid
        item["secondaryip"] = [
            {"id": r.uuid, "ipaddress": r.address} for r in by_uuid.get(item["id"], [])
        ]
    return Listing(items, len(items))


# --- secondary IPs --------------------------------------------------------------------------


def _secondary_view(session: Any, row: NicSecondaryIp) -> dict[str, Any]:
    nic = session.get(Nic, row.nic_id)
    vm = session.get(VirtualMachine, row.vm_id)
    network = session.get(Network, row.network_id)
    return {
        "id": row.uuid,
        "ipaddress": row.address,
        "nicid": nic.uuid if nic else None,
        "networkid": network.uuid if network else None,
        "virtualmachineid": vm.uuid if vm else None,
    }


def _owned_nic(ctx: Ctx, nic: Nic) -> VirtualMachine:
    """The NIC's VM, as the caller may see it (531 otherwise)."""
    vm = ctx.session.get(VirtualMachine, nic.vm_id) if nic.vm_id is not None else None
    if vm is None:
        raise ParamError(f"NIC {nic.uuid} belongs to no VM")
    return vms.find_for(ctx.session, ctx.caller, vm.uuid)


@command(
    "addIpToNic",
    kind=Kind.ASYNC,
    description="Assigns secondary IP to NIC",
    response="nicsecondaryip",
    event="NIC.SECONDARY.IP.ASSIGN",
    entity="Nic",
    fields=("id", "ipaddress", "nicid", "networkid", "virtualmachineid"),
)
def add_ip_to_nic(
    ctx: Ctx,
    nicid: Annotated[
        UUIDStr,
        Param("the ID of the nic to which you want to assign IP", required=True, entity="Nic"),
    ],
    ipaddress: Annotated[
        str | None, Param("Secondary IP Address; the network's lowest free one when not given")
    ] = None,
) -> Submit:
    nic = svc.find_nic_by_uuid(ctx.session, nicid)
    vm = _owned_nic(ctx, nic)
    row = svc.add_secondary_ip(ctx.session, nic, ipaddress)  # reserved now, or 431
    return Submit(
        params={"id": row.uuid},
        instance_type="Nic",
        instance_id=nic.uuid,
        resource_name=vm.name,
    )


@add_ip_to_nic.runs
def run_add_ip_to_nic(ctx: Ctx, id: str) -> dict[str, Any]:
    row = svc.find_secondary(ctx.session, id)
    ctx.event_resource = (row.uuid, row.address)
    return _secondary_view(ctx.session, row)


@command(
    "removeIpFromNic",
    kind=Kind.ASYNC,
    description="Removes secondary IP from the NIC.",
    response="success",
    event="NIC.SECONDARY.IP.UNASSIGN",
    entity="NicSecondaryIp",
)
def remove_ip_from_nic(
    ctx: Ctx,
    id: Annotated[
        UUIDStr,
        Param("the ID of the secondary ip address to nic", required=True, entity="NicSecondaryIp"),
    ],
) -> Submit:
    row = svc.find_secondary(ctx.session, id)
    nic = ctx.session.get(Nic, row.nic_id)
    assert nic is not None
    vm = _owned_nic(ctx, nic)
    svc.remove_secondary_ip(ctx.session, row)  # 431 while a rule targets it
    return Submit(
        params={"id": id}, instance_type="Nic", instance_id=nic.uuid, resource_name=vm.name
    )


@remove_ip_from_nic.runs
def run_remove_ip_from_nic(ctx: Ctx, id: str) -> Success:
    return Success("Removed the secondary IP")
