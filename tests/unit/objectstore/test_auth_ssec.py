"""SSE-C headers as boto3 sends them, and the streaming, seekable AES-256-CTR cipher."""

from __future__ import annotations

import base64
import hashlib
import os

import pytest

from cumulo.objectstore.auth import AuthError
from cumulo.objectstore.auth.ssec import customer_key, new_iv
from tests.unit.objectstore.s3sign import capture, client

KEY = "0123456789abcdef0123456789abcdef"  # 32 bytes, as s3-tests uses
SSE = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": KEY}


def test_boto3_sse_c_headers_accepted() -> None:
    wire = capture(client(), "put_object", Bucket="b", Key="k", Body=b"x", **SSE)
    key = customer_key(wire.view.headers)
    assert key is not None and key.key == KEY.encode()
    assert key.key_md5 == base64.b64encode(hashlib.md5(KEY.encode()).digest()).decode()
    copy = capture(
        client(),
        "copy_object",
        Bucket="b",
        Key="k2",
        CopySource="b/k",
        CopySourceSSECustomerAlgorithm="AES256",
        CopySourceSSECustomerKey=KEY,
    )
    assert customer_key(copy.view.headers) is None
    source = customer_key(copy.view.headers, copy_source=True)
    assert source is not None and source.key == KEY.encode()
    plain = capture(client(), "put_object", Bucket="b", Key="k", Body=b"x")
    assert customer_key(plain.view.headers) is None


def _headers(**changes: str | None) -> dict[str, str]:
    base = {
        "x-amz-server-side-encryption-customer-algorithm": "AES256",
        "x-amz-server-side-encryption-customer-key": base64.b64encode(KEY.encode()).decode(),
        "x-amz-server-side-encryption-customer-key-md5": base64.b64encode(
            hashlib.md5(KEY.encode()).digest()
        ).decode(),
    }
    for name, value in changes.items():
        header = f"x-amz-server-side-encryption-customer-{name.replace('_', '-')}"
        if value is None:
            del base[header]
        else:
            base[header] = value
    return base


@pytest.mark.parametrize(
    "changes",
    [
        {"algorithm": None},
        {"algorithm": "AES128"},
        {"key": None},
        {"key": base64.b64encode(b"short").decode()},
        {"key_md5": None},
        {"key_md5": base64.b64encode(hashlib.md5(b"other").digest()).decode()},
        {"key_md5": "not base64!"},
    ],
)
def test_invalid_sse_c_headers(changes: dict[str, str | None]) -> None:
    with pytest.raises(AuthError) as info:
        customer_key(_headers(**changes))
    assert info.value.code == "InvalidArgument" and info.value.http_status == 400


def test_sse_c_needs_tls_unless_allowed() -> None:
    with pytest.raises(AuthError) as info:
        customer_key(_headers(), secure=False)
    assert info.value.code == "InvalidRequest"
    assert customer_key(_headers(), secure=False, require_secure=False) is not None


def test_fingerprint_recognises_the_key_only() -> None:
    salt = os.urandom(16)
    key = customer_key(_headers())
    assert key is not None
    stored = key.fingerprint(salt)
    assert KEY not in stored and key.key.hex() not in stored
    key.check_fingerprint(salt, stored)
    other_text = "fedcba9876543210fedcba9876543210"
    other = customer_key(
        _headers(
            key=base64.b64encode(other_text.encode()).decode(),
            key_md5=base64.b64encode(hashlib.md5(other_text.encode()).digest()).decode(),
        )
    )
    assert other is not None
    with pytest.raises(AuthError) as info:
        other.check_fingerprint(salt, stored)
    assert info.value.code == "AccessDenied" and info.value.http_status == 403


def test_ctr_stream_round_trip_and_ranged_decrypt() -> None:
    key = customer_key(_headers())
    assert key is not None
    plaintext = os.urandom(100_003)
    iv = new_iv()
    encryptor = key.encryptor(iv)
    ciphertext = b"".join(
        encryptor.update(plaintext[i : i + 4097]) for i in range(0, len(plaintext), 4097)
    )
    ciphertext += encryptor.finalize()
    assert len(ciphertext) == len(plaintext) and ciphertext != plaintext
    assert key.decryptor(iv).update(ciphertext) == plaintext
    for start, end in ((0, 1), (1, 17), (15, 16), (16, 48), (4095, 9000), (99_990, 100_003)):
        assert key.decryptor(iv, start).update(ciphertext[start:end]) == plaintext[start:end]
    assert key.encryptor(new_iv()).update(plaintext[:64]) != ciphertext[:64]  # per-object IV
