"""Templates and ISOs: registration, visibility, updates, permissions, download and delete.

Registration writes the template row and one ``template_store_refs`` row per image store of
each target zone (state Allocated) in the request's transaction; the download itself runs
later in a job worker (``download_all``), outside any database transaction, so a slow
download never holds SQLite's write lock. Each store's outcome is recorded in its own short
transaction: Ready with the size, or Error with the reason. A re-run skips Ready copies.

Resource limits: the template count (type 4) is reserved at registration (532 and no row if
exceeded); secondary storage (type 11, bytes) is reserved when a copy's size becomes known
and given back when the copy is deleted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, func, or_, select, true
from sqlalchemy import update as sql_update
from sqlalchemy.orm import Session

from cumulo.common.time import utcnow
from cumulo.db.engine import Database
from cumulo.db.models import Account, Domain, User
from cumulo.db.models_catalog import GuestOsType
from cumulo.db.models_images import Template, TemplatePermission, TemplateStoreRef
from cumulo.db.models_infra import ImageStore, Zone
from cumulo.services import events, limits
from cumulo.services.access import Caller, ListScope
from cumulo.services.config import ConfigKey, ConfigStore, define
from cumulo.services.errors import ParamError, PermissionDenied, ResourceLimitExceeded
from cumulo.services.identity import auth
from cumulo.services.identity.accounts import find_account_by_name
from cumulo.services.storage import download, links
from cumulo.services.storage.imagestore import StoreUnavailable, backend_for
from cumulo.services.usage import events as usage

log = logging.getLogger(__name__)

MAX_SIZE = define(
    ConfigKey(
        "max.template.iso.size",
        "Advanced",
        "Integer",
        "50",
        "The maximum size for a downloaded template or ISO (in GB).",
        group="Storage",
        subgroup="Secondary Storage",
        min=1,
    )
)

ALLOCATED, DOWNLOADING, READY, ERROR = "Allocated", "Downloading", "Ready", "Error"
FILTERS = (
    "featured",
    "self",
    "selfexecutable",
    "sharedexecutable",
    "executable",
    "community",
    "all",
)
TEMPLATE_FORMATS = ("QCOW2", "RAW", "VHD", "VHDX", "OVA", "VMDK", "TAR", "ZIP", "BAREMETAL")
HYPERVISORS = {
    h.lower(): h
    for h in ("KVM", "XenServer", "VMware", "Hyperv", "LXC", "Simulator", "BareMetal", "Ovm3")
}
EXTENSIONS = {"QCOW2": "qcow2", "RAW": "img", "ISO": "iso", "VHD": "vhd", "OVA": "ova"}


@dataclass(frozen=True)
class Registration:
    """What registerTemplate / registerIso asked for, already typed."""

    is_iso: bool
    name: str
    display_text: str
    url: str
    zone_uuid: str
    format: str
    hypervisor: str | None
    os_type_uuid: str | None
    checksum: str | None
    is_public: bool
    is_featured: bool
    is_extractable: bool
    password_enabled: bool = False
    ssh_key_enabled: bool = False
    is_dynamically_scalable: bool = False
    requires_hvm: bool = True
    bits: int = 64
    bootable: bool = True
    details: dict[str, str] | None = None


# --- lookups ----------------------------------------------------------------------------------


def find(session: Session, uuid: str, *, is_iso: bool, lock: bool = False) -> Template:
    stmt = select(Template).where(
        Template.uuid == uuid, Template.is_iso == is_iso, Template.removed.is_(None)
    )
    if lock:
        stmt = stmt.with_for_update()
    template = session.scalar(stmt)
    if template is None:
        kind = "ISO" if is_iso else "template"
        raise ParamError(f"Unable to find {kind} with id {uuid}")
    return template


def find_any(session: Session, uuid: str, *, is_iso: bool) -> Template | None:
    """Also a removed one: deletes are idempotent."""
    return session.scalar(select(Template).where(Template.uuid == uuid, Template.is_iso == is_iso))


DEFAULT_OS = "Other (64-bit)"


def _os_type(session: Session, uuid: str | None) -> GuestOsType | None:
    """The named guest OS; none named means "Other (64-bit)", as clients expect one."""
    if uuid is None:
        return session.scalar(
            select(GuestOsType).where(
                GuestOsType.display_name == DEFAULT_OS, GuestOsType.removed.is_(None)
            )
        )
    os_type = session.scalar(
        select(GuestOsType).where(GuestOsType.uuid == uuid, GuestOsType.removed.is_(None))
    )
    if os_type is None:
        raise ParamError(f"Unable to find guest OS type with id {uuid}")
    return os_type


def _zones(session: Session, zone_uuid: str) -> list[Zone]:
    """``-1`` is every zone (a cross-zones template), as CloudStack's registerTemplate."""
    stmt = select(Zone).where(Zone.removed.is_(None))
    if zone_uuid != "-1":
        stmt = stmt.where(Zone.uuid == zone_uuid)
    zones = list(session.scalars(stmt.order_by(Zone.id)))
    if not zones:
        raise ParamError(f"Unable to find zone by id {zone_uuid}")
    return zones


def _stores(session: Session, zone: Zone) -> list[ImageStore]:
    return list(
        session.scalars(
            select(ImageStore)
            .where(
                ImageStore.zone_id == zone.id,
                ImageStore.removed.is_(None),
                ImageStore.role == "Image",
                ImageStore.readonly.is_(False),
            )
            .order_by(ImageStore.id)
        )
    )


def check_owner(caller: Caller, session: Session, template: Template) -> None:
    owner = session.get(Account, template.account_id)
    assert owner is not None
    caller.check_account(owner)


# --- registration -----------------------------------------------------------------------------


def _validated(reg: Registration) -> tuple[str, str | None]:
    try:
        download.check_url(reg.url)
        if reg.checksum:
            download.Checksum.parse(reg.checksum)
    except ValueError as err:
        raise ParamError(str(err)) from err
    if reg.is_iso:
        return "ISO", None
    fmt = reg.format.upper()
    if fmt not in TEMPLATE_FORMATS:
        raise ParamError(f"Format {reg.format} is not supported: {', '.join(TEMPLATE_FORMATS)}")
    hypervisor = HYPERVISORS.get((reg.hypervisor or "").lower())
    if hypervisor is None:
        raise ParamError(f"Hypervisor {reg.hypervisor} is not supported")
    return fmt, hypervisor


def register(session: Session, caller: Caller, owner: Account, reg: Registration) -> Template:
    """Write the template, its store refs and the count reservation; the download comes later."""
    fmt, hypervisor = _validated(reg)
    os_type = _os_type(session, reg.os_type_uuid)
    zones = _zones(session, reg.zone_uuid)
    targets = [(zone, store) for zone in zones for store in _stores(session, zone)]
    if not targets:
        raise ParamError(f"Failed to find a secondary storage store in zone {zones[0].name}")
    limits.check_and_increment(session, owner.id, limits.ResourceType.template)
    template = Template(
        name=reg.name,
        display_text=reg.display_text or reg.name,
        format=fmt,
        is_iso=reg.is_iso,
        hypervisor=hypervisor,
        os_type_id=os_type.id if os_type else None,
        account_id=owner.id,
        domain_id=owner.domain_id,
        is_public=reg.is_public,
        # CloudStack ignores isfeatured from anyone but an admin.
        is_featured=reg.is_featured and caller.is_root_admin,
        is_extractable=reg.is_extractable,
        password_enabled=reg.password_enabled,
        ssh_key_enabled=reg.ssh_key_enabled,
        is_dynamically_scalable=reg.is_dynamically_scalable,
        requires_hvm=reg.requires_hvm,
        bits=reg.bits,
        bootable=reg.bootable,
        cross_zones=reg.zone_uuid == "-1",
        url=reg.url,
        checksum=reg.checksum or None,
        details=dict(reg.details or {}),
    )
    session.add(template)
    session.flush()
    ext = EXTENSIONS.get(fmt, fmt.lower())
    kind = "iso" if reg.is_iso else "tmpl"
    for zone, store in targets:
        session.add(
            TemplateStoreRef(
                template_id=template.id,
                image_store_id=store.id,
                zone_id=zone.id,
                state=ALLOCATED,
                install_path=f"template/{kind}/{owner.id}/{template.id}/{template.uuid}.{ext}",
            )
        )
    session.flush()
    return template


def copy_to_zones(session: Session, template: Template, source: Zone, targets: list[Zone]) -> int:
    """copyTemplate's request half: Allocated copies in the target zones' image stores (the
    job then copies the bytes from a Ready copy this server holds); how many were added."""
    ready = session.scalar(
        select(func.count())
        .select_from(TemplateStoreRef)
        .where(
            TemplateStoreRef.template_id == template.id,
            TemplateStoreRef.zone_id == source.id,
            TemplateStoreRef.state == READY,
        )
    )
    if not ready:
        raise ParamError(f"Template {template.name} is not ready in zone {source.name}")
    added = 0
    for zone in targets:
        if zone.id == source.id:
            raise ParamError("Please specify different source and destination zones.")
        present = session.scalar(
            select(func.count())
            .select_from(TemplateStoreRef)
            .where(TemplateStoreRef.template_id == template.id, TemplateStoreRef.zone_id == zone.id)
        )
        if present:
            continue  # already there (or on its way): copying is idempotent
        stores = _stores(session, zone)
        if not stores:
            raise ParamError(f"Failed to find a secondary storage store in zone {zone.name}")
        ext = EXTENSIONS.get(template.format, template.format.lower())
        kind = "iso" if template.is_iso else "tmpl"
        session.add(
            TemplateStoreRef(
                template_id=template.id,
                image_store_id=stores[0].id,
                zone_id=zone.id,
                state=ALLOCATED,
                install_path=(
                    f"template/{kind}/{template.account_id}/{template.id}/{template.uuid}.{ext}"
                ),
            )
        )
        added += 1
    session.flush()
    return added


# --- download (in a job worker, outside the job's transaction) -------------------------------


def _pending(db: Database, template_uuid: str) -> list[int]:
    with db.read() as session:
        return list(
            session.scalars(
                select(TemplateStoreRef.id)
                .join(Template, Template.id == TemplateStoreRef.template_id)
                .where(
                    Template.uuid == template_uuid,
                    Template.removed.is_(None),
                    TemplateStoreRef.state.in_((ALLOCATED, DOWNLOADING)),
                )
                .order_by(TemplateStoreRef.id)
            )
        )


def _owner_caller(session: Session, template: Template) -> Caller | None:
    """The owner account's first user: events are written in an account's name by a user."""
    user_id = session.scalar(
        select(User.id)
        .where(User.account_id == template.account_id, User.removed.is_(None))
        .order_by(User.id)
        .limit(1)
    )
    if user_id is None:
        return None
    return auth.caller_by_user_id(session, user_id, allow_disabled=True)


def _event(session: Session, template: Template, type_: str, text: str, level: str) -> None:
    caller = _owner_caller(session, template)
    if caller is None:
        return
    events.record(
        session,
        caller,
        type_,
        text,
        level=level,
        resource_id=template.uuid,
        resource_type="Iso" if template.is_iso else "Template",
        resource_name=template.name,
        account_id=template.account_id,
        domain_id=template.domain_id,
    )


def _start(db: Database, ref_id: int) -> tuple[str, str | None, str, ImageStore] | None:
    """Mark one copy Downloading; returns (url, checksum, path, store) or None if done."""
    with db.write() as session:
        ref = session.get(TemplateStoreRef, ref_id)
        if ref is None or ref.state not in (ALLOCATED, DOWNLOADING):
            return None
        template = session.get(Template, ref.template_id)
        store = session.get(ImageStore, ref.image_store_id)
        assert template is not None and store is not None and ref.install_path
        ref.state, ref.download_pct, ref.updated = DOWNLOADING, 0, utcnow()
        # CloudStack has no ISO.DOWNLOAD.* types: ISO downloads are TEMPLATE.DOWNLOAD.* too.
        _event(session, template, "TEMPLATE.DOWNLOAD.START", "Download started", "INFO")
        session.expunge(store)
        return template.url, template.checksum, ref.install_path, store


def _finish(db: Database, ref_id: int, size: int | None, error: str | None) -> bool:
    """Record one copy's outcome; False if the copy was deleted while it downloaded.

    A copy over the secondary storage limit is removed and left in Error.
    """
    with db.write() as session:
        ref = session.get(TemplateStoreRef, ref_id)
        if ref is None or ref.state != DOWNLOADING:
            return False
        template = session.get(Template, ref.template_id)
        assert template is not None
        if error is None and size is not None:
            try:
                with session.begin_nested():
                    limits.check_and_increment(
                        session, template.account_id, limits.ResourceType.secondary_storage, size
                    )
            except ResourceLimitExceeded as err:
                error = f"secondary storage limit exceeded: {err.text}"
                _remove_file(session, ref)
        if error is None:
            ref.state, ref.download_pct, ref.size, ref.physical_size = READY, 100, size, size
            ref.error = None
            template.size = size
            _usage(session, template, ref.zone_id, created=True)
            level, kind, text = "INFO", "SUCCESS", "Download complete"
        else:
            ref.state, ref.error = ERROR, error
            level, kind, text = "ERROR", "FAILED", error
        ref.updated = utcnow()
        _event(session, template, f"TEMPLATE.DOWNLOAD.{kind}", text, level)
        return True


class _Progress:
    """Writes a copy's download percentage now and then, each in a short transaction."""

    STEP, INTERVAL = 10, 1.0

    def __init__(self, db: Database, ref_id: int) -> None:
        self.db, self.ref_id = db, ref_id
        self.pct, self.at = 0, time.monotonic()

    def __call__(self, done: int, total: int | None) -> None:
        if not total:
            return
        pct = min(99, done * 100 // total)  # 100 only once the copy is verified and Ready
        now = time.monotonic()
        if pct - self.pct < self.STEP or now - self.at < self.INTERVAL:
            return
        self.pct, self.at = pct, now
        with self.db.write() as session:
            session.execute(
                sql_update(TemplateStoreRef)
                .where(TemplateStoreRef.id == self.ref_id, TemplateStoreRef.state == DOWNLOADING)
                .values(download_pct=pct, updated=utcnow())
            )


def give_up(db: Database, template_uuid: str, reason: str) -> None:
    """Every copy still pending ends in Error: the job that would fetch it was abandoned."""
    for ref_id in _pending(db, template_uuid):
        with db.write() as session:
            ref = session.get(TemplateStoreRef, ref_id)
            if ref is not None and ref.state == ALLOCATED:
                ref.state = DOWNLOADING
        _finish(db, ref_id, None, reason)


def download_all(db: Database, config: ConfigStore, template_uuid: str) -> None:
    """Fetch every pending copy of a template; never raises for a failed download."""
    with db.read() as session:
        max_bytes = int(config.get(session, MAX_SIZE)) * 1024**3
    for ref_id in _pending(db, template_uuid):
        started = _start(db, ref_id)
        if started is None:
            continue
        url, checksum, path, store = started
        try:
            backend = backend_for(store)
            digest = download.Checksum.parse(checksum) if checksum else None
            with db.read() as session:
                local = links.local_file(session, template_uuid)  # a copy to another zone
            if local is not None:
                size = download.copy_local(
                    local, backend.open_writer(path), checksum=digest, max_bytes=max_bytes
                )
            else:
                size = download.fetch(
                    url,
                    backend.open_writer(path),
                    checksum=digest,
                    max_bytes=max_bytes,
                    progress=_Progress(db, ref_id),
                )
        except (download.DownloadFailed, StoreUnavailable, ValueError) as err:
            log.info(
                "template download failed", extra={"template": template_uuid, "reason": str(err)}
            )
            _finish(db, ref_id, None, str(err))
        except OSError as err:
            _finish(db, ref_id, None, f"failed to write to image store {store.name}: {err}")
        else:
            if not _finish(db, ref_id, size, None):
                # Deleted while downloading: the delete found no file yet, so remove it here.
                backend.delete(path)


# --- listing ----------------------------------------------------------------------------------


def _first_ref_per_zone() -> Select[int]:
    return select(func.min(TemplateStoreRef.id)).group_by(
        TemplateStoreRef.template_id, TemplateStoreRef.zone_id
    )


def list_select() -> Select[*tuple[Any, ...]]:
    """One row per template per zone, as CloudStack lists them."""
    return (
        select(
            Template,
            TemplateStoreRef,
            Account.name.label("account"),
            Account.uuid.label("accountid"),
            Domain.uuid.label("domainid"),
            Domain.name.label("domain"),
            GuestOsType.uuid.label("ostypeid"),
            GuestOsType.display_name.label("ostypename"),
            Zone.uuid.label("zoneid"),
            Zone.name.label("zonename"),
        )
        .join(
            TemplateStoreRef,
            and_(
                TemplateStoreRef.template_id == Template.id,
                TemplateStoreRef.id.in_(_first_ref_per_zone()),
            ),
        )
        .join(Zone, Zone.id == TemplateStoreRef.zone_id)
        .join(Account, Account.id == Template.account_id)
        .join(Domain, Domain.id == Template.domain_id)
        .outerjoin(GuestOsType, GuestOsType.id == Template.os_type_id)
        .where(Template.removed.is_(None))
    )


def _shared_with(caller: Caller) -> ColumnElement[bool]:
    return exists().where(
        TemplatePermission.template_id == Template.id,
        TemplatePermission.account_id == caller.account_id,
    )


def _own(caller: Caller, scope: ListScope) -> ColumnElement[bool]:
    """Templates of the accounts the caller lists for (its own unless listall/domainid)."""
    if caller.is_root_admin and scope.account_id is None and scope.domain_path is None:
        return Template.account_id == caller.account_id
    return scope.where(Template.account_id, Domain.path)


def filter_where(caller: Caller, scope: ListScope, name: str) -> ColumnElement[bool]:
    """CloudStack's templatefilter, as one SQL condition."""
    ready = TemplateStoreRef.state == READY
    own = _own(caller, scope)
    public = Template.is_public.is_(True)
    if name == "featured":
        return Template.is_featured.is_(True)
    if name == "self":
        return own
    if name == "selfexecutable":
        return and_(own, ready)
    if name == "sharedexecutable":
        return and_(_shared_with(caller), ready)
    if name == "executable":
        return and_(or_(own, public, _shared_with(caller)), ready)
    if name == "community":
        return and_(public, Template.is_featured.is_(False))
    if name == "all":
        if caller.is_root_admin:
            return true()
        if caller.is_domain_admin:
            return or_(Domain.path.startswith(caller.domain_path, autoescape=True), public)
        return or_(Template.account_id == caller.account_id, public, _shared_with(caller))
    raise ParamError(f"Invalid template filter {name}: one of {', '.join(FILTERS)}")


def status_text(ref: TemplateStoreRef) -> str:
    if ref.state == READY:
        return "Download Complete"
    if ref.state == ERROR:
        return ref.error or "Download failed"
    if ref.state == DOWNLOADING and ref.download_pct:
        return f"{ref.download_pct}% Downloaded"
    return "Download in progress"


# --- updates, permissions, delete -------------------------------------------------------------


def update(
    session: Session, caller: Caller, template: Template, changes: dict[str, Any]
) -> Template:
    check_owner(caller, session, template)
    if "os_type_uuid" in changes:
        os_type = _os_type(session, changes.pop("os_type_uuid"))
        template.os_type_id = os_type.id if os_type else None
    if "format" in changes:
        fmt = str(changes.pop("format")).upper()
        if fmt not in TEMPLATE_FORMATS and not template.is_iso:
            raise ParamError(f"Format {fmt} is not supported")
        template.format = fmt if not template.is_iso else "ISO"
    for attr, value in changes.items():
        setattr(template, attr, value)
    session.flush()
    return template


def update_permissions(
    session: Session,
    caller: Caller,
    template: Template,
    *,
    is_public: bool | None,
    is_featured: bool | None,
    is_extractable: bool | None,
    accounts: Iterable[str] | None,
    op: str | None,
) -> None:
    check_owner(caller, session, template)
    if is_featured is not None and not caller.is_root_admin:
        raise PermissionDenied("Only administrators can mark a template or ISO as featured")
    if is_public is not None:
        template.is_public = is_public
    if is_featured is not None:
        template.is_featured = is_featured
    if is_extractable is not None:
        template.is_extractable = is_extractable
    if accounts is None and op is None:
        return
    if op not in ("add", "remove", "reset"):
        raise ParamError("op must be one of add, remove, reset")
    if op == "reset":
        session.query(TemplatePermission).filter_by(template_id=template.id).delete()
        return
    if not accounts:
        raise ParamError("accounts are required with op add or remove")
    domain = session.get(Domain, template.domain_id)
    assert domain is not None
    for name in accounts:
        account = find_account_by_name(session, name.strip(), domain)
        row = session.scalar(
            select(TemplatePermission).where(
                TemplatePermission.template_id == template.id,
                TemplatePermission.account_id == account.id,
            )
        )
        if op == "add" and row is None and account.id != template.account_id:
            session.add(TemplatePermission(template_id=template.id, account_id=account.id))
        elif op == "remove" and row is not None:
            session.delete(row)
    session.flush()


def permitted_accounts(session: Session, template: Template) -> list[str]:
    return list(
        session.scalars(
            select(Account.name)
            .join(TemplatePermission, TemplatePermission.account_id == Account.id)
            .where(TemplatePermission.template_id == template.id)
            .order_by(Account.name)
        )
    )


def can_see(session: Session, caller: Caller, template: Template) -> bool:
    if template.is_public or template.account_id == caller.account_id:
        return True
    owner = session.get(Account, template.account_id)
    if owner is not None and caller.owns_domain(owner.domain.path):
        return True
    return (
        session.scalar(
            select(
                exists().where(
                    TemplatePermission.template_id == template.id,
                    TemplatePermission.account_id == caller.account_id,
                )
            )
        )
        or False
    )


def _remove_file(session: Session, ref: TemplateStoreRef) -> None:
    store = session.get(ImageStore, ref.image_store_id)
    if store is None or not ref.install_path:
        return
    try:
        backend_for(store).delete(ref.install_path)
    except StoreUnavailable:
        log.warning("cannot remove a template copy from its store", extra={"store": store.uuid})


def delete(session: Session, template: Template, zone_uuid: str | None) -> None:
    """Remove the copies (in one zone, or all); with none left the template is removed."""
    stmt = select(TemplateStoreRef).where(TemplateStoreRef.template_id == template.id)
    if zone_uuid is not None:
        zone = session.scalar(select(Zone).where(Zone.uuid == zone_uuid))
        if zone is None:
            raise ParamError(f"Unable to find zone by id {zone_uuid}")
        stmt = stmt.where(TemplateStoreRef.zone_id == zone.id)
    freed = 0
    for ref in session.scalars(stmt).all():
        if ref.state == READY and ref.size:
            freed += ref.size
        _remove_file(session, ref)
        session.delete(ref)
    session.flush()
    limits.decrement(session, template.account_id, limits.ResourceType.secondary_storage, freed)
    left = session.scalar(select(func.count()).where(TemplateStoreRef.template_id == template.id))
    if not left and template.removed is None:
        template.removed = utcnow()
        session.query(TemplatePermission).filter_by(template_id=template.id).delete()
        limits.decrement(session, template.account_id, limits.ResourceType.template)
        _usage(session, template, None, created=False)
    session.flush()


def _usage(session: Session, template: Template, zone_id: int | None, created: bool) -> None:
    """TEMPLATE.CREATE/ISO.CREATE once a copy is Ready (billed from then, with its size);
    TEMPLATE.DELETE/ISO.DELETE when the last copy goes (per-zone billing: a later step)."""
    if template.is_iso:
        type_ = usage.ISO_CREATE if created else usage.ISO_DELETE
    else:
        type_ = usage.TEMPLATE_CREATE if created else usage.TEMPLATE_DELETE
    kind = "Iso" if template.is_iso else "Template"
    usage.record_owned(session, type_, template, kind, zone_id=zone_id, size=template.size)
