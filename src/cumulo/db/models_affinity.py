"""Affinity groups: an account's named set of VMs the planner keeps together or apart.

A deleted group's row goes away (CloudStack's affinity_group table has no removed column
either), so a name is unique among an account's groups with a plain unique constraint and
can be reused once the old group is deleted; events keep the uuid and name.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cumulo.db.models import Base, _created_col, _uuid_col


class AffinityGroup(Base):
    __tablename__ = "affinity_groups"
    __table_args__ = (UniqueConstraint("account_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(String(4096))
    type: Mapped[str] = mapped_column(String(32))  # "host affinity" | "host anti-affinity"
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id"), index=True)
    created: Mapped[datetime] = _created_col()


class AffinityGroupVmMap(Base):
    __tablename__ = "affinity_group_vm_map"
    __table_args__ = (UniqueConstraint("group_id", "vm_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("affinity_groups.id"), index=True)
    # The VM's integer key. A plain column for now: the foreign key to the VM table is
    # added by the migration that creates that table.
    vm_id: Mapped[int] = mapped_column(Integer, index=True)
