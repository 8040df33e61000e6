"""VM snapshots: a point-in-time state of every disk of a VM (and its memory), kept on the
VM's own volumes as qcow2 internal snapshots rather than exported to secondary storage.

The snapshots of one VM form a tree: ``parent_id`` is the snapshot that was current when this
one was taken, and exactly one snapshot per VM is ``current`` (the last taken or reverted to),
as CloudStack's vm_snapshots table keeps them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cumulo.db.models import Base, _created_col, _uuid_col


class VMSnapshot(Base):
    __tablename__ = "vm_snapshots"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    name: Mapped[str] = mapped_column(String(255))  # the tag on the disks: unique per VM
    display_name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(String(255))
    vm_id: Mapped[int] = mapped_column(ForeignKey("vm_instances.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id"))
    zone_id: Mapped[int] = mapped_column(ForeignKey("zones.id"))
    type: Mapped[str] = mapped_column(String(16))  # Disk | DiskAndMemory
    state: Mapped[str] = mapped_column(String(16), default="Allocated")
    current: Mapped[bool] = mapped_column(Boolean, default=False)
    parent_id: Mapped[int | None] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(BigInteger, default=0)  # the VM's disks' size when taken
    error: Mapped[str | None] = mapped_column(Text)
    created: Mapped[datetime] = _created_col()
    removed: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
