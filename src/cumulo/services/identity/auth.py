"""Authentication: API keys, passwords and sessions, all resolving to one ``Caller``.

Every failure reads the same to the client (401, one text), so a caller cannot tell a wrong
key from a disabled account; the log says which.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Row, Select, delete, select, update
from sqlalchemy.orm import Session

from cumulo.common.ids import digest, new_session_key
from cumulo.common.secretbox import SecretBox
from cumulo.common.time import aware, utcnow
from cumulo.db.models import Account, ApiSession, Domain, Role, User
from cumulo.services.access import Caller, RoleType
from cumulo.services.errors import Unauthorized
from cumulo.services.identity.passwords import hash_password, needs_rehash, verify_password

log = logging.getLogger(__name__)
BAD_CREDENTIALS = "unable to verify user credentials and/or request signature"
BAD_LOGIN = (
    "Failed to authenticate user {user} in domain {domain}; please provide valid credentials"
)


def _caller_select() -> Select[User, Account, Domain, Role]:
    return (
        select(User, Account, Domain, Role)
        .join(Account, User.account_id == Account.id)
        .join(Domain, Account.domain_id == Domain.id)
        .join(Role, Account.role_id == Role.id)
        .where(User.removed.is_(None), Account.removed.is_(None), Domain.removed.is_(None))
    )


def _caller(row: Row[User, Account, Domain, Role]) -> Caller:
    user, account, domain, role = row
    return Caller(
        user_id=user.id,
        user_uuid=user.uuid,
        username=user.username,
        account_id=account.id,
        account_uuid=account.uuid,
        account_name=account.name,
        account_type=account.type,
        domain_id=domain.id,
        domain_uuid=domain.uuid,
        domain_name=domain.name,
        domain_path=domain.path,
        role_id=role.id,
        role_type=RoleType(role.type),
    )


def _usable(row: Row[User, Account, Domain, Role]) -> bool:
    user, account, domain, _ = row
    return bool(user.state == "enabled" and account.state == "enabled" and domain.state == "Active")


def caller_by_user_id(
    session: Session, user_id: int, allow_disabled: bool = False
) -> Caller | None:
    """A job keeps running as its submitter even if that account was disabled meanwhile."""
    stmt = (
        _caller_select()
        if not allow_disabled
        else (
            select(User, Account, Domain, Role)
            .join(Account, User.account_id == Account.id)
            .join(Domain, Account.domain_id == Domain.id)
            .join(Role, Account.role_id == Role.id)
        )
    )
    row = session.execute(stmt.where(User.id == user_id)).first()
    if row is None or not (allow_disabled or _usable(row)):
        return None
    return _caller(row)


@dataclass(frozen=True)
class KeyIdentity:
    caller: Caller
    secret: str


class KeyCache:
    """apikey → caller and decrypted secret, for a few seconds (the signed-call hot path)."""

    def __init__(self, box: SecretBox, ttl: float) -> None:
        self._box, self._ttl = box, ttl
        self._lock = threading.Lock()
        self._hits: dict[str, tuple[float, KeyIdentity | None]] = {}

    def resolve(self, session: Session, api_key: str) -> KeyIdentity:
        return self.resolve_with(session, api_key, lambda s: self._load(s, api_key))

    def _load(self, session: Session, api_key: str) -> KeyIdentity | None:
        row = session.execute(_caller_select().where(User.api_key == api_key)).first()
        if row is None or row[0].secret_key_enc is None:
            log.info("api key not found")
            return None
        if not _usable(row):
            log.info("api key of a disabled user, account or domain", extra={"user": row[0].uuid})
            return None
        return KeyIdentity(_caller(row), self._box.open(row[0].secret_key_enc))

    def integration_caller(self, session: Session) -> Caller:
        """The caller of the unauthenticated integration port: the first default root admin,
        cached like a key (the port exists for scripts that hammer it)."""
        hit = self.resolve_with(session, "\0integration", self._load_integration)
        return hit.caller

    def resolve_with(
        self, session: Session, key: str, load: Callable[[Session], KeyIdentity | None]
    ) -> KeyIdentity:
        now = time.monotonic()
        with self._lock:
            hit = self._hits.get(key)
        if hit is None or now - hit[0] >= self._ttl:
            hit = (now, load(session))
            with self._lock:
                if len(self._hits) > 10_000:
                    self._hits.clear()
                self._hits[key] = hit
        if hit[1] is None:
            raise Unauthorized(BAD_CREDENTIALS)
        return hit[1]

    def _load_integration(self, session: Session) -> KeyIdentity | None:
        row = session.execute(
            _caller_select().where(User.is_default.is_(True)).order_by(User.id).limit(1)
        ).first()
        if row is None or not _usable(row) or RoleType(row[3].type) is not RoleType.ADMIN:
            return None
        return KeyIdentity(_caller(row), "")

    def forget_all(self) -> None:
        with self._lock:
            self._hits.clear()


def password_login(
    session: Session,
    username: str,
    password: str,
    domain_path: str | None,
    domain_uuid: str | None,
) -> Caller:
    """Check a username and password in a domain (ROOT by default)."""
    stmt = _caller_select().where(User.username == username)
    if domain_uuid:
        stmt = stmt.where(Domain.uuid == domain_uuid)
    else:
        stmt = stmt.where(Domain.path == _normal_domain_path(domain_path))
    row = session.execute(stmt).first()
    if not verify_password(row[0].password_hash if row else None, password):
        raise Unauthorized(BAD_LOGIN.format(user=username, domain=domain_path or "/"))
    assert row is not None
    if not _usable(row):
        raise Unauthorized(BAD_LOGIN.format(user=username, domain=domain_path or "/"))
    if needs_rehash(row[0].password_hash):
        row[0].password_hash = hash_password(password)
    return _caller(row)


def _normal_domain_path(path: str | None) -> str:
    """Login takes '/', 'ROOT', '/ROOT/sub' or 'sub'; domains store '/' and '/sub/'."""
    parts = [p for p in (path or "/").strip().split("/") if p]
    if parts and parts[0].upper() == "ROOT":
        parts = parts[1:]
    return "/" + "".join(f"{p}/" for p in parts)


@dataclass(frozen=True)
class NewSession:
    cookie: str
    key: str
    caller: Caller
    timeout: int


def open_session(session: Session, caller: Caller, timeout: int) -> NewSession:
    cookie, key = new_session_key(), new_session_key()
    session.add(
        ApiSession(
            cookie_hash=digest(cookie),
            key_hash=digest(key),
            user_id=caller.user_id,
            expires=utcnow() + timedelta(seconds=timeout),
        )
    )
    # Expired sessions of anyone are swept while we hold the write transaction anyway.
    session.execute(delete(ApiSession).where(ApiSession.expires < utcnow()))
    return NewSession(cookie, key, caller, timeout)


def _session_key_ok(
    check: str, key_hash: str, key_param: str | None, key_cookie: str | None
) -> bool:
    """CS HttpUtils.validateSessionKey: a key that is sent must be right wherever it is sent.

    CookieAndParameter (the default) needs both the ``sessionkey`` cookie and parameter;
    CookieOrParameter needs either; ParameterOnly needs the parameter. A wrong key in a place
    not required still fails, so a forged parameter cannot ride on a valid cookie.
    """
    param_ok = key_param is not None and digest(key_param) == key_hash
    cookie_ok = key_cookie is not None and digest(key_cookie) == key_hash
    if check == "CookieOrParameter":
        sent = key_param is not None or key_cookie is not None
        return sent and (key_param is None or param_ok) and (key_cookie is None or cookie_ok)
    if check == "ParameterOnly":
        return param_ok and (key_cookie is None or cookie_ok)
    return param_ok and cookie_ok


def session_caller(
    session: Session,
    cookie: str | None,
    key_param: str | None,
    key_cookie: str | None,
    check: str,
) -> tuple[Caller, ApiSession]:
    """Find the caller of a session, enforcing api.sessionkey.check.locations."""
    if not cookie:
        raise Unauthorized(BAD_CREDENTIALS)
    row = session.scalar(select(ApiSession).where(ApiSession.cookie_hash == digest(cookie)))
    if row is None or aware(row.expires) <= utcnow():
        raise Unauthorized(BAD_CREDENTIALS)
    if not _session_key_ok(check, row.key_hash, key_param, key_cookie):
        raise Unauthorized(BAD_CREDENTIALS)
    caller = caller_by_user_id(session, row.user_id)
    if caller is None:
        raise Unauthorized(BAD_CREDENTIALS)
    return caller, row


def extend_session(session: Session, session_id: int, timeout: int) -> None:
    session.execute(
        update(ApiSession)
        .where(ApiSession.id == session_id)
        .values(expires=utcnow() + timedelta(seconds=timeout))
    )


def close_session(session: Session, cookie: str | None) -> None:
    if cookie:
        session.execute(delete(ApiSession).where(ApiSession.cookie_hash == digest(cookie)))


def close_user_sessions(session: Session, user_ids: list[int]) -> None:
    """Disabling or deleting users ends their sessions at once."""
    session.execute(delete(ApiSession).where(ApiSession.user_id.in_(user_ids)))
