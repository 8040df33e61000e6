"""Alerts: listAlerts, listAlertTypes, archiveAlerts, deleteAlerts (operators only).

Alerts are raised by services.eventbus.alerts (host down, capacity over threshold, internal
job failures); these commands read and tidy them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from sqlalchemy import select

from cumulo.api.cloudstack.registry import Kind, Param, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx, Listing, Success
from cumulo.common.time import to_wire
from cumulo.db.models_eventbus import Alert
from cumulo.services.access import ROOT_ADMIN
from cumulo.services.eventbus import alerts as svc

ALERT_FIELDS = ("id", "type", "name", "description", "sent")


def alert_response(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.uuid,
        "type": alert.type,
        "name": alert.name,
        "description": alert.subject,
        "sent": to_wire(svc.last_sent(alert)),
    }


@command(
    "listAlerts",
    kind=Kind.LIST,
    description="Lists all alerts.",
    response="alert",
    roles=ROOT_ADMIN,
    fields=ALERT_FIELDS,
    since="1.0",
)
def list_alerts(
    ctx: Ctx,
    id: Annotated[UUIDStr | None, Param("the ID of the alert", entity="Alert")] = None,
    type: Annotated[str | None, Param("list by alert type")] = None,
    name: Annotated[str | None, Param("list by alert name", since="4.3")] = None,
) -> Listing:
    # Archived alerts are hidden, but never one named by id (as listEvents).
    shown = Alert.uuid == id if id is not None else Alert.archived.is_(False)
    stmt = select(Alert).where(shown)
    if type is not None:
        stmt = stmt.where(Alert.type == svc.type_id(type))
    if name is not None:
        stmt = stmt.where(Alert.name == name)
    if ctx.paging.keyword:
        stmt = stmt.where(Alert.subject.ilike(f"%{ctx.paging.keyword}%"))
    rows, total = ctx.page(stmt.order_by(Alert.last_sent.desc(), Alert.id.desc()))
    return Listing([alert_response(a) for a in rows], total)


@command(
    "listAlertTypes",
    description="Lists all alerts types",
    response="alerttype",
    roles=ROOT_ADMIN,
    fields=("alerttypeid", "name"),
    since="4.19.0",
)
def list_alert_types(ctx: Ctx) -> Listing:
    items = [{"alerttypeid": k, "name": v} for k, v in sorted(svc.TYPES.items())]
    return Listing(items, len(items))


IdsParam = Annotated[list[UUIDStr] | None, Param("the IDs of the alerts", entity="Alert")]


@command(
    "archiveAlerts",
    description="Archive one or more alerts.",
    roles=ROOT_ADMIN,
    fields=("success", "displaytext"),
    since="4.2.0",
)
def archive_alerts(
    ctx: Ctx,
    ids: IdsParam = None,
    type: Annotated[str | None, Param("archive by alert type")] = None,
    startdate: Annotated[
        datetime | None, Param("start date range to archive alerts (including) this date")
    ] = None,
    enddate: Annotated[
        datetime | None, Param("end date range to archive alerts (including) this date")
    ] = None,
) -> Success:
    svc.archive(ctx.session, ids=ids, type=type, startdate=startdate, enddate=enddate)
    return Success()


@command(
    "deleteAlerts",
    description="Delete one or more alerts.",
    roles=ROOT_ADMIN,
    fields=("success", "displaytext"),
    since="4.2.0",
)
def delete_alerts(
    ctx: Ctx,
    ids: IdsParam = None,
    type: Annotated[str | None, Param("delete by alert type")] = None,
    startdate: Annotated[
        datetime | None, Param("start date range to delete alerts (including) this date")
    ] = None,
    enddate: Annotated[
        datetime | None, Param("end date range to delete alerts (including) this date")
    ] = None,
) -> Success:
    svc.delete_alerts(ctx.session, ids=ids, type=type, startdate=startdate, enddate=enddate)
    return Success()
