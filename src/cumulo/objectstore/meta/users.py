"""S3-only users and per-owner limits: the admin API's tables, and the quota check writers
run inside their committing transaction.

Secrets are sealed with the cloud's SecretBox (as CloudStack users' secret keys are) and
opened only to verify a signature or to hand a new secret to the admin who asked for it.
User lookups are not cached: disabling a user or issuing a new secret takes effect on the
next request in every ``cumulo s3`` process of a farm.
"""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cumulo.common.secretbox import SecretBox
from cumulo.common.time import aware, utcnow
from cumulo.db.engine import Database
from cumulo.objectstore.errors import S3Error
from cumulo.objectstore.meta.schema import buckets, limits, users

STATUSES = ("enabled", "disabled")
LIMIT_FIELDS = ("max_buckets", "max_bytes", "max_objects")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_KEY_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


@dataclass(frozen=True)
class Limits:
    """None means unlimited."""

    max_buckets: int | None = None
    max_bytes: int | None = None
    max_objects: int | None = None

    def as_dict(self) -> dict[str, int | None]:
        return {f: getattr(self, f) for f in LIMIT_FIELDS}


@dataclass(frozen=True)
class S3User:
    canonical_id: str
    key_id: str
    name: str
    email: str
    status: str
    is_admin: bool
    created: datetime
    limits: Limits


def new_key_id() -> str:
    return "CU" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(18))


def new_secret() -> str:
    return secrets.token_urlsafe(30)[:40]


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise S3Error("InvalidArgument", "name must be 1 to 255 characters.", ArgumentName="name")
    return name.strip()


def check_email(email: Any) -> str:
    if not isinstance(email, str) or len(email) > 255 or not _EMAIL.match(email):
        raise S3Error("InvalidArgument", "email is not a valid address.", ArgumentName="email")
    return email.strip().lower()


def check_limit(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise S3Error(
            "InvalidArgument",
            f"{name} must be a non-negative integer or null.",
            ArgumentName=name,
            ArgumentValue=str(value),
        )
    return value


class UserStore:
    def __init__(self, db: Database, box: SecretBox) -> None:
        self.db, self._box = db, box
        self._opened: dict[str, str] = {}

    # --- users ------------------------------------------------------------------------------

    def create(self, name: str, email: str, is_admin: bool, lim: Limits) -> tuple[S3User, str]:
        """A new enabled user; returns it and its secret (shown once, to the caller)."""
        secret = new_secret()
        values = {
            "canonical_id": str(uuid.uuid4()),
            "key_id": new_key_id(),
            "secret_enc": self._box.seal(secret),
            "name": name,
            "email": email,
            "status": "enabled",
            "is_admin": is_admin,
            "created": utcnow(),
        }
        try:
            with self.db.write() as s:
                if s.scalar(select(users.c.id).where(users.c.email == email)) is not None:
                    raise _email_taken(email)
                s.execute(insert(users).values(**values))
                _put_limits(s, str(values["canonical_id"]), lim)
        except IntegrityError as err:  # a racing create with the same email
            raise _email_taken(email) from err
        found = self.get(str(values["key_id"]))
        assert found is not None
        return found, secret

    def get(self, key_or_id: str) -> S3User | None:
        """By key id or canonical id."""
        stmt = _user_select().where(
            (users.c.key_id == key_or_id) | (users.c.canonical_id == key_or_id)
        )
        with self.db.read() as s:
            row = s.execute(stmt).first()
        return _user(row) if row is not None else None

    def by_email(self, email: str) -> S3User | None:
        """E-mail addresses are stored lower-case (``check_email``)."""
        stmt = _user_select().where(users.c.email == email.strip().lower())
        with self.db.read() as s:
            row = s.execute(stmt).first()
        return _user(row) if row is not None else None

    def list(self, status: str | None) -> list[S3User]:
        stmt = _user_select().order_by(users.c.id)
        if status is not None:
            stmt = stmt.where(users.c.status == status)
        with self.db.read() as s:
            return [_user(r) for r in s.execute(stmt)]

    def update(self, user: S3User, **values: Any) -> None:
        """Change name, email or status (values already checked)."""
        if not values:
            return
        try:
            with self.db.write() as s:
                email = values.get("email")
                if email is not None and email != user.email:
                    taken = s.scalar(select(users.c.id).where(users.c.email == email))
                    if taken is not None:
                        raise _email_taken(email)
                s.execute(update(users).where(users.c.key_id == user.key_id).values(**values))
        except IntegrityError as err:
            raise _email_taken(str(values.get("email"))) from err

    def new_secret(self, user: S3User) -> str:
        """Replace the user's secret: the old one stops verifying at once."""
        secret = new_secret()
        with self.db.write() as s:
            s.execute(
                update(users)
                .where(users.c.key_id == user.key_id)
                .values(secret_enc=self._box.seal(secret))
            )
        return secret

    def credentials(self, key_id: str) -> tuple[S3User, str] | None:
        """The user a key belongs to and its secret, for signature checks (one indexed read)."""
        stmt = _user_select().add_columns(users.c.secret_enc).where(users.c.key_id == key_id)
        with self.db.read() as s:
            row = s.execute(stmt).first()
        if row is None:
            return None
        return _user(row), self._open(str(row.secret_enc))

    def _open(self, sealed: str) -> str:
        plain = self._opened.get(sealed)
        if plain is None:
            plain = self._box.open(sealed)
            if len(self._opened) > 10_000:
                self._opened.clear()
            self._opened[sealed] = plain
        return plain

    # --- limits -----------------------------------------------------------------------------

    def limits(self, owner_id: str) -> Limits:
        with self.db.read() as s:
            row = s.execute(select(limits).where(limits.c.owner_id == owner_id)).first()
        return _limits(row)

    def set_limits(self, owner_id: str, lim: Limits) -> None:
        with self.db.write() as s:
            _put_limits(s, owner_id, lim)

    def usage(self, owner_id: str) -> tuple[int, int, int]:
        """(buckets, objects, bytes) the owner stores now."""
        with self.db.read() as s:
            return owner_totals(s, owner_id)


def owner_limits(db: Database, owner_id: str) -> Limits:
    """An owner's limits without a ``UserStore`` (no secrets needed to read them)."""
    with db.read() as s:
        row = s.execute(select(limits).where(limits.c.owner_id == owner_id)).first()
    return _limits(row)


def _user_select() -> Any:
    return select(users, limits.c.max_buckets, limits.c.max_bytes, limits.c.max_objects).join(
        limits, limits.c.owner_id == users.c.canonical_id, isouter=True
    )


def _user(row: Row[Any]) -> S3User:
    return S3User(
        canonical_id=row.canonical_id,
        key_id=row.key_id,
        name=row.name,
        email=row.email,
        status=row.status,
        is_admin=bool(row.is_admin),
        created=aware(row.created),
        limits=_limits(row),
    )


def _limits(row: Row[Any] | None) -> Limits:
    if row is None:
        return Limits()
    return Limits(row.max_buckets, row.max_bytes, row.max_objects)


def _put_limits(s: Session, owner_id: str, lim: Limits) -> None:
    s.execute(delete(limits).where(limits.c.owner_id == owner_id))
    if lim != Limits():
        s.execute(insert(limits).values(owner_id=owner_id, **lim.as_dict()))


def _email_taken(email: str) -> S3Error:
    err = S3Error("UserAlreadyExists", f"A user with email {email} already exists.")
    return err


# --- quota checks, run by writers inside their transaction ----------------------------------


def owner_totals(s: Session, owner_id: str) -> tuple[int, int, int]:
    row = s.execute(
        select(
            func.count(buckets.c.id),
            func.coalesce(func.sum(buckets.c.object_count), 0),
            func.coalesce(func.sum(buckets.c.byte_count), 0),
        ).where(buckets.c.owner_id == owner_id)
    ).one()
    return int(row[0]), int(row[1]), int(row[2])


def locked_limits(s: Session, owner_id: str) -> Limits | None:
    """The owner's limits, or None when it has none. On PostgreSQL the row lock serialises
    the owner's writers, so the totals read next are not raced by another commit (SQLite's
    BEGIN IMMEDIATE already serialises every writer)."""
    stmt = select(limits).where(limits.c.owner_id == owner_id)
    if s.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    row = s.execute(stmt).first()
    return _limits(row) if row is not None else None


def check_stored(s: Session, owner_id: str) -> None:
    """After a write's changes, inside its transaction: refuse (rolling it back) if the owner
    now stores more objects or bytes than its limits allow."""
    lim = locked_limits(s, owner_id)
    if lim is None or (lim.max_bytes is None and lim.max_objects is None):
        return
    _, count, size = owner_totals(s, owner_id)
    if lim.max_objects is not None and count > lim.max_objects:
        raise quota_error("objects", lim.max_objects)
    if lim.max_bytes is not None and size > lim.max_bytes:
        raise quota_error("bytes", lim.max_bytes)


def check_bucket_count(s: Session, owner_id: str) -> None:
    lim = locked_limits(s, owner_id)
    if lim is None or lim.max_buckets is None:
        return
    count, _, _ = owner_totals(s, owner_id)
    if count >= lim.max_buckets:
        raise S3Error(
            "TooManyBuckets",
            f"You have attempted to create more buckets than allowed ({lim.max_buckets}).",
        )


def quota_error(what: str, limit: int) -> S3Error:
    return S3Error("QuotaExceeded", f"The user's quota of {limit} {what} has been exceeded.")


def room(db: Database, owner_id: str) -> tuple[Limits, tuple[int, int, int]] | None:
    """The owner's limits and (buckets, objects, bytes) stored, or None when unlimited: the
    writers' early check, before a body is read."""
    with db.read() as s:
        row = s.execute(select(limits).where(limits.c.owner_id == owner_id)).first()
        if row is None:
            return None
        return _limits(row), owner_totals(s, owner_id)
