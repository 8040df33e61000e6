"""Templates and ISOs, and where their bytes live in secondary storage.

One ``templates`` row per registered image (an ISO is a template whose ``format`` is ISO, as
in CloudStack's vm_template). Where the bytes are is a separate ``template_store_refs`` row per
template per image store (CloudStack's template_store_ref): a download's state, progress and
failure reason belong to one store, so a template registered in two zones can be Ready in one
and in Error in the other. Accounts that a private template is shared with are rows in
``template_permissions`` (launch permissions), so a list can join on them in SQL.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from cumulo.db.models import Base, _created_col, _uuid_col


class Template(Base):
    __tablename__ = "templates"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    name: Mapped[str] = mapped_column(String(255))
    display_text: Mapped[str] = mapped_column(String(4096), default="")
    format: Mapped[str] = mapped_column(String(16))  # QCOW2 | RAW | VHD | OVA | ISO …
    is_iso: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    template_type: Mapped[str] = mapped_column(String(16), default="USER")
    hypervisor: Mapped[str | None] = mapped_column(String(32))
    os_type_id: Mapped[int | None] = mapped_column(ForeignKey("guest_os_types.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id"), index=True)
    is_public: Mapped[bool] = mapped_column(Boolean, default=False)
    is_featured: Mapped[bool] = mapped_column(Boolean, default=False)
    is_extractable: Mapped[bool] = mapped_column(Boolean, default=False)
    password_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    ssh_key_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    is_dynamically_scalable: Mapped[bool] = mapped_column(Boolean, default=False)
    requires_hvm: Mapped[bool] = mapped_column(Boolean, default=True)
    bits: Mapped[int] = mapped_column(Integer, default=64)
    bootable: Mapped[bool] = mapped_column(Boolean, default=True)
    cross_zones: Mapped[bool] = mapped_column(Boolean, default=False)
    url: Mapped[str] = mapped_column(String(2048))
    # As given: "{SHA-256}hex", "{MD5}hex" or a bare hex digest (its length names the algorithm).
    checksum: Mapped[str | None] = mapped_column(String(255))
    size: Mapped[int | None] = mapped_column(BigInteger)  # bytes, once a download finished
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created: Mapped[datetime] = _created_col()
    removed: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TemplateStoreRef(Base):
    __tablename__ = "template_store_refs"
    __table_args__ = (UniqueConstraint("template_id", "image_store_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("templates.id"), index=True)
    image_store_id: Mapped[int] = mapped_column(ForeignKey("image_stores.id"), index=True)
    zone_id: Mapped[int] = mapped_column(ForeignKey("zones.id"), index=True)
    state: Mapped[str] = mapped_column(String(16), default="Allocated")  # Downloading|Ready|Error
    download_pct: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    install_path: Mapped[str | None] = mapped_column(String(1024))
    size: Mapped[int | None] = mapped_column(BigInteger)
    physical_size: Mapped[int | None] = mapped_column(BigInteger)
    created: Mapped[datetime] = _created_col()
    updated: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TemplatePermission(Base):
    """An account a private template or ISO is shared with (updateTemplatePermissions)."""

    __tablename__ = "template_permissions"
    __table_args__ = (UniqueConstraint("template_id", "account_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("templates.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
