"""Requests as boto3 sends them, mapped to their policy action and condition keys."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import pytest

from cumulo.objectstore.policy import (
    PolicyRequest,
    condition_context,
    evaluate,
    parse_policy,
    resource_arn,
    s3_action,
)
from tests.unit.objectstore.s3sign import Wire, capture, client, presigned

B = {"Bucket": "bkt"}
K = {"Bucket": "bkt", "Key": "dir/k"}
XML_CORS = {"CORSRules": [{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}]}


def _action(wire: Wire) -> str | None:
    parts = unquote(wire.view.raw_path).lstrip("/").split("/", 1)
    bucket = parts[0] or None
    key = parts[1] if len(parts) > 1 else None
    return s3_action(wire.view.method, bucket, key, wire.view.query)


@pytest.mark.parametrize(
    ("operation", "params", "action"),
    [
        ("list_buckets", {}, "s3:ListAllMyBuckets"),
        ("create_bucket", B, "s3:CreateBucket"),
        ("delete_bucket", B, "s3:DeleteBucket"),
        ("head_bucket", B, "s3:ListBucket"),
        ("list_objects", B, "s3:ListBucket"),
        ("list_objects_v2", B, "s3:ListBucket"),
        ("list_object_versions", B, "s3:ListBucketVersions"),
        ("list_multipart_uploads", B, "s3:ListBucketMultipartUploads"),
        ("get_bucket_location", B, "s3:GetBucketLocation"),
        ("get_bucket_acl", B, "s3:GetBucketAcl"),
        ("put_bucket_acl", {**B, "ACL": "private"}, "s3:PutBucketAcl"),
        ("get_bucket_policy", B, "s3:GetBucketPolicy"),
        ("put_bucket_policy", {**B, "Policy": "{}"}, "s3:PutBucketPolicy"),
        ("delete_bucket_policy", B, "s3:DeleteBucketPolicy"),
        ("get_bucket_cors", B, "s3:GetBucketCORS"),
        ("put_bucket_cors", {**B, "CORSConfiguration": XML_CORS}, "s3:PutBucketCORS"),
        ("delete_bucket_cors", B, "s3:PutBucketCORS"),
        ("get_bucket_versioning", B, "s3:GetBucketVersioning"),
        (
            "put_bucket_versioning",
            {**B, "VersioningConfiguration": {"Status": "Enabled"}},
            "s3:PutBucketVersioning",
        ),
        ("get_bucket_lifecycle_configuration", B, "s3:GetLifecycleConfiguration"),
        ("delete_bucket_lifecycle", B, "s3:PutLifecycleConfiguration"),
        ("get_bucket_tagging", B, "s3:GetBucketTagging"),
        ("delete_bucket_tagging", B, "s3:PutBucketTagging"),
        ("delete_objects", {**B, "Delete": {"Objects": [{"Key": "a"}]}}, "s3:DeleteObject"),
        ("get_object", K, "s3:GetObject"),
        ("get_object", {**K, "VersionId": "v1"}, "s3:GetObjectVersion"),
        ("head_object", K, "s3:GetObject"),
        ("put_object", {**K, "Body": b"x"}, "s3:PutObject"),
        ("copy_object", {**K, "CopySource": "src/key"}, "s3:PutObject"),
        ("delete_object", K, "s3:DeleteObject"),
        ("delete_object", {**K, "VersionId": "v1"}, "s3:DeleteObjectVersion"),
        ("get_object_acl", K, "s3:GetObjectAcl"),
        ("get_object_acl", {**K, "VersionId": "v1"}, "s3:GetObjectVersionAcl"),
        ("put_object_acl", {**K, "ACL": "private"}, "s3:PutObjectAcl"),
        ("get_object_tagging", K, "s3:GetObjectTagging"),
        ("put_object_tagging", {**K, "Tagging": {"TagSet": []}}, "s3:PutObjectTagging"),
        ("delete_object_tagging", K, "s3:DeleteObjectTagging"),
        ("create_multipart_upload", K, "s3:PutObject"),
        ("upload_part", {**K, "UploadId": "u", "PartNumber": 1, "Body": b"x"}, "s3:PutObject"),
        (
            "upload_part_copy",
            {**K, "UploadId": "u", "PartNumber": 1, "CopySource": "s/k"},
            "s3:PutObject",
        ),
        (
            "complete_multipart_upload",
            {**K, "UploadId": "u", "MultipartUpload": {"Parts": []}},
            "s3:PutObject",
        ),
        ("abort_multipart_upload", {**K, "UploadId": "u"}, "s3:AbortMultipartUpload"),
        ("list_parts", {**K, "UploadId": "u"}, "s3:ListMultipartUploadParts"),
        ("get_object_retention", K, "s3:GetObjectRetention"),
        ("get_object_legal_hold", K, "s3:GetObjectLegalHold"),
    ],
)
def test_boto3_operations_map_to_actions(
    operation: str, params: dict[str, Any], action: str
) -> None:
    assert _action(capture(client(), operation, **params)) == action


def test_action_names_are_valid_in_policies() -> None:
    """Every action the table produces is one a policy may name."""
    from cumulo.objectstore.policy.bucket_policy import S3_ACTIONS
    from cumulo.objectstore.policy.request import _SUBRESOURCES, _VERSIONED

    produced = {
        a for methods in _SUBRESOURCES.values() for pair in methods.values() for a in pair if a
    }
    produced |= set(_VERSIONED.values())
    assert produced <= S3_ACTIONS


def test_condition_context_from_a_boto3_request() -> None:
    wire = capture(
        client(),
        "put_object",
        Bucket="bkt",
        Key="k",
        Body=b"x",
        ACL="public-read",
        GrantFullControl="id=owner",
        Tagging="security=high&team=a",
    )
    at = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)
    context = condition_context(
        wire.view.headers,
        wire.view.query,
        source_ip="192.0.2.9",
        secure=False,
        now=at,
        signature_version="v4",
        username="alice",
    )
    assert context["s3:x-amz-acl"] == ["public-read"]
    assert context["s3:x-amz-grant-full-control"] == ["id=owner"]
    assert context["s3:requestobjecttag/security"] == ["high"]
    assert context["s3:requestobjecttagkeys"] == ["security", "team"]
    assert context["aws:sourceip"] == ["192.0.2.9"]
    assert context["aws:securetransport"] == ["false"]
    assert context["aws:currenttime"] == ["2026-11-22T04:00:00Z"]
    assert context["s3:signatureversion"] == ["AWS4-HMAC-SHA256"]
    assert context["s3:authtype"] == ["REST-HEADER"]
    assert context["aws:username"] == ["alice"]

    listing = capture(
        client(), "list_objects_v2", Bucket="bkt", Prefix="home/", Delimiter="/", MaxKeys=5
    )
    context = condition_context(
        listing.view.headers,
        listing.view.query,
        source_ip=None,
        secure=True,
        now=at,
        signature_version="v4",
    )
    assert context["s3:prefix"] == ["home/"] and context["s3:delimiter"] == ["/"]
    assert context["s3:max-keys"] == ["5"] and "aws:sourceip" not in context

    url = presigned(client(signature_version="s3"), "get_object", 60, Bucket="bkt", Key="k")
    context = condition_context(
        url.view.headers,
        url.view.query,
        source_ip=None,
        secure=True,
        now=at,
        signature_version="v2",
    )
    assert context["s3:authtype"] == ["REST-QUERY-STRING"] and context["s3:signatureversion"] == [
        "AWS"
    ]
    anonymous = condition_context(
        {}, [], source_ip=None, secure=True, now=at, signature_version="anonymous"
    )
    assert "s3:authtype" not in anonymous and anonymous["aws:principaltype"] == ["Anonymous"]


def test_end_to_end_deny_public_acl_uploads() -> None:
    """s3-tests test_bucket_policy_put_obj_acl: uploads with a public-* ACL are denied."""
    policy = parse_policy(
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": "s3:PutObject",
                        "Resource": "arn:aws:s3:::bkt/*",
                    },
                    {
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:PutObject",
                        "Resource": "arn:aws:s3:::bkt/*",
                        "Condition": {"StringLike": {"s3:x-amz-acl": "public*"}},
                    },
                ],
            }
        ),
        "bkt",
    )
    at = datetime.now(UTC)

    def decide(**params: Any) -> str | None:
        wire = capture(client(), "put_object", Bucket="bkt", Key="k", Body=b"x", **params)
        ctx = condition_context(
            wire.view.headers,
            wire.view.query,
            source_ip=None,
            secure=False,
            now=at,
            signature_version="v4",
        )
        action = _action(wire)
        assert action is not None
        return evaluate(
            policy, PolicyRequest(action, resource_arn("bkt", "k"), frozenset({"alt"}), ctx)
        )

    assert decide() == "Allow"
    assert decide(ACL="private") == "Allow"
    assert decide(ACL="public-read") == "Deny"
