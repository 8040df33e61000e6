"""Alerts: conditions an operator must hear about (CloudStack's AlertManager).

Raised for a host that goes Disconnected or Down, a cluster whose allocated CPU or memory
crosses its notification threshold, and a job that failed with an internal error (a user's
bad input is not the operator's business). An alert is a row (listAlerts) and an AlertEvent
on the bus (``publish.alert.events``), both in the transaction of the change that raised it.
The same condition about the same thing is folded into the open alert (``sent_count``)
instead of piling up rows, as long as it was last raised less than ``FOLD`` ago.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.orm import Session

from cumulo.common.ids import new_uuid
from cumulo.common.time import aware, utcnow
from cumulo.db.models import AsyncJob
from cumulo.db.models_eventbus import Alert
from cumulo.db.models_infra import Cluster, Host, HostCapacity
from cumulo.services.errors import InternalError, ParamError
from cumulo.services.eventbus import outbox

# CloudStack's AlertService.AlertType ids and names; 100+ are Cumulo's own.
TYPES: dict[int, str] = {
    0: "ALERT.MEMORY",
    1: "ALERT.CPU",
    2: "ALERT.STORAGE",
    3: "ALERT.STORAGE.ALLOCATED",
    4: "ALERT.NETWORK.PUBLICIP",
    5: "ALERT.NETWORK.PRIVATEIP",
    6: "ALERT.STORAGE.SECONDARY",
    7: "ALERT.COMPUTE.HOST",
    8: "ALERT.USERVM",
    9: "ALERT.SERVICE.DOMAINROUTER",
    10: "ALERT.SERVICE.CONSOLEPROXY",
    11: "ALERT.NETWORK.ROUTING",
    12: "ALERT.STORAGE.MISC",
    13: "ALERT.USAGE",
    14: "ALERT.MANAGEMENT",
    18: "ALERT.NETWORK.VLAN",
    20: "ALERT.USAGE.RESULT",
    22: "ALERT.RESOURCE.COUNT",
    25: "ALERT.STORAGE.LOCAL",
    26: "ALERT.RESOURCE.EXCEED",
    27: "ALERT.TYPE.SYNC",
    28: "ALERT.UPLOAD.FAILED",
    30: "ALERT.HA.ACTION",
    100: "ALERT.ASYNCJOB.FAILURE",
}
MEMORY, CPU, HOST, JOB_FAILURE = 0, 1, 7, 100
FOLD = timedelta(hours=1)


def raise_alert(
    session: Session,
    type: int,
    subject: str,
    content: str = "",
    *,
    resource_uuid: str | None = None,
    zone_id: int | None = None,
    pod_id: int | None = None,
    cluster_id: int | None = None,
) -> Alert:
    """Record an alert and put it on the bus; a repeat about the same thing is folded."""
    now = utcnow()
    alert = _open_alert(session, type, resource_uuid, subject, now)
    if alert is not None:
        alert.sent_count += 1
        alert.last_sent = now
        return alert
    alert = Alert(
        uuid=new_uuid(),  # not flushed for it: this may run inside a flush (job failures)
        type=type,
        name=TYPES.get(type, f"ALERT.{type}"),
        subject=subject,
        content=content,
        resource_uuid=resource_uuid,
        zone_id=zone_id,
        pod_id=pod_id,
        cluster_id=cluster_id,
        archived=False,
        sent_count=1,
        created=now,
        last_sent=now,
    )
    session.add(alert)
    payload = {
        "alertid": alert.uuid,
        "event": alert.name,
        "dataCenterId": zone_id,
        "podId": pod_id,
        "subject": subject,
        "body": content,
        "eventDateTime": outbox.cs_date(now),
    }
    outbox.publish(
        session, outbox.ALERT, alert.name, payload, resource_type="Alert",
        resource_uuid=resource_uuid,
    )  # fmt: skip
    return alert


def _open_alert(
    session: Session, type: int, resource_uuid: str | None, subject: str, now: datetime
) -> Alert | None:
    stmt = (
        select(Alert)
        .execution_options(autoflush=False)
        .where(
            Alert.type == type,
            Alert.archived.is_(False),
            Alert.subject == subject,
            Alert.last_sent > now - FOLD,
        )
    )
    if resource_uuid is not None:
        stmt = stmt.where(Alert.resource_uuid == resource_uuid)
    return session.scalar(stmt.order_by(Alert.id.desc()).limit(1))


# --- the conditions ----------------------------------------------------------------------------


def hosts_changed(session: Session, host_ids: Sequence[int], status: str) -> None:
    """Hosts that just went Disconnected or Down (the agent monitor's conditional UPDATE)."""
    for host in session.scalars(select(Host).where(Host.id.in_(host_ids))):
        raise_alert(
            session,
            HOST,
            f"Host {host.name} ({host.uuid}) is {status}",
            f"The management server lost contact with host {host.name}: status {status}",
            resource_uuid=host.uuid,
            zone_id=host.zone_id,
            pod_id=host.pod_id,
            cluster_id=host.cluster_id,
        )


def job_failed(session: Session, job: AsyncJob) -> None:
    text = str((job.result or {}).get("errortext", ""))
    raise_alert(
        session,
        JOB_FAILURE,
        f"Job {job.uuid} ({job.cmd}) failed with an internal error",
        text,
        resource_uuid=job.uuid,
    )


def check_capacity(session: Session, cpu_threshold: float, mem_threshold: float) -> int:
    """Clusters whose allocated (used + reserved) CPU or memory is above its threshold of the
    raw capacity; returns the number of alerts raised or folded."""
    raised = 0
    thresholds = {CPU: cpu_threshold, MEMORY: mem_threshold}
    for cluster, kind, allocated, total in _cluster_usage(session):
        threshold = thresholds[kind]
        if not total or allocated / total <= threshold:
            continue
        what = "cpu" if kind == CPU else "memory"
        raise_alert(
            session,
            kind,
            f"Allocated {what} of cluster {cluster.name} is above {threshold:.0%} of capacity",
            f"{allocated} of {total} allocated ({allocated / total:.1%})",
            resource_uuid=cluster.uuid,
            zone_id=cluster.zone_id,
            pod_id=cluster.pod_id,
            cluster_id=cluster.id,
        )
        raised += 1
    return raised


def _cluster_usage(session: Session) -> list[Any]:
    """(cluster, capacity type, allocated, total) per cluster; HostCapacity type 0 is memory
    and 1 cpu, the same ids as the alert types."""
    stmt = (
        select(
            Cluster,
            HostCapacity.type,
            func.sum(HostCapacity.used + HostCapacity.reserved),
            func.sum(HostCapacity.total),
        )
        .join(Host, Host.cluster_id == Cluster.id)
        .join(HostCapacity, HostCapacity.host_id == Host.id)
        .where(Host.removed.is_(None), HostCapacity.type.in_((MEMORY, CPU)))
        .group_by(Cluster.id, HostCapacity.type)
    )
    return list(session.execute(stmt).all())


# --- listing and tidying -----------------------------------------------------------------------


def _targets(
    session: Session,
    verb: str,
    ids: Sequence[str] | None,
    type: str | None,
    startdate: datetime | None,
    enddate: datetime | None,
) -> list[int]:
    """Matching non-archived alerts; with ``ids``, all of them or none."""
    if ids is None and type is None and enddate is None:
        raise ParamError("either ids, type or enddate must be specified")
    if startdate is not None and enddate is None:
        raise ParamError("enddate must be specified with startdate parameter")
    clauses: list[ColumnElement[bool]] = [Alert.archived.is_(False)]
    if ids is not None:
        clauses.append(Alert.uuid.in_(ids))
    if type is not None:
        clauses.append(Alert.type == type_id(type))
    if startdate is not None:
        clauses.append(Alert.created >= startdate)
    if enddate is not None:
        clauses.append(Alert.created <= enddate)
    found = list(session.scalars(select(Alert.id).where(*clauses)))
    if ids is not None and len(found) < len(set(ids)):
        raise InternalError(f"Unable to {verb} Alerts, one or more parameters has invalid values")
    return found


def type_id(text: str) -> int:
    if text.isdigit():
        return int(text)
    for key, name in TYPES.items():
        if name == text:
            return key
    raise ParamError(f"Invalid alert type {text}")


def archive(session: Session, **filters: Any) -> int:
    found = _targets(session, "archive", **filters)
    if found:
        session.execute(update(Alert).where(Alert.id.in_(found)).values(archived=True))
    return len(found)


def delete_alerts(session: Session, **filters: Any) -> int:
    found = _targets(session, "delete", **filters)
    if found:
        session.execute(delete(Alert).where(Alert.id.in_(found)))
    return len(found)


def last_sent(alert: Alert) -> datetime:
    return aware(alert.last_sent)
