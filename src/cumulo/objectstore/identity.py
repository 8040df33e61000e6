"""S3 credentials from the cloud's users: the one module that reads the cloud database.

Every enabled CloudStack user's API key and secret key are an S3 key pair; the principal is
the user's *account* (S3 buckets belong to accounts, and CloudStack users of one account share
its resources), so the canonical owner id is the account's UUID. Lookups are cached for a few
seconds because every request needs one.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from sqlalchemy import func, select

from cumulo.common.secretbox import SecretBox
from cumulo.db.engine import Database
from cumulo.db.models import Account, Domain, User
from cumulo.objectstore.auth import AuthError, Credentials
from cumulo.objectstore.meta.users import UserStore

# Account types CloudStack calls admins: 1 root admin, 2 domain admin.
ROOT_ADMIN_TYPE = 1


@dataclass(frozen=True)
class Principal:
    """Who signed a request: the owner id (account UUID) is what buckets and ACLs name."""

    owner_id: str
    display_name: str
    user_uuid: str
    is_admin: bool


class CloudIdentity:
    def __init__(self, db: Database, box: SecretBox, ttl: float = 5.0) -> None:
        self._db, self._box, self._ttl = db, box, ttl
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, Credentials | None]] = {}

    def lookup(self, access_key: str) -> Credentials | None:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(access_key)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        creds = self._load(access_key)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[access_key] = (now, creds)
        return creds

    def account_exists(self, account_uuid: str) -> bool:
        """Whether a live cloud account has this UUID (the owner id its buckets carry)."""
        stmt = select(Account.id).where(Account.uuid == account_uuid, Account.removed.is_(None))
        with self._db.read() as session:
            return session.scalar(stmt) is not None

    def account_name(self, account_uuid: str) -> str | None:
        """A live account's name: the display name grants to it show."""
        stmt = select(Account.name).where(Account.uuid == account_uuid, Account.removed.is_(None))
        with self._db.read() as session:
            return session.scalar(stmt)

    def account_by_email(self, email: str) -> str | None:
        """The account of the live user with this e-mail address (grants by e-mail name
        the account, as every other grant does)."""
        stmt = (
            select(Account.uuid)
            .join(User, User.account_id == Account.id)
            .where(
                func.lower(User.email) == email.strip().lower(),
                User.removed.is_(None),
                Account.removed.is_(None),
            )
            .order_by(User.id)
            .limit(1)
        )
        with self._db.read() as session:
            return session.scalar(stmt)

    def _load(self, access_key: str) -> Credentials | None:
        stmt = (
            select(User, Account)
            .join(Account, User.account_id == Account.id)
            .join(Domain, Account.domain_id == Domain.id)
            .where(
                User.api_key == access_key,
                User.removed.is_(None),
                Account.removed.is_(None),
                Domain.removed.is_(None),
                User.state == "enabled",
                Account.state == "enabled",
                Domain.state == "Active",
            )
        )
        with self._db.read() as session:
            row = session.execute(stmt).first()
            if row is None or row[0].secret_key_enc is None:
                return None
            user, account = row
            sealed: str = row[0].secret_key_enc
            principal = Principal(
                owner_id=account.uuid,
                display_name=account.name,
                user_uuid=user.uuid,
                is_admin=account.type == ROOT_ADMIN_TYPE,
            )
            secret = self._box.open(sealed)
        return Credentials(access_key=access_key, secret_key=secret, principal=principal)


def looks_like_s3_key(access_key: str) -> bool:
    """S3-only users' key ids are always made by ``new_key_id`` (``CU`` + 18 of A-Z0-9), so
    other keys never cost a read of ``s3_users``."""
    return len(access_key) == 20 and access_key.startswith("CU") and access_key.isalnum()


class Identities:
    """Both kinds of S3 user: the admin API's S3-only users (the metadata database, read on
    every request so a disable or a new secret takes effect at once) and the cloud's users
    (``CloudIdentity``)."""

    def __init__(self, users: UserStore, cloud: CloudIdentity) -> None:
        self.users, self.cloud = users, cloud

    def lookup(self, access_key: str) -> Credentials | None:
        if looks_like_s3_key(access_key):
            found = self.users.credentials(access_key)
            if found is not None:
                user, secret = found
                if user.status != "enabled":
                    # Whatever the signature: a disabled user's keys open nothing, presigned
                    # URLs made before the disable included.
                    raise AuthError("AccessDenied", "Access Denied")
                principal = Principal(
                    user.canonical_id, user.name, user.canonical_id, user.is_admin
                )
                return Credentials(access_key=access_key, secret_key=secret, principal=principal)
        return self.cloud.lookup(access_key)

    def owner_exists(self, canonical_id: str) -> bool:
        """Whether an id names an S3-only user or a cloud account (the ids grants name)."""
        user = self.users.get(canonical_id)
        if user is not None and user.canonical_id == canonical_id:
            return True
        return self.cloud.account_exists(canonical_id)

    def display_name(self, canonical_id: str) -> str | None:
        """The name GetBucketAcl/GetObjectAcl show next to a grantee's id."""
        user = self.users.get(canonical_id)
        if user is not None and user.canonical_id == canonical_id:
            return user.name
        return self.cloud.account_name(canonical_id)

    def owner_by_email(self, email: str) -> str | None:
        """Whom an ``emailAddress`` grant names: an S3-only user or a cloud account."""
        user = self.users.by_email(email)
        if user is not None:
            return user.canonical_id
        return self.cloud.account_by_email(email)

    def owner_of(self, ref: str) -> str | None:
        """The owner id an admin means by ``ref``: an S3-only user's key id or canonical id,
        a cloud user's API key, or a cloud account's UUID."""
        user = self.users.get(ref)
        if user is not None:
            return user.canonical_id
        creds = self.cloud.lookup(ref)
        if creds is not None:
            return str(creds.principal.owner_id)
        return ref if self.cloud.account_exists(ref) else None
