"""Chargeback (CloudStack's quota plugin): tariffs, credits, per-account quota state, and the
quota computed from usage records.

Money is stored as whole units of 10⁻⁸ of the currency (``*_e8`` BigInteger columns): exact in
every database (SQLite has no decimal type and would round-trip ``Numeric`` through floats) and
summed exactly by SQL. The services convert to ``Decimal`` at the edges.

``quota_tariffs`` keeps every version of a tariff: an update ends the current version (its
``removed``) and adds a new one, so a period computed again later is charged with the tariff
that was in force then, and a re-run gives the same figures.

``quota_usage`` has one row per usage record charged (CloudStack's ``quota_usage``), keyed by the
aggregation period; ``quota_periods`` says which periods are computed and when, so a run only
redoes periods whose records (or the tariffs) changed since.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from cumulo.db.models import Base, _created_col, _uuid_col


class QuotaTariff(Base):
    __tablename__ = "quota_tariffs"
    __table_args__ = (Index("ix_quota_tariffs_type_effective", "usage_type", "effective_on"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    name: Mapped[str] = mapped_column(String(255), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    usage_type: Mapped[int] = mapped_column(Integer)
    value_e8: Mapped[int] = mapped_column(BigInteger)  # per unit (e.g. per Compute*Month)
    activation_rule: Mapped[str | None] = mapped_column(Text)
    position: Mapped[int] = mapped_column(Integer, default=1)
    effective_on: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    end_date: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # exclusive
    created: Mapped[datetime] = _created_col()
    updated_on: Mapped[datetime] = _created_col()  # any change, so computed periods redo
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    removed: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class QuotaCredit(Base):
    __tablename__ = "quota_credits"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id"))
    amount_e8: Mapped[int] = mapped_column(BigInteger)  # negative to take credit away
    created: Mapped[datetime] = _created_col()
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class QuotaAccount(Base):
    """Per-account quota settings and the balance as of the last calculation."""

    __tablename__ = "quota_accounts"
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    min_balance_e8: Mapped[int] = mapped_column(BigInteger, default=0)
    enforce: Mapped[bool] = mapped_column(Boolean, default=False)
    balance_e8: Mapped[int] = mapped_column(BigInteger, default=0)
    balance_date: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    locked: Mapped[bool] = mapped_column(Boolean, default=False)  # locked BY quota
    alert: Mapped[str | None] = mapped_column(String(16))  # last alert raised: low | empty
    alert_date: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class QuotaUsage(Base):
    __tablename__ = "quota_usage"
    __table_args__ = (
        Index("ix_quota_usage_period", "start_date", "end_date"),
        Index("ix_quota_usage_account", "account_id", "start_date"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id"))
    usage_type: Mapped[int] = mapped_column(Integer)
    usage_uuid: Mapped[str | None] = mapped_column(String(36))
    description: Mapped[str] = mapped_column(Text)
    seconds: Mapped[int] = mapped_column(BigInteger)
    size: Mapped[int | None] = mapped_column(BigInteger)
    tariff_e8: Mapped[int] = mapped_column(BigInteger)  # the tariffs applied, summed
    amount_e8: Mapped[int] = mapped_column(BigInteger)
    start_date: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    end_date: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # exclusive


class QuotaPeriod(Base):
    __tablename__ = "quota_periods"
    __table_args__ = (UniqueConstraint("start_date", "end_date"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    start_date: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    end_date: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    computed: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    records: Mapped[int] = mapped_column(Integer, default=0)
