"""Password hashing with argon2id; hashes are upgraded when the parameters change."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()
# Checked against when a user does not exist, so a wrong username costs the same time.
_DUMMY = _HASHER.hash("cumulo-no-such-user")


def hash_password(plain: str) -> str:
    return _HASHER.hash(plain)


def verify_password(stored: str | None, plain: str) -> bool:
    try:
        return _HASHER.verify(stored or _DUMMY, plain) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _HASHER.check_needs_rehash(stored)
