"""SSH key pairs: registered public keys, or pairs generated here whose private half is
returned once and never stored (CloudStack's createSSHKeyPair).

Fingerprints are the MD5 of the key blob in colon-separated hex, the form CloudStack shows
(and the one ``ssh-keygen -l -E md5`` prints), so a client can match a key it holds.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select
from sqlalchemy.orm import Session

from cumulo.db.models import Account
from cumulo.db.models_catalog import SshKeyPair
from cumulo.services.errors import ParamError

KEY_TYPES = (
    "ssh-rsa",
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
)
RSA_BITS = 2048  # what CloudStack generates


def fingerprint(blob: bytes) -> str:
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def parse_public_key(text: str) -> tuple[str, bytes]:
    """The key as ``type base64`` (comment dropped) and its blob; 431 unless it really is an
    OpenSSH public key of a type guests accept (the blob is parsed, not just its prefix)."""
    parts = text.strip().split()
    if len(parts) < 2 or parts[0] not in KEY_TYPES:
        raise ParamError("Public key is invalid: expected an OpenSSH key such as 'ssh-rsa AAAA…'")
    try:
        blob = base64.b64decode(parts[1], validate=True)
        serialization.load_ssh_public_key(f"{parts[0]} {parts[1]}".encode())
    except (binascii.Error, ValueError, UnsupportedAlgorithm):
        raise ParamError("Public key is invalid: its key data does not parse") from None
    return f"{parts[0]} {parts[1]}", blob


def generate() -> tuple[str, str]:
    """A new RSA pair: the OpenSSH public line and the PEM private key (PKCS#1, as CS gives)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return public.decode(), private.decode()


def find_by_name(session: Session, owner: Account, name: str) -> SshKeyPair | None:
    return session.scalar(
        select(SshKeyPair).where(SshKeyPair.account_id == owner.id, SshKeyPair.name == name)
    )


def _check_new(session: Session, owner: Account, name: str, print_: str) -> str:
    name = name.strip()
    if not name:
        raise ParamError(
            "Please specify a valid name for the key pair. The key name can't be empty"
        )
    if find_by_name(session, owner, name) is not None:
        raise ParamError(f"A key pair with name '{name}' already exists for this account.")
    same = select(SshKeyPair.name).where(
        SshKeyPair.account_id == owner.id, SshKeyPair.fingerprint == print_
    )
    taken = session.scalar(same)
    if taken is not None:
        raise ParamError(f"A key pair with the same public key already exists: '{taken}'")
    return name


def register(session: Session, owner: Account, name: str, public_key: str) -> SshKeyPair:
    text, blob = parse_public_key(public_key)
    print_ = fingerprint(blob)
    pair = SshKeyPair(
        name=_check_new(session, owner, name, print_),
        account_id=owner.id,
        domain_id=owner.domain_id,
        public_key=text,
        fingerprint=print_,
    )
    session.add(pair)
    session.flush()
    return pair


def create(session: Session, owner: Account, name: str) -> tuple[SshKeyPair, str]:
    """Register a freshly generated pair; the private key goes back to the caller only."""
    public, private = generate()
    return register(session, owner, name, public), private


def delete(session: Session, owner: Account, name: str) -> SshKeyPair:
    pair = find_by_name(session, owner, name)
    if pair is None:
        raise ParamError(
            f"A key pair with name '{name}' does not exist for account {owner.name} "
            "in specified domain id"
        )
    session.delete(pair)
    return pair
