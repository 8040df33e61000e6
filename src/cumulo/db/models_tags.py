"""Resource tags (CloudStack's ``resource_tags``): key/value pairs on any taggable resource.

A tag names its resource by type and integer key (``resource_id``) so a list can restrict
itself with an EXISTS on (type, id); the uuid is kept beside it so ``listTags`` can show it
without joining every resource table. Owner columns are copied from the resource when the
tag is written: scoping a tag list is then one WHERE on this table. Admin-only resources
(offerings, zones) have no owner account and are tagged by the root admin only.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cumulo.db.models import Base, _created_col, _uuid_col


class ResourceTag(Base):
    __tablename__ = "resource_tags"
    __table_args__ = (
        # Also the index behind filter_by_tags' EXISTS on (type, resource, key).
        UniqueConstraint("resource_type", "resource_id", "key"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    key: Mapped[str] = mapped_column(String(255))
    value: Mapped[str] = mapped_column(String(255))
    resource_type: Mapped[str] = mapped_column(String(64))  # CloudStack ResourceObjectType
    resource_id: Mapped[int] = mapped_column(Integer)  # the resource's integer key
    resource_uuid: Mapped[str] = mapped_column(String(36), index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    domain_id: Mapped[int | None] = mapped_column(ForeignKey("domains.id"), index=True)
    customer: Mapped[str | None] = mapped_column(String(255))
    created: Mapped[datetime] = _created_col()
