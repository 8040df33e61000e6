"""Quota tariffs (CloudStack's quota plugin): money, units, tariff versions and activation rules.

Money is ``Decimal`` here and whole 10⁻⁸ units in the database (``models_quota``); nothing
passes through a float. A tariff's value is per unit of its usage type's quota unit
(``Compute*Month``, ``GB*Month`` …, CloudStack's ``QuotaTypes``), so a VM running a whole
month at a tariff of 10 costs 10.

Tariffs are versioned: ``quotaTariffUpdate`` ends the version in force (``removed`` = now) and
adds a new version effective from now, so an old period computed again is charged exactly as
before. A version is in force over ``[effective_on, min(end_date, removed))``.

Activation rules are stored as given (CloudStack evaluates them as JavaScript). Cumulo embeds no
JS engine and evaluates only constant rules: empty (the tariff applies), ``true``/``false``,
or a number (that number is charged instead of the tariff's value). Any other rule is kept
and reported back, but the tariff is NOT applied (CloudStack's rule for a script whose result
is neither a boolean nor a number), with a warning in the log.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from cumulo.common.time import aware, utcnow
from cumulo.db.models_quota import QuotaTariff
from cumulo.services.errors import ParamError
from cumulo.services.usage.types import USAGE_TYPES

log = logging.getLogger(__name__)

SCALE = 10**8
EIGHT = Decimal("0.00000001")
CENTS = Decimal("0.01")
GIB = Decimal(1024**3)

COMPUTE_MONTH, IP_MONTH, GB_MONTH, GB = "Compute*Month", "IP*Month", "GB*Month", "GB"
POLICY_MONTH, IOPS, BYTES = "Policy*Month", "IOPS", "Bytes"
NETWORK_MONTH, VPC_MONTH = "Network*Month", "VPC*Month"
# Units charged per hour of the record, prorated over the hours of the record's month.
TIME_UNITS = (COMPUTE_MONTH, IP_MONTH, POLICY_MONTH, NETWORK_MONTH, VPC_MONTH)

# The quota unit of each usage type (CloudStack's QuotaTypes).
QUOTA_UNITS: dict[int, str] = {
    1: COMPUTE_MONTH,
    2: COMPUTE_MONTH,
    3: IP_MONTH,
    4: GB,
    5: GB,
    6: GB_MONTH,
    7: GB_MONTH,
    8: GB_MONTH,
    9: GB_MONTH,
    10: POLICY_MONTH,
    11: POLICY_MONTH,
    12: POLICY_MONTH,
    13: POLICY_MONTH,
    14: POLICY_MONTH,
    21: IOPS,
    22: IOPS,
    23: BYTES,
    24: BYTES,
    25: GB_MONTH,
    26: GB_MONTH,
    27: GB_MONTH,
    28: GB_MONTH,
    29: GB_MONTH,
    30: NETWORK_MONTH,
    31: VPC_MONTH,
    100: IOPS,  # requests: count x tariff
    101: IOPS,
    102: GB,  # transfer: bytes / GiB x tariff
    103: GB,
}
# Usage type ids 100-119 are reserved for Cumulo's object-storage usage; 100-103 are metered
# (services/usage/object_storage.py), bucket bytes use BUCKET (29). Whoever adds another adds
# it to ``types.USAGE_TYPES`` and its unit here; until then a tariff for such an id is refused.
OBJECT_STORAGE_TYPES = range(100, 120)


def to_e8(value: Decimal) -> int:
    return int((value * SCALE).to_integral_value(ROUND_HALF_EVEN))


def from_e8(value: int) -> Decimal:
    return (Decimal(value) / SCALE).quantize(EIGHT)


def wire(value: Decimal, places: Decimal = EIGHT) -> float:
    """A JSON number for the wire, as CloudStack's Gson writes BigDecimal. The value is
    rounded to ``places`` first; a float's repr of a value of at most 15 significant digits
    is exactly its decimal text, so nothing is lost on the way."""
    return float(value.quantize(places, ROUND_HALF_EVEN)) + 0.0  # + 0.0: never "-0.0"


def parse_money(text: str, what: str, *, negative: bool = False) -> Decimal:
    """A decimal amount from its text (never via float); 431 when malformed or negative."""
    try:
        value = Decimal(text.strip())
    except (InvalidOperation, AttributeError):
        raise ParamError(f"Unable to parse {what}: {text!r} is not a number") from None
    if not value.is_finite():
        raise ParamError(f"Unable to parse {what}: {text!r} is not a number")
    if value < 0 and not negative:
        raise ParamError(f"The {what} must not be negative: {text}")
    if abs(value) >= Decimal(10) ** 10:
        raise ParamError(f"The {what} is too large: {text}")
    return value.quantize(EIGHT, ROUND_HALF_EVEN)


def check_usage_type(usage_type: int) -> str:
    """The quota unit of a usage type; 431 for an id CloudStack (or Cumulo) does not meter."""
    unit = QUOTA_UNITS.get(usage_type)
    if usage_type not in USAGE_TYPES or unit is None:
        raise ParamError(f"Invalid usage type {usage_type}: see listUsageTypes")
    return unit


def window_end(t: QuotaTariff) -> datetime | None:
    ends = [aware(d) for d in (t.end_date, t.removed) if d is not None]
    return min(ends) if ends else None


def in_force(t: QuotaTariff, when: datetime) -> bool:
    end = window_end(t)
    return aware(t.effective_on) <= when and (end is None or when < end)


# --- activation rules ---------------------------------------------------------------------


def rule_value(t: QuotaTariff) -> Decimal | None:
    """What the tariff charges per unit under its activation rule; None: not applied."""
    value = from_e8(t.value_e8)
    rule = (t.activation_rule or "").strip().rstrip(";").strip()
    if not rule:
        return value
    if rule.lower() in ("true", "false"):
        return value if rule.lower() == "true" else None
    try:
        number = Decimal(rule)
    except InvalidOperation:
        log.warning(
            "quota tariff activation rule not evaluated (no JS engine); tariff not applied",
            extra={"tariff": t.uuid, "tariff_name": t.name},
        )
        return None
    return number.quantize(EIGHT, ROUND_HALF_EVEN) if number.is_finite() else None


@dataclass
class TariffBook:
    """Every tariff version, by usage type, read once per calculation run."""

    by_type: dict[int, list[QuotaTariff]]

    @classmethod
    def load(cls, session: Session) -> TariffBook:
        book: dict[int, list[QuotaTariff]] = {}
        rows = session.scalars(select(QuotaTariff).order_by(QuotaTariff.position, QuotaTariff.id))
        for t in rows:
            book.setdefault(t.usage_type, []).append(t)
        return cls(book)

    def value_at(self, usage_type: int, when: datetime) -> Decimal:
        """The tariffs of a type in force at ``when``, summed (CloudStack aggregates every
        tariff of a type whose rule applies)."""
        total = Decimal(0)
        for t in self.by_type.get(usage_type, ()):
            if in_force(t, when):
                value = rule_value(t)
                if value is not None:
                    total += value
        return total


# --- tariff commands ----------------------------------------------------------------------


@dataclass(frozen=True)
class TariffChange:
    value: Decimal | None = None
    description: str | None = None
    activation_rule: str | None = None
    end_date: datetime | None = None
    position: int | None = None


def active_by_name(session: Session, name: str) -> QuotaTariff | None:
    return session.scalar(
        select(QuotaTariff)
        .where(QuotaTariff.name == name, QuotaTariff.removed.is_(None))
        .order_by(QuotaTariff.id.desc())
        .limit(1)
    )


def create(
    session: Session,
    *,
    name: str,
    usage_type: int,
    value: Decimal,
    user_id: int | None,
    description: str | None = None,
    activation_rule: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    position: int | None = None,
) -> QuotaTariff:
    """A new tariff; every check comes before anything is written."""
    if not name.strip():
        raise ParamError("The quota tariff's name must not be empty")
    check_usage_type(usage_type)
    if value < 0:
        raise ParamError("The quota tariff's value must not be negative")
    now = utcnow()
    effective = aware(start) if start is not None else now
    if end is not None and aware(end) <= effective:
        raise ParamError(
            f"The quota tariff's end date [{end}] must be after its start date [{effective}]"
        )
    if active_by_name(session, name) is not None:
        raise ParamError(f"A quota tariff with name [{name}] already exists")
    tariff = QuotaTariff(
        name=name,
        description=description or None,
        usage_type=usage_type,
        value_e8=to_e8(value),
        activation_rule=activation_rule or None,
        position=position if position is not None else 1,
        effective_on=effective,
        end_date=aware(end) if end is not None else None,
        created=now,
        updated_on=now,
        updated_by=user_id,
    )
    session.add(tariff)
    session.flush()
    return tariff


def update(session: Session, name: str, change: TariffChange, user_id: int | None) -> QuotaTariff:
    """End the version in force and add the changed one, effective from now (or from the old
    version's start if that is still to come)."""
    current = active_by_name(session, name)
    if current is None:
        raise ParamError(f"Quota tariff with name [{name}] does not exist")
    if change.value is not None and change.value < 0:
        raise ParamError("The quota tariff's value must not be negative")
    now = utcnow()
    effective = max(now, aware(current.effective_on))
    end = change.end_date if change.end_date is not None else current.end_date
    if end is not None and aware(end) <= effective:
        raise ParamError(
            f"The quota tariff's end date [{end}] must be after its start date [{effective}]"
        )
    current.removed, current.updated_on = now, now
    new = QuotaTariff(
        name=current.name,
        # CloudStack: "Inform empty to remove the description/activation rule".
        description=_changed(current.description, change.description),
        usage_type=current.usage_type,
        value_e8=to_e8(change.value) if change.value is not None else current.value_e8,
        activation_rule=_changed(current.activation_rule, change.activation_rule),
        position=change.position if change.position is not None else current.position,
        effective_on=effective,
        end_date=aware(end) if end is not None else None,
        created=now,
        updated_on=now,
        updated_by=user_id,
    )
    session.add(new)
    session.flush()
    return new


def _changed(old: str | None, given: str | None) -> str | None:
    if given is None:
        return old
    return given or None


def delete(session: Session, uuid: str) -> QuotaTariff:
    """Mark removed: it stays in force for the time before, so old periods keep their charge."""
    tariff = session.scalar(
        select(QuotaTariff).where(QuotaTariff.uuid == uuid, QuotaTariff.removed.is_(None))
    )
    if tariff is None:
        raise ParamError(f"Quota tariff with the provided UUID [{uuid}] does not exist")
    now = utcnow()
    tariff.removed, tariff.updated_on = now, now
    session.flush()
    return tariff


def list_stmt(
    *,
    usage_type: int | None,
    start: datetime | None,
    end: datetime | None,
    name: str | None,
    include_removed: bool,
) -> Select[QuotaTariff]:
    """Tariffs (versions) in force at some time in ``[start, end]`` when dates are given."""
    stmt = select(QuotaTariff)
    if not include_removed:
        stmt = stmt.where(QuotaTariff.removed.is_(None))
    if usage_type is not None:
        stmt = stmt.where(QuotaTariff.usage_type == usage_type)
    if name is not None:
        stmt = stmt.where(QuotaTariff.name == name)
    if start is not None or end is not None:
        last = end if end is not None else start
        first = start if start is not None else end
        stmt = stmt.where(QuotaTariff.effective_on <= last)
        stmt = stmt.where((QuotaTariff.end_date.is_(None)) | (QuotaTariff.end_date > first))
    return stmt.order_by(QuotaTariff.usage_type, QuotaTariff.position, QuotaTariff.id)
