"""Events: one row per state change, written in the same transaction as the change.

Event types are CloudStack's (``USER.CREATE``, ``ACCOUNT.DELETE`` …); async commands write
``Scheduled`` when accepted and ``Completed`` (or an ERROR ``Completed``) when the job ends,
as CloudStack's ActionEventUtils does. The completion names the scheduled event as its parent
(CloudStack's ``startid``), so ``listEvents startid=…`` shows a job's whole story.

Every event also becomes an ActionEvent row of the event bus's outbox (services.eventbus), in
the same transaction, under the event's own uuid: webhooks, RabbitMQ and the push stream get
exactly the events that committed.

Who may see or remove which events is decided here, in SQL: a user only their own account's,
a domain admin the accounts of its domain subtree, the root admin all (CloudStack's
AuditTrailServiceImpl and searchForEventIdsAndCount).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Select, delete, false, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from cumulo.common.ids import new_uuid
from cumulo.common.time import utcnow
from cumulo.db.models import Account, Domain, Event, User
from cumulo.services.access import Caller, ListScope, RoleType
from cumulo.services.errors import InternalError, ParamError
from cumulo.services.eventbus import outbox

LEVELS = ("INFO", "WARN", "ERROR")
STATES = ("Created", "Scheduled", "Started", "Completed")
PENDING_STATES = ("Scheduled", "Started")

# The CloudStack event types a client may filter by (listEventTypes). Commands declare their
# own with ``event=``; the API layer adds those, so a type used anywhere is always listed.
EVENT_TYPES: tuple[str, ...] = (
    # compute
    "VM.CREATE", "VM.DESTROY", "VM.START", "VM.STOP", "VM.REBOOT", "VM.UPDATE", "VM.UPGRADE",
    "VM.DYNAMIC.SCALE", "VM.RESETPASSWORD", "VM.RESETSSHKEY", "VM.RESETUSERDATA", "VM.MIGRATE",
    "VM.MOVE", "VM.RESTORE", "VM.EXPUNGE", "VM.RECOVER", "VM.AG.UPDATE",
    "VMSNAPSHOT.CREATE", "VMSNAPSHOT.DELETE", "VMSNAPSHOT.REVERTTO",
    "ROUTER.CREATE", "ROUTER.DESTROY", "ROUTER.START", "ROUTER.STOP", "ROUTER.REBOOT",
    "ROUTER.HA", "ROUTER.UPGRADE",
    "VNC.CONNECT", "VNC.DISCONNECT",
    "AG.CREATE", "AG.DELETE", "AG.ASSIGN", "AG.REMOVE",
    "REGISTER.SSH.KEYPAIR", "REGISTER.USER.DATA",
    # network
    "NET.IPASSIGN", "NET.IPRELEASE", "NET.IPRESERVE", "NET.IPUPDATE", "NET.RULEADD",
    "NET.RULEDELETE", "NET.RULEMODIFY", "NETWORK.CREATE", "NETWORK.DELETE", "NETWORK.UPDATE",
    "NETWORK.RESTART", "FIREWALL.OPEN", "FIREWALL.CLOSE", "FIREWALL.UPDATE",
    "FIREWALL.EGRESS.OPEN", "FIREWALL.EGRESS.CLOSE", "FIREWALL.EGRESS.UPDATE",
    "NIC.CREATE", "NIC.DELETE", "NIC.UPDATE",
    "LB.ASSIGN.TO.RULE", "LB.REMOVE.FROM.RULE", "LB.CREATE", "LB.DELETE", "LB.UPDATE",
    "LB.STICKINESSPOLICY.CREATE", "LB.STICKINESSPOLICY.DELETE",
    "LB.HEALTHCHECKPOLICY.CREATE", "LB.HEALTHCHECKPOLICY.DELETE",
    "STATICNAT.ENABLE", "STATICNAT.DISABLE",
    "SG.AUTH.INGRESS", "SG.REVOKE.INGRESS", "SG.AUTH.EGRESS", "SG.REVOKE.EGRESS", "SG.CREATE",
    "SG.DELETE", "SG.ASSIGN", "SG.REMOVE", "SG.UPDATE",
    "VPC.CREATE", "VPC.UPDATE", "VPC.DELETE", "VPC.RESTART",
    "NETWORK.ACL.CREATE", "NETWORK.ACL.DELETE", "NETWORK.ACL.REPLACE", "NETWORK.ACL.UPDATE",
    "NETWORK.ACL.ITEM.CREATE", "NETWORK.ACL.ITEM.UPDATE", "NETWORK.ACL.ITEM.DELETE",
    "STATIC.ROUTE.CREATE", "STATIC.ROUTE.DELETE",
    "VPN.REMOTE.ACCESS.CREATE", "VPN.REMOTE.ACCESS.DESTROY", "VPN.USER.ADD", "VPN.USER.REMOVE",
    "PHYSICAL.NETWORK.CREATE", "PHYSICAL.NETWORK.DELETE", "PHYSICAL.NETWORK.UPDATE",
    "SERVICE.PROVIDER.CREATE", "SERVICE.PROVIDER.DELETE", "SERVICE.PROVIDER.UPDATE",
    "TRAFFIC.TYPE.CREATE", "TRAFFIC.TYPE.DELETE", "TRAFFIC.TYPE.UPDATE",
    "VLAN.IP.RANGE.CREATE", "VLAN.IP.RANGE.DELETE", "VLAN.IP.RANGE.DEDICATE",
    "VLAN.IP.RANGE.RELEASE", "ZONE.VLAN.ASSIGN", "ZONE.VLAN.RELEASE", "ZONE.VXLAN.ASSIGN",
    "ZONE.VXLAN.RELEASE",
    # storage and images
    "VOLUME.CREATE", "VOLUME.DELETE", "VOLUME.ATTACH", "VOLUME.DETACH", "VOLUME.EXTRACT",
    "VOLUME.UPLOAD", "VOLUME.MIGRATE", "VOLUME.RESIZE", "VOLUME.UPDATE", "VOLUME.DESTROY",
    "VOLUME.RECOVER",
    "SNAPSHOT.CREATE", "SNAPSHOT.DELETE", "SNAPSHOT.REVERT", "SNAPSHOT.COPY",
    "SNAPSHOTPOLICY.CREATE", "SNAPSHOTPOLICY.UPDATE", "SNAPSHOTPOLICY.DELETE",
    "TEMPLATE.CREATE", "TEMPLATE.DELETE", "TEMPLATE.UPDATE", "TEMPLATE.DOWNLOAD.START",
    "TEMPLATE.DOWNLOAD.SUCCESS", "TEMPLATE.DOWNLOAD.FAILED", "TEMPLATE.COPY",
    "TEMPLATE.EXTRACT", "TEMPLATE.UPLOAD",
    "ISO.CREATE", "ISO.UPDATE", "ISO.DELETE", "ISO.COPY", "ISO.ATTACH", "ISO.DETACH",
    "ISO.EXTRACT", "ISO.UPLOAD",
    "UPDATE.PS", "ENABLE.PS", "DISABLE.PS", "MAINT.CANCEL.PS", "MAINT.PREPARE.PS",
    # identity
    "ACCOUNT.ENABLE", "ACCOUNT.DISABLE", "ACCOUNT.CREATE", "ACCOUNT.DELETE", "ACCOUNT.UPDATE",
    "USER.LOGIN", "USER.LOGOUT", "USER.CREATE", "USER.DELETE", "USER.DISABLE", "USER.MOVE",
    "USER.UPDATE", "USER.ENABLE", "USER.LOCK",
    "REGISTER.USER.KEY", "DELETE.USER.KEY",
    "DOMAIN.CREATE", "DOMAIN.DELETE", "DOMAIN.UPDATE", "DOMAIN.MOVE",
    "ROLE.CREATE", "ROLE.UPDATE", "ROLE.DELETE", "ROLE.IMPORT", "ROLE.ENABLE", "ROLE.DISABLE",
    "ROLE.PERMISSION.CREATE", "ROLE.PERMISSION.UPDATE", "ROLE.PERMISSION.DELETE",
    "PROJECT.CREATE", "PROJECT.UPDATE", "PROJECT.DELETE", "PROJECT.ACTIVATE",
    "PROJECT.SUSPEND", "PROJECT.ACCOUNT.ADD", "PROJECT.ACCOUNT.REMOVE",
    # offerings and infrastructure
    "SERVICE.OFFERING.CREATE", "SERVICE.OFFERING.EDIT", "SERVICE.OFFERING.DELETE",
    "DISK.OFFERING.CREATE", "DISK.OFFERING.EDIT", "DISK.OFFERING.DELETE",
    "NETWORK.OFFERING.CREATE", "NETWORK.OFFERING.EDIT", "NETWORK.OFFERING.DELETE",
    "VPC.OFFERING.CREATE", "VPC.OFFERING.UPDATE", "VPC.OFFERING.DELETE",
    "ZONE.CREATE", "ZONE.EDIT", "ZONE.DELETE", "POD.CREATE", "POD.EDIT", "POD.DELETE",
    "HOST.RECONNECT", "MAINT.CANCEL", "MAINT.PREPARE",
    "CONFIGURATION.VALUE.EDIT",
    # tags, usage, alerts
    "CREATE_TAGS", "DELETE_TAGS", "CREATE_RESOURCE_DETAILS", "DELETE_RESOURCE_DETAILS",
    "USAGE.REMOVE.USAGE.RECORDS", "ALERT.GENERATE",
)  # fmt: skip


def record(
    session: Session,
    caller: Caller,
    type: str,
    description: str,
    *,
    state: str = "Completed",
    level: str = "INFO",
    resource_id: str | None = None,
    resource_type: str | None = None,
    resource_name: str | None = None,
    job_id: str | None = None,
    account_id: int | None = None,
    domain_id: int | None = None,
) -> Event:
    owner = account_id if account_id is not None else caller.account_id
    start = _start_event(session, owner, type, job_id) if state != "Scheduled" else None
    event = Event(
        uuid=new_uuid(),
        type=type,
        state=state,
        level=level,
        description=description,
        user_id=caller.user_id,
        account_id=owner,
        domain_id=domain_id if domain_id is not None else caller.domain_id,
        resource_id=resource_id,
        resource_type=resource_type,
        # A job's completion names what its start named, even when the job body cannot.
        resource_name=resource_name or (start.resource_name if start is not None else None),
        job_id=job_id,
        parent_id=start.id if start is not None else None,
    )
    session.add(event)
    _to_outbox(session, caller, event)
    return event


def _to_outbox(session: Session, caller: Caller, event: Event) -> None:
    """The event's ActionEvent on the bus, in the same transaction (reference §7.2 payload)."""
    own = event.account_id == caller.account_id
    account = caller.account_name if own else _account_name(session, event.account_id)
    path = caller.domain_path if event.domain_id == caller.domain_id else None
    payload = {
        "eventid": event.uuid,
        "user": caller.user_uuid,
        "account": account,
        "event": event.type,
        "status": event.state,
        "level": event.level,
        "entity": event.resource_type,
        "entityuuid": event.resource_id,
        "description": event.description,
        "jobid": event.job_id,
        "eventDateTime": outbox.cs_date(utcnow()),
    }
    outbox.publish(
        session,
        outbox.ACTION,
        event.type,
        payload,
        account_id=event.account_id,
        domain_path=path or outbox.domain_path_of(session, event.domain_id),
        resource_type=event.resource_type,
        resource_uuid=event.resource_id,
        uuid=event.uuid,
    )


def _account_name(session: Session, account_id: int) -> str | None:
    account = session.get(Account, account_id)
    return account.name if account is not None else None


def _start_event(session: Session, account_id: int, type: str, job_id: str | None) -> Event | None:
    """The Scheduled event of the same job: filtering by the (indexed) account keeps it cheap."""
    if job_id is None:
        return None
    return session.scalar(
        select(Event)
        .where(
            Event.account_id == account_id,
            Event.type == type,
            Event.job_id == job_id,
            Event.state == "Scheduled",
        )
        .order_by(Event.id)
        .limit(1)
    )


# --- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventFilter:
    """listEvents' filters, already parsed; names follow the API's."""

    id: str | None = None
    type: str | None = None
    level: str | None = None
    state: str | None = None
    startdate: datetime | None = None
    enddate: datetime | None = None
    entrytime: int | None = None
    duration: int | None = None
    keyword: str | None = None
    resourceid: str | None = None
    resourcetype: str | None = None
    archived: bool = False
    startid: str | None = None


Parent = aliased(Event)


def select_events(
    session: Session, scope: ListScope, f: EventFilter
) -> Select[Event, Account, Domain, User, str]:
    """Events joined with what their response shows, scoped and filtered in SQL, newest first."""
    stmt = (
        select(Event, Account, Domain, User, Parent.uuid)
        .join(Account, Event.account_id == Account.id)
        .join(Domain, Event.domain_id == Domain.id)
        .outerjoin(User, Event.user_id == User.id)
        .outerjoin(Parent, Event.parent_id == Parent.id)
        .where(scope.where(Event.account_id, Domain.path))
    )
    for clause in _clauses(session, f):
        stmt = stmt.where(clause)
    return stmt.order_by(Event.created.desc(), Event.id.desc())


def _clauses(session: Session, f: EventFilter) -> list[ColumnElement[bool]]:
    _validate(f)
    out: list[ColumnElement[bool]] = []
    if f.id is not None:
        out.append(Event.uuid == f.id)
    else:
        # CloudStack hides archived events unless asked for them, but never an event named by id.
        out.append(Event.archived == f.archived)
    if f.startid is not None:
        start = session.scalar(select(Event.id).where(Event.uuid == f.startid))
        out.append(or_(Event.parent_id == start, Event.id == start) if start else false())
    if f.type is not None:
        out.append(Event.type == f.type)
    if f.level is not None:
        out.append(Event.level == f.level.upper())
    if f.state is not None:
        out.append(Event.state == f.state)
    if f.startdate is not None:
        out.append(Event.created >= f.startdate)
    if f.enddate is not None:
        out.append(Event.created <= f.enddate)
    if f.resourceid is not None:
        out.append(Event.resource_id == f.resourceid)
    if f.resourcetype is not None:
        out.append(func.lower(Event.resource_type) == f.resourcetype.lower())
    if f.keyword:
        like = f"%{f.keyword}%"
        out.append(
            or_(Event.type.ilike(like), Event.description.ilike(like), Event.level.ilike(like))
        )
    if f.entrytime is not None and f.duration is not None:
        out.extend(_pending(f.entrytime, f.duration))
    return out


def _validate(f: EventFilter) -> None:
    if f.resourceid is not None and f.resourcetype is None:
        raise ParamError("resourceid parameter must be used with resourcetype parameter")
    if f.state is not None and f.state not in STATES:
        raise ParamError(f"Invalid state specified: {f.state}")
    if f.level is not None and f.level.upper() not in LEVELS:
        raise ParamError(f"Invalid level {f.level}: one of {', '.join(LEVELS)}")
    if f.entrytime is not None and f.duration is not None and f.entrytime <= f.duration:
        raise ParamError("Entry time must be greater than duration")


def _pending(entrytime: int, duration: int) -> list[ColumnElement[bool]]:
    """Jobs still pending: started between ``entrytime`` and ``duration`` seconds ago, with no
    completion yet. CloudStack documents this pair but (since 4.x) answers it with an empty
    list; this is the behaviour its own commented-out code describes."""
    now = utcnow()
    done = aliased(Event)
    finished = select(done.id).where(done.parent_id == Event.id).exists()
    return [
        Event.state.in_(PENDING_STATES),
        Event.created >= now - timedelta(seconds=entrytime),
        Event.created <= now - timedelta(seconds=duration),
        ~finished,
    ]


# --- archiving and deleting ------------------------------------------------------------------


def permitted_scope(caller: Caller) -> ListScope:
    """Whose events a caller may archive or delete: its own, or its domain subtree's accounts."""
    if caller.role_type is RoleType.USER:
        return ListScope(account_id=caller.account_id)
    if caller.is_root_admin:
        return ListScope()
    return ListScope(domain_path=caller.domain_path, recursive=True)


def _targets(
    session: Session,
    caller: Caller,
    verb: str,
    ids: Sequence[str] | None,
    type: str | None,
    startdate: datetime | None,
    enddate: datetime | None,
) -> list[int]:
    """The caller's matching non-archived events; with ``ids``, all of them or none (an id
    that is unknown, archived or outside the caller's reach fails the whole call: CloudStack)."""
    if ids is None and type is None and enddate is None:
        raise ParamError("either ids, type or enddate must be specified")
    if startdate is not None and enddate is None:
        raise ParamError("enddate must be specified with startdate parameter")
    stmt = (
        select(Event.id)
        .join(Domain, Event.domain_id == Domain.id)
        .where(permitted_scope(caller).where(Event.account_id, Domain.path))
        .where(Event.archived.is_(False))
    )
    if ids is not None:
        stmt = stmt.where(Event.uuid.in_(ids))
    if type is not None:
        stmt = stmt.where(Event.type == type)
    if startdate is not None:
        stmt = stmt.where(Event.created >= startdate)
    if enddate is not None:
        stmt = stmt.where(Event.created <= enddate)
    found = list(session.scalars(stmt))
    if ids is not None and len(found) < len(set(ids)):
        raise InternalError(f"Unable to {verb} Events, one or more parameters has invalid values")
    return found


def archive(
    session: Session,
    caller: Caller,
    *,
    ids: Sequence[str] | None = None,
    type: str | None = None,
    startdate: datetime | None = None,
    enddate: datetime | None = None,
) -> int:
    """Archive the caller's matching events; with ``ids``, all of them or none (CloudStack)."""
    found = _targets(session, caller, "archive", ids, type, startdate, enddate)
    if found:
        session.execute(update(Event).where(Event.id.in_(found)).values(archived=True))
    return len(found)


def delete_events(
    session: Session,
    caller: Caller,
    *,
    ids: Sequence[str] | None = None,
    type: str | None = None,
    startdate: datetime | None = None,
    enddate: datetime | None = None,
) -> int:
    """Delete the caller's matching (non-archived) events; with ``ids``, all or none."""
    found = _targets(session, caller, "delete", ids, type, startdate, enddate)
    if found:
        # Completions point at their start event: unlink them before the start row goes.
        session.execute(update(Event).where(Event.parent_id.in_(found)).values(parent_id=None))
        session.execute(delete(Event).where(Event.id.in_(found)))
    return len(found)
