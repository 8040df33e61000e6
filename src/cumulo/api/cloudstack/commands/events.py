"""Events: listEvents, listEventTypes, archiveEvents, deleteEvents (reference §7.2).

The dispatcher writes events for every command that declares ``event=``; these commands only
read and tidy them. Scoping is the usual list scope for listEvents, and for archive/delete the
caller's own account (users) or domain subtree (admins), as CloudStack's audit trail does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from cumulo.api.cloudstack.registry import REGISTRY, Kind, Param, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx, Listing, Success
from cumulo.common.time import to_wire
from cumulo.db.models import Account, Domain, Event, User
from cumulo.services import events

EVENT_FIELDS = (
    "id",
    "username",
    "type",
    "level",
    "description",
    "account",
    "domainid",
    "domain",
    "domainpath",
    "resourceid",
    "resourcetype",
    "resourcename",
    "created",
    "state",
    "parentid",
    "archived",
)
DATE_HELP = ' (use format "yyyy-MM-dd" or the new format "yyyy-MM-dd HH:mm:ss")'


def domain_path(domain: Domain) -> str:
    """CloudStack shows paths from ROOT: "/" is "ROOT", "/a/b/" is "ROOT/a/b"."""
    return "ROOT" + domain.path.rstrip("/")


def event_response(
    event: Event, account: Account, domain: Domain, user: User | None, parent: str | None
) -> dict[str, Any]:
    return {
        "id": event.uuid,
        "username": user.username if user is not None else None,
        "type": event.type,
        "level": event.level,
        "description": event.description,
        "account": account.name,
        "domainid": domain.uuid,
        "domain": domain.name,
        "domainpath": domain_path(domain),
        "resourceid": event.resource_id,
        "resourcetype": event.resource_type,
        "resourcename": event.resource_name,
        "created": to_wire(event.created),
        "state": event.state,
        "parentid": parent,
        "archived": event.archived,
    }


@command(
    "listEvents",
    kind=Kind.LIST,
    description="A command to list events.",
    response="event",
    scoped=True,
    fields=EVENT_FIELDS,
    since="1.0",
)
def list_events(
    ctx: Ctx,
    id: Annotated[UUIDStr | None, Param("the ID of the event", entity="Event")] = None,
    type: Annotated[str | None, Param("the event type (see event types)")] = None,
    level: Annotated[str | None, Param("the event level (INFO, WARN, ERROR)")] = None,
    state: Annotated[
        str | None, Param("the state of the event (Created, Scheduled, Started, Completed)")
    ] = None,
    startdate: Annotated[
        datetime | None, Param("the start date range of the list you want to retrieve" + DATE_HELP)
    ] = None,
    enddate: Annotated[
        datetime | None, Param("the end date range of the list you want to retrieve" + DATE_HELP)
    ] = None,
    entrytime: Annotated[
        int | None,
        Param("the time the event was entered: with duration, lists jobs still pending"),
    ] = None,
    duration: Annotated[int | None, Param("the duration of the event")] = None,
    resourceid: Annotated[
        str | None, Param("the ID of the resource associated with the event", since="4.17.0")
    ] = None,
    resourcetype: Annotated[
        str | None, Param("the type of the resource associated with the event", since="4.17.0")
    ] = None,
    archived: Annotated[
        bool, Param("true to list archived events otherwise false", since="4.19.0")
    ] = False,
    startid: Annotated[
        UUIDStr | None,
        Param(
            "the parent/start ID of the event, when provided this will list all the events "
            "with the start/parent ID including the parent event",
            entity="Event",
        ),
    ] = None,
) -> Listing:
    filters = events.EventFilter(
        id=id,
        type=type,
        level=level,
        state=state,
        startdate=startdate,
        enddate=enddate,
        entrytime=entrytime,
        duration=duration,
        keyword=ctx.paging.keyword,
        resourceid=resourceid,
        resourcetype=resourcetype,
        archived=archived,
        startid=startid,
    )
    rows, total = ctx.page_rows(events.select_events(ctx.session, ctx.scope, filters))
    return Listing([event_response(*r) for r in rows], total)


def event_types() -> list[str]:
    """CloudStack's catalogue, plus any type a command here declares that it lacks."""
    known = list(events.EVENT_TYPES)
    declared = sorted({s.event for s in REGISTRY.values() if s.event} - set(known))
    return known + declared


@command(
    "listEventTypes",
    description="List Event Types",
    response="eventtype",
    fields=("name",),
    since="2.2.0",
)
def list_event_types(ctx: Ctx) -> Listing:
    names = event_types()
    return Listing([{"name": n} for n in names], len(names))


IdsParam = Annotated[list[UUIDStr] | None, Param("the IDs of the events", entity="Event")]


@command(
    "archiveEvents",
    description="Archive one or more events.",
    fields=("success", "displaytext"),
    since="4.2.0",
)
def archive_events(
    ctx: Ctx,
    ids: IdsParam = None,
    type: Annotated[str | None, Param("archive by event type")] = None,
    startdate: Annotated[
        datetime | None, Param("start date range to archive events (including) this date")
    ] = None,
    enddate: Annotated[
        datetime | None, Param("end date range to archive events (including) this date")
    ] = None,
) -> Success:
    events.archive(
        ctx.session, ctx.caller, ids=ids, type=type, startdate=startdate, enddate=enddate
    )
    return Success()


@command(
    "deleteEvents",
    description="Delete one or more events.",
    fields=("success", "displaytext"),
    since="4.2.0",
)
def delete_events(
    ctx: Ctx,
    ids: IdsParam = None,
    type: Annotated[str | None, Param("delete by event type")] = None,
    startdate: Annotated[
        datetime | None, Param("start date range to delete events (including) this date")
    ] = None,
    enddate: Annotated[
        datetime | None, Param("end date range to delete events (including) this date")
    ] = None,
) -> Success:
    events.delete_events(
        ctx.session, ctx.caller, ids=ids, type=type, startdate=startdate, enddate=enddate
    )
    return Success()
