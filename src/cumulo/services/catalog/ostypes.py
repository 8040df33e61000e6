"""Guest OS categories and types: what a template says it runs, so hypervisors pick devices.

The built-in rows come from the catalog migration with fixed uuids (the same on every
installation, so scripts may name them); admins may add their own (``isuserdefined``).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from cumulo.common.time import utcnow
from cumulo.db.models_catalog import GuestOsCategory, GuestOsType
from cumulo.services.errors import ParamError


def find_category(session: Session, uuid: str) -> GuestOsCategory:
    found = session.scalar(select(GuestOsCategory).where(GuestOsCategory.uuid == uuid))
    if found is None:
        raise ParamError(f"Unable to find OS category by id {uuid}")
    return found


def find_os_type(session: Session, uuid: str) -> GuestOsType:
    found = session.scalar(
        select(GuestOsType).where(GuestOsType.uuid == uuid, GuestOsType.removed.is_(None))
    )
    if found is None:
        raise ParamError(f"Unable to find OS type by id {uuid}")
    return found


def add_guest_os(
    session: Session, category: GuestOsCategory, display_name: str, for_display: bool
) -> GuestOsType:
    """A user-defined OS type; display names are unique so a template's choice is clear."""
    display_name = display_name.strip()
    if not display_name:
        raise ParamError("The OS display name can't be empty")
    taken = select(GuestOsType.id).where(
        GuestOsType.display_name == display_name, GuestOsType.removed.is_(None)
    )
    if session.scalar(taken) is not None:
        raise ParamError(f"The specified guest OS display name {display_name} already exists")
    os_type = GuestOsType(
        category_id=category.id,
        display_name=display_name,
        is_user_defined=True,
        for_display=for_display,
    )
    session.add(os_type)
    session.flush()
    return os_type


def check_removable(os_type: GuestOsType) -> None:
    """Only user-defined types go: built-in ones are what shipped templates point at."""
    if not os_type.is_user_defined:
        raise ParamError(f"Unable to remove {os_type.display_name}: it is not user defined")


def remove_guest_os(session: Session, uuid: str) -> None:
    """Mark removed; already removed is success (a job may run twice)."""
    os_type = session.scalar(select(GuestOsType).where(GuestOsType.uuid == uuid))
    if os_type is None:
        raise ParamError(f"Unable to find OS type by id {uuid}")
    check_removable(os_type)
    if os_type.removed is None:
        os_type.removed = utcnow()
