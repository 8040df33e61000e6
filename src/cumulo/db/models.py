"""SQLAlchemy models for the cloud database.

Integer primary keys join tables; ``uuid`` columns are what the API shows. Removed rows keep
their row with ``removed`` set, as CloudStack does, so events and usage can still name them.
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
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from cumulo.common.ids import new_uuid
from cumulo.common.time import utcnow

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _uuid_col() -> Mapped[str]:
    return mapped_column(String(36), unique=True, nullable=False, default=new_uuid)


def _created_col() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)


class Domain(Base):
    __tablename__ = "domains"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    name: Mapped[str] = mapped_column(String(255))
    # "/" for ROOT, "/a/b/" below it: a prefix match selects a subtree in one indexed query.
    path: Mapped[str] = mapped_column(String(1024), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("domains.id"))
    level: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(16), default="Active")
    network_domain: Mapped[str | None] = mapped_column(String(255))
    created: Mapped[datetime] = _created_col()
    removed: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    parent: Mapped[Domain | None] = relationship(remote_side=[id])


class Role(Base):
    __tablename__ = "roles"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    name: Mapped[str] = mapped_column(String(255))
    # Admin, DomainAdmin, User: the ceiling of what any rule of the role can allow.
    type: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(String(1024), default="")
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[datetime] = _created_col()
    removed: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RolePermission(Base):
    __tablename__ = "role_permissions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    role_id: Mapped[int] = mapped_column(ForeignKey("roles.id"), index=True)
    rule: Mapped[str] = mapped_column(String(255))
    permission: Mapped[str] = mapped_column(String(8))  # allow | deny
    description: Mapped[str] = mapped_column(String(1024), default="")
    sort_order: Mapped[int] = mapped_column(Integer, default=0)


class Account(Base):
    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    name: Mapped[str] = mapped_column(String(255))
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id"), index=True)
    # CloudStack account types: 0 user, 1 root admin, 2 domain admin.
    type: Mapped[int] = mapped_column(Integer, default=0)
    role_id: Mapped[int] = mapped_column(ForeignKey("roles.id"))
    state: Mapped[str] = mapped_column(String(16), default="enabled")
    network_domain: Mapped[str | None] = mapped_column(String(255))
    created: Mapped[datetime] = _created_col()
    removed: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    domain: Mapped[Domain] = relationship()
    role: Mapped[Role] = relationship()


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    username: Mapped[str] = mapped_column(String(255), index=True)
    password_hash: Mapped[str] = mapped_column(String(255), default="")
    firstname: Mapped[str] = mapped_column(String(255), default="")
    lastname: Mapped[str] = mapped_column(String(255), default="")
    email: Mapped[str] = mapped_column(String(255), default="")
    timezone: Mapped[str | None] = mapped_column(String(64))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    state: Mapped[str] = mapped_column(String(16), default="enabled")
    api_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    # Encrypted with the master key: a stolen database alone does not sign requests.
    secret_key_enc: Mapped[str | None] = mapped_column(Text)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(32), default="UNKNOWN")
    created: Mapped[datetime] = _created_col()
    removed: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    account: Mapped[Account] = relationship()


class ApiSession(Base):
    __tablename__ = "api_sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Only hashes are stored: the cookie and session key are bearer secrets.
    cookie_hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created: Mapped[datetime] = _created_col()
    expires: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ManagementServer(Base):
    __tablename__ = "management_servers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    name: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    version: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), default="Up")
    started: Mapped[datetime] = _created_col()
    last_seen: Mapped[datetime] = _created_col()


class AsyncJob(Base):
    __tablename__ = "async_jobs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id"))
    cmd: Mapped[str] = mapped_column(String(128))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # 0 in progress, 1 succeeded, 2 failed, 3 cancelled (CloudStack JobInfo.Status).
    status: Mapped[int] = mapped_column(Integer, default=0)
    result_code: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    instance_type: Mapped[str | None] = mapped_column(String(64))
    instance_id: Mapped[str | None] = mapped_column(String(36))
    # The serialisation key: jobs with the same key run one at a time, oldest first.
    sync_key: Mapped[str | None] = mapped_column(String(128))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("management_servers.id"))
    lease_expires: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[datetime] = _created_col()
    completed: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_async_jobs_status_sync_key", "status", "sync_key"),)


class Event(Base):
    __tablename__ = "events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    type: Mapped[str] = mapped_column(String(64), index=True)
    state: Mapped[str] = mapped_column(String(16), default="Completed")
    level: Mapped[str] = mapped_column(String(8), default="INFO")
    description: Mapped[str] = mapped_column(Text, default="")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id"))
    resource_id: Mapped[str | None] = mapped_column(String(36))
    resource_type: Mapped[str | None] = mapped_column(String(64))
    resource_name: Mapped[str | None] = mapped_column(String(255))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("events.id"))
    job_id: Mapped[str | None] = mapped_column(String(36))
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[datetime] = _created_col()


class Configuration(Base):
    """An override of a setting CloudStack exposes through listConfigurations.

    Definitions (defaults, types, scopes) live in code; only values an operator set are rows.
    """

    __tablename__ = "configurations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    scope: Mapped[str] = mapped_column(String(16), default="global")
    scope_id: Mapped[int] = mapped_column(Integer, default=0)
    value: Mapped[str] = mapped_column(Text)
    updated: Mapped[datetime] = _created_col()

    __table_args__ = (UniqueConstraint("name", "scope", "scope_id"),)


class ResourceLimit(Base):
    __tablename__ = "resource_limits"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_type: Mapped[str] = mapped_column(String(8))  # account | domain
    owner_id: Mapped[int] = mapped_column(Integer)
    resource_type: Mapped[int] = mapped_column(Integer)
    max: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (UniqueConstraint("owner_type", "owner_id", "resource_type"),)


class ResourceCount(Base):
    __tablename__ = "resource_counts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_type: Mapped[str] = mapped_column(String(8))
    owner_id: Mapped[int] = mapped_column(Integer)
    resource_type: Mapped[int] = mapped_column(Integer)
    count: Mapped[int] = mapped_column(BigInteger, default=0)

    __table_args__ = (UniqueConstraint("owner_type", "owner_id", "resource_type"),)
