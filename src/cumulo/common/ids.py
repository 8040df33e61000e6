"""Identifiers and secrets. Every user-visible id is a UUID; integer keys stay inside."""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid


def new_uuid() -> str:
    return str(uuid.uuid4())


def new_api_key() -> str:
    """86 URL-safe characters, as CloudStack's HmacSHA1 KeyGenerator + Base64URLSafe gives."""
    return base64.urlsafe_b64encode(secrets.token_bytes(64)).rstrip(b"=").decode()


def new_session_key() -> str:
    """20 random bytes, URL-safe Base64 without padding (CloudStack ApiServer)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(20)).rstrip(b"=").decode()


def new_password(length: int = 20) -> str:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
    return "".join(secrets.choice(alphabet) for _ in range(length))


def digest(secret: str) -> str:
    """A stable hash for looking secrets up without storing them (session keys)."""
    return hashlib.sha256(secret.encode()).hexdigest()
