"""updateVirtualMachine: the VM's own settings, none of which needs the host.

Every check runs before any change, so a refused request (431) leaves the VM as it was. The
rules are CloudStack's: the host name changes only while the VM is Stopped (the guest reads it
at boot) and stays unique in the account; HA needs an offering that offers it; dynamic
scaling needs a template and offering that allow it; ``details`` merge into the VM's details
(``cleanupdetails`` drops them first); ``extraconfig`` is refused, as on deploy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cumulo.db.models_catalog import GuestOsType, ServiceOffering
from cumulo.db.models_compute import VirtualMachine
from cumulo.db.models_images import Template
from cumulo.services.access import Caller
from cumulo.services.catalog import userdata
from cumulo.services.compute import vms
from cumulo.services.compute.states import State
from cumulo.services.config import USERDATA_MAX_LENGTH, ConfigStore
from cumulo.services.errors import ParamError

FROZEN_STATES = (State.DESTROYED, State.EXPUNGING, State.EXPUNGED, State.ERROR)


@dataclass
class VmUpdate:
    display_name: str | None = None
    group: str | None = None
    ha: bool | None = None
    os_type_uuid: str | None = None
    user_data: str | None = None
    user_data_uuid: str | None = None
    display_vm: bool | None = None
    name: str | None = None
    details: dict[str, str] = field(default_factory=dict)
    cleanup_details: bool = False
    dynamically_scalable: bool | None = None


def _check_name(session: Session, vm: VirtualMachine, name: str) -> str:
    vms.check_hostname(name)
    if name == vm.name:
        return name
    if vm.state != State.STOPPED:
        raise ParamError(
            f"Unable to change the name of VM {vm.name}: it is in state {vm.state}; "
            "the name can only be changed while it is Stopped"
        )
    taken = session.scalar(
        select(func.count())
        .select_from(VirtualMachine)
        .where(
            VirtualMachine.account_id == vm.account_id,
            VirtualMachine.zone_id == vm.zone_id,
            func.lower(VirtualMachine.name) == name.lower(),
            VirtualMachine.id != vm.id,
            VirtualMachine.removed.is_(None),
        )
    )
    if taken:
        raise ParamError(f"The vm with hostName {name} already exists in the account's network")
    return name


def _check_ha(session: Session, vm: VirtualMachine) -> None:
    offering = session.get(ServiceOffering, vm.service_offering_id)
    if offering is None or not offering.offer_ha:
        raise ParamError(
            "Can't enable ha for the vm as it's created from the Service offering having HA "
            "disabled"
        )


def _check_scalable(session: Session, vm: VirtualMachine) -> None:
    template = session.get(Template, vm.template_id)
    offering = session.get(ServiceOffering, vm.service_offering_id)
    if template is None or not template.is_dynamically_scalable:
        raise ParamError(
            "Dynamic Scaling cannot be enabled for the VM since its template does not have "
            "dynamic scaling enabled"
        )
    if offering is None or not offering.dynamic_scaling:
        raise ParamError(
            "Dynamic Scaling cannot be enabled for the VM since its service offering does not "
            "have dynamic scaling enabled"
        )


def _os_type(session: Session, uuid: str) -> int:
    found = session.scalar(select(GuestOsType.id).where(GuestOsType.uuid == uuid))
    if found is None:
        raise ParamError(f"Unable to find guest OS type by id {uuid}")
    return found


def _check_details(details: dict[str, str]) -> None:
    for key in details:
        if key.lower() == "extraconfig":
            raise ParamError("'extraconfig' is not allowed to be passed in details")


def update(
    session: Session, caller: Caller, vm: VirtualMachine, upd: VmUpdate, config: ConfigStore
) -> None:
    """Check everything, then apply: a refusal changes nothing."""
    if vm.state in FROZEN_STATES:
        raise ParamError(f"Unable to update VM {vm.name}: it is in state {vm.state}")
    name = _check_name(session, vm, upd.name) if upd.name is not None else None
    if upd.ha:
        _check_ha(session, vm)
    if upd.dynamically_scalable:
        _check_scalable(session, vm)
    os_type = _os_type(session, upd.os_type_uuid) if upd.os_type_uuid else None
    if upd.user_data is not None and upd.user_data_uuid is not None:
        raise ParamError("Both userdata and userdataid can not be given together")
    if upd.user_data is not None:
        userdata.decode(upd.user_data, int(config.get(session, USERDATA_MAX_LENGTH)))
    data_id = userdata.find(session, caller, upd.user_data_uuid).id if upd.user_data_uuid else None
    _check_details(upd.details)
    _apply(vm, upd, name, os_type, data_id)
    session.flush()


def _apply(
    vm: VirtualMachine, upd: VmUpdate, name: str | None, os_type: int | None, data_id: int | None
) -> None:
    if upd.display_name is not None:
        vm.display_name = upd.display_name or vm.name
    if upd.group is not None:
        vm.group_name = upd.group or None
    if upd.ha is not None:
        vm.ha_enabled = upd.ha
    if upd.display_vm is not None:
        vm.display_vm = upd.display_vm
    if upd.dynamically_scalable is not None:
        vm.dynamically_scalable = upd.dynamically_scalable
    if name is not None:
        vm.name = name
    if os_type is not None:
        vm.guest_os_id = os_type
    if upd.user_data is not None:
        vm.user_data, vm.user_data_id = upd.user_data, None
    if data_id is not None:
        vm.user_data, vm.user_data_id = None, data_id
    if upd.cleanup_details or upd.details:
        merged = {} if upd.cleanup_details else dict(vm.details or {})
        merged.update(upd.details)
        vm.details = merged
