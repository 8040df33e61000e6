"""The event bus: the outbox, its delivery tasks, webhooks and their deliveries, alerts.

``eventbus_outbox`` gets one row per event worth pushing (an action event, a job completion,
a resource state change, a usage event, an alert), written in the same transaction as the
change itself: a row exists exactly when the change committed, so a listener is fed at least
once even if the server dies right after the commit. Its ``id`` is the push stream's event id
(``Last-Event-ID``). ``account_id``/``domain_path`` say whose event it is (NULL for operator
events such as alerts), so the stream and the webhooks scope in SQL.

``eventbus_tasks`` is the fan-out: one row per (outbox row, sink) — a webhook or the RabbitMQ
exchange — claimed with a lease, retried with backoff, done or failed.

``webhooks`` and ``webhook_deliveries`` are CloudStack 4.20's webhook plugin tables;
``alerts`` is CloudStack's ``alert``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cumulo.db.models import Base, _created_col, _uuid_col


class OutboxEvent(Base):
    __tablename__ = "eventbus_outbox"
    __table_args__ = (Index("ix_eventbus_outbox_pending", "fanned_out", "id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    # CloudStack's EventCategory: ActionEvent, AsyncJobEvent, ResourceStateEvent, AlertEvent,
    # UsageEvent.
    category: Mapped[str] = mapped_column(String(32))
    type: Mapped[str] = mapped_column(String(64))
    resource_type: Mapped[str | None] = mapped_column(String(64))
    resource_uuid: Mapped[str | None] = mapped_column(String(36))
    account_id: Mapped[int | None] = mapped_column(Integer, index=True)
    domain_path: Mapped[str | None] = mapped_column(String(255))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created: Mapped[datetime] = _created_col()
    fanned_out: Mapped[bool] = mapped_column(Boolean, default=False)


class OutboxTask(Base):
    __tablename__ = "eventbus_tasks"
    __table_args__ = (Index("ix_eventbus_tasks_due", "state", "next_attempt"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    outbox_id: Mapped[int] = mapped_column(Integer, index=True)
    sink: Mapped[str] = mapped_column(String(16))  # webhook | rabbitmq
    webhook_id: Mapped[int | None] = mapped_column(Integer, index=True)
    state: Mapped[str] = mapped_column(String(16), default="Pending")  # Pending, Done, Failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    lease_owner: Mapped[int | None] = mapped_column(Integer)
    lease_expires: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    created: Mapped[datetime] = _created_col()


class Webhook(Base):
    __tablename__ = "webhooks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="Enabled")  # Enabled, Disabled
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id"))
    payload_url: Mapped[str] = mapped_column(Text)
    secret_key: Mapped[str | None] = mapped_column(String(255))
    ssl_verification: Mapped[bool] = mapped_column(Boolean, default=False)
    scope: Mapped[str] = mapped_column(String(16), default="Local")  # Local, Domain, Global
    created: Mapped[datetime] = _created_col()


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id"), index=True)
    event_uuid: Mapped[str | None] = mapped_column(String(36))
    event_type: Mapped[str] = mapped_column(String(64))
    server_id: Mapped[int | None] = mapped_column(Integer)
    headers: Mapped[str] = mapped_column(Text, default="")
    payload: Mapped[str] = mapped_column(Text, default="")
    success: Mapped[bool] = mapped_column(Boolean, default=False)
    response_code: Mapped[int | None] = mapped_column(Integer)
    response: Mapped[str] = mapped_column(Text, default="")
    start_date: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    end_date: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)


class Alert(Base):
    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    type: Mapped[int] = mapped_column(Integer, index=True)  # CloudStack's AlertType id
    name: Mapped[str] = mapped_column(String(64))  # e.g. ALERT.COMPUTE.HOST
    subject: Mapped[str] = mapped_column(Text)
    content: Mapped[str] = mapped_column(Text, default="")
    zone_id: Mapped[int | None] = mapped_column(Integer)
    pod_id: Mapped[int | None] = mapped_column(Integer)
    cluster_id: Mapped[int | None] = mapped_column(Integer)
    # What it is about (a host, a cluster, a job): repeats about the same thing are folded.
    resource_uuid: Mapped[str | None] = mapped_column(String(36))
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    sent_count: Mapped[int] = mapped_column(Integer, default=1)
    created: Mapped[datetime] = _created_col()
    last_sent: Mapped[datetime] = mapped_column(DateTime(timezone=True))
