"""The catalog that needs no hosts: offerings, guest OS types, SSH key pairs and user data.

Offerings are shared by every account; their visibility (a list of domains, a list of zones)
lives in ``offering_scopes`` rows rather than a comma list, so a list can filter by it in SQL.
Deleting an offering only marks it removed: VMs and volumes built from it keep naming it.
Key pairs and user data belong to one account and are deleted outright, as in CloudStack.
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


class GuestOsCategory(Base):
    __tablename__ = "guest_os_categories"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    name: Mapped[str] = mapped_column(String(255), unique=True)


class GuestOsType(Base):
    __tablename__ = "guest_os_types"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    category_id: Mapped[int] = mapped_column(ForeignKey("guest_os_categories.id"), index=True)
    # CloudStack's display_name: what listOsTypes shows as ``description``.
    display_name: Mapped[str] = mapped_column(String(255))
    is_user_defined: Mapped[bool] = mapped_column(Boolean, default=False)
    for_display: Mapped[bool] = mapped_column(Boolean, default=True)
    created: Mapped[datetime] = _created_col()
    removed: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ServiceOffering(Base):
    """CPU and memory for a VM; all three of cpu number, speed and memory, or none (custom)."""

    __tablename__ = "service_offerings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    name: Mapped[str] = mapped_column(String(255))
    display_text: Mapped[str] = mapped_column(String(4096), default="")
    cpu_number: Mapped[int | None] = mapped_column(Integer)
    cpu_speed: Mapped[int | None] = mapped_column(Integer)  # MHz
    memory: Mapped[int | None] = mapped_column(Integer)  # MiB
    # Bounds of a custom offering's values, asked for at deploy time.
    min_cpu_number: Mapped[int | None] = mapped_column(Integer)
    max_cpu_number: Mapped[int | None] = mapped_column(Integer)
    min_memory: Mapped[int | None] = mapped_column(Integer)
    max_memory: Mapped[int | None] = mapped_column(Integer)
    offer_ha: Mapped[bool] = mapped_column(Boolean, default=False)
    limit_cpu_use: Mapped[bool] = mapped_column(Boolean, default=False)
    is_volatile: Mapped[bool] = mapped_column(Boolean, default=False)
    customized_iops: Mapped[bool] = mapped_column(Boolean, default=False)
    dynamic_scaling: Mapped[bool] = mapped_column(Boolean, default=True)
    host_tags: Mapped[str | None] = mapped_column(String(4096))
    storage_tags: Mapped[str | None] = mapped_column(String(4096))
    storage_type: Mapped[str] = mapped_column(String(8), default="shared")  # shared | local
    provisioning_type: Mapped[str] = mapped_column(String(8), default="thin")
    root_disk_size: Mapped[int | None] = mapped_column(BigInteger)  # GiB
    sort_key: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(16), default="Active")
    created: Mapped[datetime] = _created_col()
    removed: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DiskOffering(Base):
    __tablename__ = "disk_offerings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    name: Mapped[str] = mapped_column(String(255))
    display_text: Mapped[str] = mapped_column(String(4096), default="")
    disk_size: Mapped[int] = mapped_column(BigInteger, default=0)  # GiB; 0 when customized
    customized: Mapped[bool] = mapped_column(Boolean, default=False)
    storage_tags: Mapped[str | None] = mapped_column(String(4096))
    storage_type: Mapped[str] = mapped_column(String(8), default="shared")
    provisioning_type: Mapped[str] = mapped_column(String(8), default="thin")
    # I/O throttles and other knobs clients send (bytesreadrate, iopswriterate …), as given.
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    display_offering: Mapped[bool] = mapped_column(Boolean, default=True)
    sort_key: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(16), default="Active")
    created: Mapped[datetime] = _created_col()
    removed: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class OfferingScope(Base):
    """One domain or one zone an offering is limited to; no row of a kind means public/all."""

    __tablename__ = "offering_scopes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    offering_kind: Mapped[str] = mapped_column(String(8))  # service | disk
    offering_id: Mapped[int] = mapped_column(Integer, index=True)
    domain_id: Mapped[int | None] = mapped_column(ForeignKey("domains.id"))
    zone_id: Mapped[int | None] = mapped_column(ForeignKey("zones.id"))


class SshKeyPair(Base):
    __tablename__ = "ssh_keypairs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    name: Mapped[str] = mapped_column(String(255))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id"))
    # Only the public half is ever stored; a generated private key leaves in one response.
    public_key: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(128))
    created: Mapped[datetime] = _created_col()

    __table_args__ = (UniqueConstraint("account_id", "name"),)


class UserData(Base):
    __tablename__ = "user_data"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    name: Mapped[str] = mapped_column(String(255))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id"))
    # Kept base64-encoded as registered: that is what the API and the metadata service serve.
    user_data: Mapped[str] = mapped_column(Text)
    params: Mapped[str | None] = mapped_column(String(4096))
    created: Mapped[datetime] = _created_col()

    __table_args__ = (UniqueConstraint("account_id", "name"),)
