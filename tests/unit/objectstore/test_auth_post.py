"""Browser-form (POST Object) policies as botocore's generate_presigned_post signs them."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import pytest

from cumulo.objectstore.auth import AuthError, authenticate_post
from tests.unit.objectstore.s3sign import CREDS, client, lookup, now


def _form(signature_version: str = "s3v4", **kw: Any) -> dict[str, str]:
    s3 = client(signature_version=signature_version)
    post = s3.generate_presigned_post(Bucket="bkt", **kw)
    return dict(post["fields"])


@pytest.mark.parametrize("version", ["s3v4", "s3"])
def test_botocore_presigned_post_accepted(version: str) -> None:
    fields = _form(
        version,
        Key="uploads/${filename}",
        Fields={"acl": "public-read", "Content-Type": "image/png"},
        Conditions=[
            {"acl": "public-read"},
            ["starts-with", "$Content-Type", "image/"],
            ["content-length-range", 10, 1000],
        ],
        ExpiresIn=600,
    )
    fields["key"] = "uploads/cat.png"  # the browser's file name substituted for ${filename}
    result = authenticate_post(fields, "bkt", lookup, now())
    assert result.credentials == CREDS
    assert result.signature_version == ("v4" if version == "s3v4" else "v2")
    assert result.length_range == (10, 1000)
    result.check_length(10)
    result.check_length(1000)
    with pytest.raises(AuthError) as info:
        result.check_length(9)
    assert info.value.code == "EntityTooSmall"
    with pytest.raises(AuthError) as info:
        result.check_length(1001)
    assert info.value.code == "EntityTooLarge"


def test_expired_policy() -> None:
    fields = _form(Key="k", ExpiresIn=60)
    assert authenticate_post(fields, "bkt", lookup, now() + timedelta(seconds=30)).credentials
    with pytest.raises(AuthError) as info:
        authenticate_post(fields, "bkt", lookup, now() + timedelta(seconds=120))
    assert info.value.code == "AccessDenied" and "expired" in info.value.message


def test_conditions_enforced() -> None:
    fields = _form(Key="k", Fields={"acl": "private"}, Conditions=[{"acl": "private"}])
    with pytest.raises(AuthError) as info:
        authenticate_post({**fields, "acl": "public-read"}, "bkt", lookup, now())
    assert info.value.code == "AccessDenied" and "Condition failed" in info.value.message
    with pytest.raises(AuthError) as info:
        authenticate_post({**fields, "key": "other"}, "bkt", lookup, now())
    assert info.value.code == "AccessDenied"
    with pytest.raises(AuthError) as info:
        authenticate_post(fields, "other-bucket", lookup, now())
    assert info.value.code == "AccessDenied"
    with pytest.raises(AuthError) as info:
        authenticate_post({**fields, "x-amz-meta-extra": "1"}, "bkt", lookup, now())
    assert info.value.code == "AccessDenied" and "Extra input fields" in info.value.message
    ignored = {**fields, "x-ignore-this": "1", "file": "ignored"}
    assert authenticate_post(ignored, "bkt", lookup, now()).credentials == CREDS


def test_field_names_case_insensitive() -> None:
    fields = _form(Key="k")
    upper = {k.upper() if k != "key" else k: v for k, v in fields.items()}
    assert authenticate_post(upper, "bkt", lookup, now()).credentials == CREDS


def test_tampered_policy_or_signature_refused() -> None:
    fields = _form(Key="k")
    document = json.loads(base64.b64decode(fields["policy"]))
    document["conditions"].append(["starts-with", "$key", ""])
    forged = base64.b64encode(json.dumps(document).encode()).decode()
    with pytest.raises(AuthError) as info:
        authenticate_post({**fields, "policy": forged}, "bkt", lookup, now())
    assert info.value.code == "SignatureDoesNotMatch"
    signature = fields["x-amz-signature"]
    bad = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    with pytest.raises(AuthError) as info:
        authenticate_post({**fields, "x-amz-signature": bad}, "bkt", lookup, now())
    assert info.value.code == "SignatureDoesNotMatch"
    with pytest.raises(AuthError) as info:
        authenticate_post(fields, "bkt", lambda k: None, now())
    assert info.value.code == "InvalidAccessKeyId"


def test_anonymous_and_malformed_forms() -> None:
    assert authenticate_post({"key": "k"}, "bkt", lookup, now()).credentials is None
    with pytest.raises(AuthError) as info:
        authenticate_post({"policy": "e30="}, "bkt", lookup, now())
    assert info.value.code == "InvalidArgument"
    fields = _form(Key="k")
    del fields["x-amz-signature"]
    with pytest.raises(AuthError) as info:
        authenticate_post(fields, "bkt", lookup, now())
    assert info.value.code == "InvalidArgument"


def _signed_v2(document: Any) -> dict[str, str]:
    import hashlib
    import hmac

    from tests.unit.objectstore.s3sign import ACCESS, SECRET

    policy = base64.b64encode(json.dumps(document).encode()).decode()
    signature = base64.b64encode(hmac.new(SECRET.encode(), policy.encode(), hashlib.sha1).digest())
    return {"key": "k", "policy": policy, "AWSAccessKeyId": ACCESS, "signature": signature.decode()}


@pytest.mark.parametrize(
    "document",
    [
        {"conditions": []},
        {"expiration": "not a date", "conditions": []},
        {"expiration": "2099-01-01T00:00:00Z"},
        {"expiration": "2099-01-01T00:00:00Z", "conditions": [["nope", "$key", "k"]]},
        {"expiration": "2099-01-01T00:00:00Z", "conditions": [["content-length-range", 10, 1]]},
        {"expiration": "2099-01-01T00:00:00Z", "conditions": [["eq", "key", "k"]]},
        {"expiration": "2099-01-01T00:00:00Z", "conditions": [{}]},
        {"expiration": "2099-01-01T00:00:00Z", "conditions": [["content-length-range", 0]]},
        {"expiration": "2099-01-01T00:00:00Z", "conditions": [["content-length-range", -1, 0]]},
        {"expiration": "2099-01-01 00:00:00+00:00", "conditions": [{"bucket": "bkt"}]},
        {"EXPIRATION": "2099-01-01T00:00:00Z", "conditions": [{"bucket": "bkt"}]},
        {"expiration": "2099-01-01T00:00:00Z", "CONDITIONS": [{"bucket": "bkt"}]},
    ],
)
def test_invalid_policy_documents(document: Any) -> None:
    with pytest.raises(AuthError) as info:
        authenticate_post(_signed_v2(document), "bkt", lookup, now())
    assert info.value.code == "InvalidPolicyDocument"
    ok = _signed_v2(
        {
            "expiration": "2099-01-01T00:00:00Z",
            "conditions": [{"bucket": "bkt"}, ["eq", "$key", "k"]],
        }
    )
    assert authenticate_post(ok, "bkt", lookup, now()).signature_version == "v2"


def test_s3_tests_style_policies() -> None:
    """Hand-built SigV2 forms as ceph/s3-tests posts them."""
    conditions: list[Any] = [
        {"bUcKeT": "bkt"},
        ["StArTs-WiTh", "$KeY", "foo"],
        {"AcL": "private"},
        ["starts-with", "$Content-Type", "text/plain"],
        ["content-length-range", 0, 1024],
    ]
    document = {"expiration": "2099-01-01T00:00:00Z", "conditions": conditions}
    form = {
        **_signed_v2(document),
        "key": "foo.txt",
        "acl": "private",
        "Content-Type": "text/plain",
    }
    form["pOLICy"] = form.pop("policy")
    assert authenticate_post(form, "bkt", lookup, now()).length_range == (0, 1024)
    with pytest.raises(AuthError) as info:  # the form posted to another bucket
        authenticate_post({**form, "bucket": "bkt"}, "other", lookup, now())
    assert info.value.code == "AccessDenied"
    no_bucket = {"expiration": "2099-01-01T00:00:00Z", "conditions": conditions[1:]}
    form = {
        **_signed_v2(no_bucket),
        "key": "foo.txt",
        "acl": "private",
        "Content-Type": "text/plain",
    }
    with pytest.raises(AuthError) as info:
        authenticate_post(form, "bkt", lookup, now())
    assert info.value.code == "AccessDenied"
    meta = {
        "expiration": "2099-01-01T00:00:00Z",
        "conditions": [*conditions, ["eq", "$x-amz-meta-foo", ""]],
    }
    form = {**_signed_v2(meta), "key": "foo.txt", "acl": "private", "Content-Type": "text/plain"}
    with pytest.raises(AuthError) as info:
        authenticate_post({**form, "x-amz-meta-foo": "barclamp"}, "bkt", lookup, now())
    assert info.value.code == "AccessDenied"
    assert authenticate_post({**form, "x-amz-meta-foo": ""}, "bkt", lookup, now()).credentials
