"""SSE-C through boto3: bytes are stored encrypted, read back only with the same key (400
without it or with another), ranges and multipart objects decrypt, copies re-encrypt."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.objectstore.conftest import S3Server

# boto3 takes the key as a str, base64-encodes it and adds its MD5: 32 ASCII characters.
KEY = secrets.token_hex(16)
OTHER = secrets.token_hex(16)
MIB = 1024 * 1024


def _sse(key: str) -> dict[str, Any]:
    """boto3 base64-encodes the key and adds its MD5 itself."""
    return {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": key}


def _copy_sse(key: str) -> dict[str, Any]:
    return {"CopySourceSSECustomerAlgorithm": "AES256", "CopySourceSSECustomerKey": key}


def _code(err: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    r = err.value.response
    return str(r["Error"]["Code"]), int(r["ResponseMetadata"]["HTTPStatusCode"])


def _blob_files(s3_server: S3Server) -> list[Path]:
    return [p for p in s3_server.blob_dir.rglob("*") if p.is_file()]


def _read_if_there(path: Path) -> bytes:
    """A blob's bytes, or none: the collector may reclaim other tests' blobs meanwhile."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""


def test_put_get_with_the_key_only(s3_server: S3Server, s3: Any, bucket: str) -> None:
    body = b"secret payload " * 4000
    put = s3.put_object(Bucket=bucket, Key="k", Body=body, **_sse(KEY))
    md5 = base64.b64encode(hashlib.md5(KEY.encode()).digest()).decode()
    assert put["SSECustomerKeyMD5"] == md5
    got = s3.get_object(Bucket=bucket, Key="k", **_sse(KEY))
    assert got["Body"].read() == body and got["SSECustomerAlgorithm"] == "AES256"
    assert s3.head_object(Bucket=bucket, Key="k", **_sse(KEY))["SSECustomerKeyMD5"] == md5
    ranged = s3.get_object(Bucket=bucket, Key="k", Range="bytes=1000-1049", **_sse(KEY))
    assert ranged["Body"].read() == body[1000:1050]
    for call in (s3.get_object, s3.head_object):
        with pytest.raises(ClientError) as err:
            call(Bucket=bucket, Key="k")
        assert _code(err)[1] == 400
        with pytest.raises(ClientError) as err:
            call(Bucket=bucket, Key="k", **_sse(OTHER))
        assert _code(err)[1] == 400
    # No blob on disk holds the plaintext, and the key appears nowhere in the metadata.
    assert not any(body[:64] in _read_if_there(p) for p in _blob_files(s3_server))
    meta = (s3_server.cloud.data_dir / "s3meta.db").read_bytes()
    assert base64.b64encode(KEY.encode()) not in meta and KEY.encode() not in meta


def test_plain_object_refuses_a_key(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="plain", Body=b"x")
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="plain", **_sse(KEY))
    assert _code(err) == ("InvalidRequest", 400)


def test_bad_key_headers(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as err:
        s3.put_object(
            Bucket=bucket,
            Key="k",
            Body=b"x",
            SSECustomerAlgorithm="AES256",
            SSECustomerKey=base64.b64encode(KEY.encode()).decode(),
            SSECustomerKeyMD5=base64.b64encode(hashlib.md5(OTHER.encode()).digest()).decode(),
        )
    assert _code(err) == ("InvalidArgument", 400)
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", **_sse("short"))
    assert _code(err) == ("InvalidArgument", 400)
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


def test_multipart_and_copies(s3: Any, bucket: str) -> None:
    parts_data = [os.urandom(5 * MIB), os.urandom(MIB)]
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp", **_sse(KEY))["UploadId"]
    with pytest.raises(ClientError) as err:
        s3.upload_part(Bucket=bucket, Key="mp", UploadId=up, PartNumber=1, Body=b"x")
    assert _code(err)[1] == 400
    parts = []
    for number, data in enumerate(parts_data, 1):
        etag = s3.upload_part(
            Bucket=bucket, Key="mp", UploadId=up, PartNumber=number, Body=data, **_sse(KEY)
        )["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=up, MultipartUpload={"Parts": parts}, **_sse(KEY)
    )
    whole = b"".join(parts_data)
    assert s3.get_object(Bucket=bucket, Key="mp", **_sse(KEY))["Body"].read() == whole
    span = s3.get_object(
        Bucket=bucket, Key="mp", Range=f"bytes={5 * MIB - 10}-{5 * MIB + 9}", **_sse(KEY)
    )
    assert span["Body"].read() == whole[5 * MIB - 10 : 5 * MIB + 10]
    # Copy to a plain object, then to one under another key.
    source = {"Bucket": bucket, "Key": "mp"}
    s3.copy_object(Bucket=bucket, Key="plain", CopySource=source, **_copy_sse(KEY))
    assert s3.get_object(Bucket=bucket, Key="plain")["Body"].read() == whole
    s3.copy_object(Bucket=bucket, Key="rekeyed", CopySource=source, **_copy_sse(KEY), **_sse(OTHER))
    assert s3.get_object(Bucket=bucket, Key="rekeyed", **_sse(OTHER))["Body"].read() == whole
    with pytest.raises(ClientError) as err:
        s3.copy_object(Bucket=bucket, Key="nokey", CopySource=source)
    assert _code(err)[1] == 400
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="nokey")
    assert _code(err)[0] == "NoSuchKey"
