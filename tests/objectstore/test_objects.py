"""Objects through boto3 with default settings: PUT/GET/HEAD/DELETE, metadata, ranges,
conditions, content checked byte for byte."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pytest
from botocore.exceptions import ClientError


def code(err: pytest.ExceptionInfo[ClientError]) -> str:
    return str(err.value.response["Error"]["Code"])


def test_put_get_round_trip(s3: Any, bucket: str) -> None:
    data = os.urandom(300_000)
    put = s3.put_object(
        Bucket=bucket,
        Key="dir/a b+c.bin",
        Body=data,
        ContentType="application/x-test",
        Metadata={"colour": "blue"},
        CacheControl="max-age=60",
    )
    assert put["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    got = s3.get_object(Bucket=bucket, Key="dir/a b+c.bin")
    assert got["Body"].read() == data
    assert got["ContentType"] == "application/x-test"
    assert got["Metadata"] == {"colour": "blue"}
    assert got["CacheControl"] == "max-age=60"
    assert got["ContentLength"] == len(data)
    head = s3.head_object(Bucket=bucket, Key="dir/a b+c.bin")
    assert head["ETag"] == put["ETag"]
    assert head["ContentLength"] == len(data)
