"""Multipart uploads step by step: initiate, parts, list parts and uploads, complete with the
md5-of-md5s ETag, abort, the 5 MiB minimum, part order, UploadPartCopy, and no data copied."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pytest
from botocore.exceptions import ClientError

MIB = 1024 * 1024


def _etag(parts: list[bytes]) -> str:
    digest = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
    return f'"{digest}-{len(parts)}"'


def _upload(s3: Any, bucket: str, key: str, parts: list[bytes]) -> tuple[str, list[dict[str, Any]]]:
    up = s3.create_multipart_upload(
        Bucket=bucket, Key=key, ContentType="text/x-mp", Metadata={"m": "1"}
    )
    done = []
    for i, data in enumerate(parts, 1):
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=up["UploadId"], PartNumber=i, Body=data)
        assert r["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
        done.append({"PartNumber": i, "ETag": r["ETag"]})
    return up["UploadId"], done


def test_complete_multipart(s3: Any, bucket: str, s3_server: Any) -> None:
    parts = [os.urandom(5 * MIB), os.urandom(5 * MIB), b"tail"]
    upload_id, done = _upload(s3, bucket, "mp", parts)
    listed = s3.list_parts(Bucket=bucket, Key="mp", UploadId=upload_id)
    assert [p["PartNumber"] for p in listed["Parts"]] == [1, 2, 3]
    assert [p["Size"] for p in listed["Parts"]] == [5 * MIB, 5 * MIB, 4]
    uploads = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert [u["UploadId"] for u in uploads] == [upload_id]
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="mp")
    blobs_before = _blobs(s3_server)
    out = s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=upload_id, MultipartUpload={"Parts": done}
    )
    assert out["ETag"] == _etag(parts)
    assert _blobs(s3_server) <= blobs_before  # a manifest, no copied data (the collector may
    # meanwhile reclaim other tests' blobs, never add any)
    got = s3.get_object(Bucket=bucket, Key="mp")
    assert got["Body"].read() == b"".join(parts)
    assert got["ContentType"] == "text/x-mp" and got["Metadata"] == {"m": "1"}
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    mid = s3.get_object(Bucket=bucket, Key="mp", Range=f"bytes={5 * MIB - 2}-{5 * MIB + 1}")
    assert mid["Body"].read() == parts[0][-2:] + parts[1][:2]


def _blobs(s3_server: Any) -> set[str]:
    root = s3_server.blob_dir
    return {p.name for p in root.rglob("*") if p.is_file() and p.parent.name != "tmp"}


def test_small_part_refused_and_upload_survives(s3: Any, bucket: str) -> None:
    parts = [b"a" * 1000, b"b" * 1000]
    upload_id, done = _upload(s3, bucket, "small", parts)
    with pytest.raises(ClientError) as err:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="small", UploadId=upload_id, MultipartUpload={"Parts": done}
        )
    assert err.value.response["Error"]["Code"] == "EntityTooSmall"
    assert len(s3.list_parts(Bucket=bucket, Key="small", UploadId=upload_id)["Parts"]) == 2
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="small")
    # A single small part is fine: the last part has no minimum.
    out = s3.complete_multipart_upload(
        Bucket=bucket, Key="small", UploadId=upload_id, MultipartUpload={"Parts": done[:1]}
    )
    assert out["ETag"] == _etag(parts[:1])
    assert s3.get_object(Bucket=bucket, Key="small")["Body"].read() == parts[0]


def test_bad_part_lists(s3: Any, bucket: str) -> None:
    upload_id, done = _upload(s3, bucket, "bad", [b"x" * 10, b"y" * 10])
    cases = [
        ([done[1], done[0]], "InvalidPartOrder"),
        ([{"PartNumber": 1, "ETag": '"00000000000000000000000000000000"'}], "InvalidPart"),
        ([{"PartNumber": 7, "ETag": done[0]["ETag"]}], "InvalidPart"),
    ]
    for parts, expected in cases:
        with pytest.raises(ClientError) as err:
            s3.complete_multipart_upload(
                Bucket=bucket, Key="bad", UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        assert err.value.response["Error"]["Code"] == expected
    with pytest.raises(ClientError) as err:
        s3.upload_part(Bucket=bucket, Key="bad", UploadId=upload_id, PartNumber=10001, Body=b"x")
    assert err.value.response["Error"]["Code"] == "InvalidArgument"
    with pytest.raises(ClientError) as err:
        s3.upload_part(Bucket=bucket, Key="bad", UploadId="nope", PartNumber=1, Body=b"x")
    assert err.value.response["Error"]["Code"] == "NoSuchUpload"


def test_abort(s3: Any, bucket: str) -> None:
    upload_id, _ = _upload(s3, bucket, "ab", [b"z" * 100])
    s3.abort_multipart_upload(Bucket=bucket, Key="ab", UploadId=upload_id)
    with pytest.raises(ClientError) as err:
        s3.list_parts(Bucket=bucket, Key="ab", UploadId=upload_id)
    assert err.value.response["Error"]["Code"] == "NoSuchUpload"
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="ab")


def test_part_reupload_replaces(s3: Any, bucket: str) -> None:
    upload_id, _ = _upload(s3, bucket, "re", [b"first"])
    r = s3.upload_part(Bucket=bucket, Key="re", UploadId=upload_id, PartNumber=1, Body=b"second")
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="re",
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": r["ETag"]}]},
    )
    assert s3.get_object(Bucket=bucket, Key="re")["Body"].read() == b"second"


def test_upload_part_copy(s3: Any, bucket: str) -> None:
    src = os.urandom(6 * MIB)
    s3.put_object(Bucket=bucket, Key="src key/ü+%", Body=src)
    up = s3.create_multipart_upload(Bucket=bucket, Key="assembled")
    p1 = s3.upload_part_copy(
        Bucket=bucket,
        Key="assembled",
        UploadId=up["UploadId"],
        PartNumber=1,
        CopySource={"Bucket": bucket, "Key": "src key/ü+%"},
    )
    p2 = s3.upload_part_copy(
        Bucket=bucket,
        Key="assembled",
        UploadId=up["UploadId"],
        PartNumber=2,
        CopySource={"Bucket": bucket, "Key": "src key/ü+%"},
        CopySourceRange="bytes=10-19",
    )
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="assembled",
        UploadId=up["UploadId"],
        MultipartUpload={
            "Parts": [
                {"PartNumber": 1, "ETag": p1["CopyPartResult"]["ETag"]},
                {"PartNumber": 2, "ETag": p2["CopyPartResult"]["ETag"]},
            ]
        },
    )
    assert s3.get_object(Bucket=bucket, Key="assembled")["Body"].read() == src + src[10:20]


def test_object_attributes(s3: Any, bucket: str) -> None:
    parts = [os.urandom(5 * MIB), os.urandom(5 * MIB), b"end"]
    upload_id, done = _upload(s3, bucket, "attr", parts)
    s3.complete_multipart_upload(
        Bucket=bucket, Key="attr", UploadId=upload_id, MultipartUpload={"Parts": done}
    )
    names = ["ETag", "ObjectParts", "StorageClass", "ObjectSize"]
    got = s3.get_object_attributes(
        Bucket=bucket, Key="attr", ObjectAttributes=names, MaxParts=1, PartNumberMarker=1
    )
    assert got["ETag"] == _etag(parts).strip('"')
    assert got["ObjectSize"] == 10 * MIB + 3
    assert got["StorageClass"] == "STANDARD"
    op = got["ObjectParts"]
    assert op["TotalPartsCount"] == 3 and op["IsTruncated"] is True
    assert op["NextPartNumberMarker"] == 2 and op["Parts"] == [{"PartNumber": 2, "Size": 5 * MIB}]
    s3.put_object(Bucket=bucket, Key="plain", Body=b"abc")
    plain = s3.get_object_attributes(Bucket=bucket, Key="plain", ObjectAttributes=names)
    assert plain["ObjectSize"] == 3 and "ObjectParts" not in plain
