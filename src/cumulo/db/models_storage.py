"""Block storage beyond the volume row: snapshots on secondary storage and snapshot policies.

A snapshot keeps the size of the volume it was taken of (``size``) because revert and
"volume from snapshot" restore that size, and the bytes it takes on secondary storage
(``physical_size``) because that is what the secondary_storage limit counts. ``install_path``
is relative to its image store and is only set once the export is complete (written under a
temporary name and renamed), so a row with a path always names a whole file.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cumulo.db.models import Base, _created_col, _uuid_col


class Snapshot(Base):
    __tablename__ = "snapshots"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    name: Mapped[str] = mapped_column(String(255))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id"))
    zone_id: Mapped[int] = mapped_column(ForeignKey("zones.id"))
    volume_id: Mapped[int] = mapped_column(ForeignKey("volumes.id"), index=True)
    volume_type: Mapped[str] = mapped_column(String(16))  # ROOT | DATADISK
    interval_type: Mapped[str] = mapped_column(String(16), default="MANUAL")
    policy_id: Mapped[int | None] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="Allocated")
    size: Mapped[int] = mapped_column(BigInteger)  # the volume's size when taken
    physical_size: Mapped[int] = mapped_column(BigInteger, default=0)  # bytes on the store
    store_id: Mapped[int | None] = mapped_column(ForeignKey("image_stores.id"))
    install_path: Mapped[str | None] = mapped_column(String(1024))
    error: Mapped[str | None] = mapped_column(Text)
    created: Mapped[datetime] = _created_col()
    removed: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SnapshotPolicy(Base):
    """A recurring snapshot schedule of one volume (CloudStack's snapshot_policy)."""

    __tablename__ = "snapshot_policies"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    volume_id: Mapped[int] = mapped_column(ForeignKey("volumes.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    interval_type: Mapped[str] = mapped_column(String(16))  # HOURLY | DAILY | WEEKLY | MONTHLY
    schedule: Mapped[str] = mapped_column(String(64))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    max_snaps: Mapped[int] = mapped_column(Integer)
    display: Mapped[bool] = mapped_column(Boolean, default=True)
    next_run: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    created: Mapped[datetime] = _created_col()
    removed: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
