"""SSE-C: server-side encryption with a key the client sends on every request.

The three headers (``x-amz-server-side-encryption-customer-algorithm``, ``-key``,
``-key-MD5``, or their ``x-amz-copy-source-...`` forms for a copy's source) are checked as
S3 checks them: AES256 only, a 256-bit key, its MD5 matching, and (unless the operator
allows plain HTTP) a TLS connection. The store keeps only a salted HMAC of the key to tell
a later request with another key (403) from the right one; never the key itself.

Bytes are encrypted with AES-256 in CTR mode under a random per-object IV: a stream
cipher, so PUT streams chunk by chunk, and a ranged GET starts decrypting at any offset
without reading what comes before.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes

from cumulo.objectstore.auth.checksums import decode_b64
from cumulo.objectstore.auth.errors import AuthError

ALGORITHM = "AES256"
IV_BYTES = 16
_PREFIX = "x-amz-server-side-encryption-customer-"
_COPY_PREFIX = "x-amz-copy-source-server-side-encryption-customer-"


@dataclass(frozen=True)
class CustomerKey:
    """A validated customer key; ``key_md5`` is the base64 MD5 S3 echoes back."""

    key: bytes
    key_md5: str

    def fingerprint(self, salt: bytes) -> str:
        """What the metadata stores to recognise this key later (salted, not reversible)."""
        return hmac.new(salt, self.key, hashlib.sha256).hexdigest()

    def check_fingerprint(self, salt: bytes, stored: str) -> None:
        """Refuse a request whose key is not the one the object was written with."""
        if not hmac.compare_digest(self.fingerprint(salt), stored):
            raise AuthError(
                "AccessDenied",
                "The provided customer key does not match the key used to encrypt the object.",
            )

    def encryptor(self, iv: bytes) -> CipherContext:
        return Cipher(algorithms.AES(self.key), modes.CTR(iv)).encryptor()

    def decryptor(self, iv: bytes, offset: int = 0) -> CipherContext:
        """A decryptor positioned at plaintext byte ``offset`` (for ranged reads)."""
        block, skip = divmod(offset, 16)
        counter = (int.from_bytes(iv, "big") + block) % (1 << 128)
        context = Cipher(
            algorithms.AES(self.key), modes.CTR(counter.to_bytes(16, "big"))
        ).decryptor()
        if skip:
            context.update(bytes(skip))
        return context


def new_iv() -> bytes:
    return os.urandom(IV_BYTES)


def customer_key(
    headers: Mapping[str, str],
    *,
    copy_source: bool = False,
    secure: bool = True,
    require_secure: bool = True,
) -> CustomerKey | None:
    """The SSE-C key a request carries (``headers`` lower-case), None when it has none."""
    prefix = _COPY_PREFIX if copy_source else _PREFIX
    algorithm = headers.get(prefix + "algorithm")
    key_text = headers.get(prefix + "key")
    md5_text = headers.get(prefix + "key-md5")
    if algorithm is None and key_text is None and md5_text is None:
        return None
    if require_secure and not secure:
        raise AuthError(
            "InvalidRequest",
            "Requests specifying Server Side Encryption with Customer provided keys must be "
            "made over a secure connection.",
        )
    if algorithm is None:
        raise _invalid(
            "Requests specifying Server Side Encryption with Customer provided keys must "
            "provide a valid encryption algorithm."
        )
    if algorithm != ALGORITHM:
        raise _invalid("The encryption algorithm specified is not valid.")
    return _key(key_text, md5_text)


def _key(key_text: str | None, md5_text: str | None) -> CustomerKey:
    if key_text is None:
        raise _invalid(
            "Requests specifying Server Side Encryption with Customer provided keys must "
            "provide an appropriate secret key."
        )
    key = decode_b64(key_text, 32)
    if key is None:
        raise _invalid("The secret key was invalid for the specified algorithm.")
    if md5_text is None:
        raise _invalid(
            "Requests specifying Server Side Encryption with Customer provided keys must "
            "provide the client calculated MD5 of the secret key."
        )
    expected = hashlib.md5(key, usedforsecurity=False).digest()
    given = decode_b64(md5_text, 16)
    if given is None or not hmac.compare_digest(given, expected):
        raise _invalid(
            "The calculated MD5 hash of the key did not match the hash that was provided."
        )
    return CustomerKey(key, md5_text.strip())


def _invalid(message: str) -> AuthError:
    return AuthError("InvalidArgument", message)
