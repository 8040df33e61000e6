"""The usage ledger: raw usage events, the records aggregated from them, and the periods run.

``usage_events`` is CloudStack's ``usage_event``: one row per billable change (``VM.START``,
``VOLUME.RESIZE`` …), written in the same transaction as the change itself, so an event exists
exactly when the change committed. Resource ids are plain integers with no foreign key: a
usage event names rows of many tables, and outlives the rows it names.

``usage_records`` is CloudStack's ``cloud_usage``: per aggregation period, one row per
(account, usage type, resource, offering/size) with the hours (or bytes) used in that period.
UUIDs and names are copied in at aggregation time so a record still reads correctly after the
resource is expunged.

``usage_jobs`` has one row per aggregated period; the periods never overlap. Its unique
(start, end) is the guard that lets only one server schedule a period, and its ``state``
says whether the period's records are complete.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from cumulo.db.models import Base, _created_col, _uuid_col


class UsageEvent(Base):
    __tablename__ = "usage_events"
    __table_args__ = (Index("ix_usage_events_resource", "resource_type", "resource_id", "created"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    type: Mapped[str] = mapped_column(String(32))  # CloudStack's event type, e.g. VM.START
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    domain_id: Mapped[int] = mapped_column(Integer)
    zone_id: Mapped[int | None] = mapped_column(Integer)
    resource_type: Mapped[str] = mapped_column(String(32))  # VirtualMachine, Volume …
    resource_id: Mapped[int] = mapped_column(Integer)
    resource_uuid: Mapped[str] = mapped_column(String(36))
    resource_name: Mapped[str | None] = mapped_column(String(255))
    offering_id: Mapped[int | None] = mapped_column(Integer)
    template_id: Mapped[int | None] = mapped_column(Integer)
    size: Mapped[int | None] = mapped_column(BigInteger)  # bytes
    virtual_size: Mapped[int | None] = mapped_column(BigInteger)


class UsageRecord(Base):
    __tablename__ = "usage_records"
    __table_args__ = (
        Index("ix_usage_records_period", "start_date", "end_date"),
        Index("ix_usage_records_account_type", "account_id", "usage_type"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id"))
    zone_id: Mapped[int | None] = mapped_column(Integer)
    usage_type: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(Text)
    seconds: Mapped[int] = mapped_column(BigInteger)  # exact time used within the period
    raw_usage: Mapped[float] = mapped_column(Float)  # hours (seconds / 3600)
    usage_uuid: Mapped[str | None] = mapped_column(String(36))  # the resource billed
    vm_uuid: Mapped[str | None] = mapped_column(String(36))
    vm_name: Mapped[str | None] = mapped_column(String(255))
    offering_uuid: Mapped[str | None] = mapped_column(String(36))
    template_uuid: Mapped[str | None] = mapped_column(String(36))
    resource_type: Mapped[str | None] = mapped_column(String(32))  # e.g. the hypervisor
    size: Mapped[int | None] = mapped_column(BigInteger)
    virtual_size: Mapped[int | None] = mapped_column(BigInteger)
    cpu_number: Mapped[int | None] = mapped_column(Integer)
    cpu_speed: Mapped[int | None] = mapped_column(Integer)
    memory: Mapped[int | None] = mapped_column(Integer)
    start_date: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    end_date: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # exclusive


class UsageJob(Base):
    __tablename__ = "usage_jobs"
    __table_args__ = (UniqueConstraint("start_date", "end_date"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    start_date: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    end_date: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    state: Mapped[str] = mapped_column(String(16), default="Scheduled")  # Scheduled | Done
    job_uuid: Mapped[str | None] = mapped_column(String(36))  # the async job that runs it
    records: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[datetime] = _created_col()
    finished: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
