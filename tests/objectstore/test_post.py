"""Browser form uploads: boto3's presigned POST through a real multipart form, with the
policy's conditions, expiry and size range enforced and nothing stored on refusal."""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError


def _post(url: str, fields: dict[str, str], data: bytes, name: str = "f.bin") -> httpx.Response:
    return httpx.post(url, data=fields, files={"file": (name, data, "application/x-form")})


def test_presigned_post_upload(s3: Any, bucket: str) -> None:
    data = os.urandom(300_000)
    form = s3.generate_presigned_post(
        bucket,
        "uploads/${filename}",
        Fields={"success_action_status": "201", "Content-Type": "image/png"},
        Conditions=[
            ["starts-with", "$key", "uploads/"],
            {"success_action_status": "201"},
            {"Content-Type": "image/png"},
            ["content-length-range", 1, 1_000_000],
        ],
        ExpiresIn=300,
    )
    resp = _post(form["url"], form["fields"], data, "pic.png")
    assert resp.status_code == 201, resp.text
    assert "<Key>uploads/pic.png</Key>" in resp.text
    got = s3.get_object(Bucket=bucket, Key="uploads/pic.png")
    assert got["Body"].read() == data
    assert got["ContentType"] == "image/png"


def test_presigned_post_refusals(s3: Any, bucket: str) -> None:
    form = s3.generate_presigned_post(
        bucket, "k", Conditions=[["content-length-range", 1, 10]], ExpiresIn=300
    )
    too_big = _post(form["url"], form["fields"], b"x" * 11)
    assert too_big.status_code == 400 and "EntityTooLarge" in too_big.text
    tampered = {**form["fields"], "key": "other"}
    bad = _post(form["url"], tampered, b"x")
    assert bad.status_code == 403, bad.text
    extra = _post(form["url"], {**form["fields"], "x-amz-meta-sneaky": "1"}, b"x")
    assert extra.status_code == 403 and "Extra input fields" in extra.text
    sig_field = "x-amz-signature" if "x-amz-signature" in form["fields"] else "signature"
    wrong_sig = {**form["fields"], sig_field: "AAAA" + form["fields"][sig_field][4:]}
    assert _post(form["url"], wrong_sig, b"x").status_code == 403
    expired = s3.generate_presigned_post(bucket, "late", ExpiresIn=-10)
    late = _post(expired["url"], expired["fields"], b"x")
    assert late.status_code == 403 and "expired" in late.text
    anonymous = _post(form["url"], {"key": "anon"}, b"x")
    assert anonymous.status_code == 403
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="k")
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    ok = _post(form["url"], form["fields"], b"fits")
    assert ok.status_code == 204
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"fits"


def test_presigned_post_sigv4(s3_server: Any, alice_keys: Any, bucket: str, s3: Any) -> None:
    v4 = s3_server.client(alice_keys, signature_version="s3v4")
    tagging = "<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet></Tagging>"
    form = v4.generate_presigned_post(
        bucket,
        "v4-key",
        Fields={"tagging": tagging},
        Conditions=[{"tagging": tagging}],
        ExpiresIn=300,
    )
    assert "x-amz-signature" in form["fields"]
    assert _post(form["url"], form["fields"], b"signed v4").status_code == 204
    assert s3.get_object(Bucket=bucket, Key="v4-key")["Body"].read() == b"signed v4"
    assert s3.get_object_tagging(Bucket=bucket, Key="v4-key")["TagSet"] == [
        {"Key": "k", "Value": "v"}
    ]
