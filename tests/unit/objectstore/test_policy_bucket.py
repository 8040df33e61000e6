"""Bucket policies: validation (MalformedPolicy) and evaluation as the S3/IAM docs describe."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cumulo.objectstore.policy import (
    PolicyError,
    PolicyRequest,
    evaluate,
    parse_policy,
    resource_arn,
)
from cumulo.objectstore.policy.bucket_policy import account_principal

BUCKET = "photos"
ALICE = frozenset(
    {"alice-canonical-id", account_principal("acct-a"), "arn:aws:iam::acct-a:user/alice"}
)
BOB = frozenset({"bob-canonical-id", account_principal("acct-b"), "arn:aws:iam::acct-b:user/bob"})


def _policy(*statements: dict[str, Any], version: str = "2012-10-17") -> Any:
    return parse_policy(json.dumps({"Version": version, "Statement": list(statements)}), BUCKET)


def _ask(
    policy: Any, action: str, key: str | None = None, who: frozenset[str] = frozenset(), **ctx: Any
) -> Any:
    context = {
        k.replace("__", ":").replace("_", "-"): v if isinstance(v, list) else [v]
        for k, v in ctx.items()
    }
    return evaluate(policy, PolicyRequest(action, resource_arn(BUCKET, key), who, context))


PUBLIC_READ = {
    "Sid": "PublicRead",
    "Effect": "Allow",
    "Principal": "*",
    "Action": ["s3:GetObject", "s3:GetObjectVersion"],
    "Resource": f"arn:aws:s3:::{BUCKET}/*",
}


def test_public_read_example() -> None:
    policy = _policy(PUBLIC_READ)
    assert _ask(policy, "s3:GetObject", "a/b.jpg") == "Allow"
    assert _ask(policy, "s3:GetObject", "a/b.jpg", ALICE) == "Allow"
    assert _ask(policy, "s3:PutObject", "a/b.jpg") is None
    assert _ask(policy, "s3:ListBucket") is None  # the bucket ARN is not bucket/*


def test_explicit_deny_wins_over_allow() -> None:
    policy = _policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": ["acct-a"]},
            "Action": "s3:*",
            "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"],
        },
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:DeleteObject",
            "Resource": f"arn:aws:s3:::{BUCKET}/locked/*",
        },
    )
    assert _ask(policy, "s3:DeleteObject", "free/x", ALICE) == "Allow"
    assert _ask(policy, "s3:DeleteObject", "locked/x", ALICE) == "Deny"
    assert _ask(policy, "s3:ListBucket", None, ALICE) == "Allow"
    assert _ask(policy, "s3:GetObject", "free/x", BOB) is None


def test_principal_forms() -> None:
    user = _policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::acct-b:user/bob"},
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{BUCKET}/*",
        }
    )
    assert _ask(user, "s3:GetObject", "k", BOB) == "Allow"
    assert _ask(user, "s3:GetObject", "k", ALICE) is None
    assert _ask(user, "s3:GetObject", "k") is None  # anonymous is only matched by "*"
    canonical = _policy(
        {
            "Effect": "Allow",
            "Principal": {"CanonicalUser": "alice-canonical-id"},
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{BUCKET}/*",
        }
    )
    assert _ask(canonical, "s3:GetObject", "k", ALICE) == "Allow"
    star = _policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{BUCKET}/*",
        }
    )
    assert _ask(star, "s3:GetObject", "k") == "Allow"


def test_not_principal_not_action_not_resource() -> None:
    policy = _policy(
        {
            "Effect": "Deny",
            "NotPrincipal": {"AWS": "acct-a"},
            "NotAction": ["s3:Get*", "s3:List*"],
            "NotResource": f"arn:aws:s3:::{BUCKET}/public/*",
        }
    )
    assert _ask(policy, "s3:PutObject", "private/x", BOB) == "Deny"
    assert _ask(policy, "s3:PutObject", "private/x") == "Deny"  # anonymous is not acct-a
    assert _ask(policy, "s3:PutObject", "private/x", ALICE) is None
    assert _ask(policy, "s3:GetObject", "private/x", BOB) is None
    assert _ask(policy, "s3:PutObject", "public/x", BOB) is None


def test_action_and_resource_wildcards() -> None:
    policy = _policy(
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:get*",
            "Resource": f"arn:aws:s3:::{BUCKET}/2026-??/*.jpg",
        }
    )
    assert _ask(policy, "s3:GetObject", "2026-11/cat.jpg") == "Allow"
    assert _ask(policy, "s3:GetObjectAcl", "2026-11/a/b.jpg") == "Allow"
    assert _ask(policy, "s3:GetObject", "2026-1/cat.jpg") is None
    assert _ask(policy, "s3:GetObject", "2026-11/cat.JPG") is None  # resources are case-sensitive
    assert _ask(policy, "s3:PutObject", "2026-11/cat.jpg") is None


def test_source_ip_conditions() -> None:
    policy = _policy(
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{BUCKET}/*",
            "Condition": {
                "IpAddress": {"aws:SourceIp": ["192.0.2.0/24", "2001:db8::/32"]},
                "NotIpAddress": {"aws:SourceIp": "192.0.2.188/32"},
            },
        }
    )
    assert _ask(policy, "s3:GetObject", "k", aws__SourceIp="192.0.2.7") == "Allow"
    assert _ask(policy, "s3:GetObject", "k", aws__SourceIp="2001:db8::5") == "Allow"
    assert _ask(policy, "s3:GetObject", "k", aws__SourceIp="192.0.2.188") is None
    assert _ask(policy, "s3:GetObject", "k", aws__SourceIp="198.51.100.1") is None
    assert _ask(policy, "s3:GetObject", "k") is None  # no source ip: IpAddress cannot hold


def test_secure_transport_deny() -> None:
    policy = _policy(
        PUBLIC_READ,
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": f"arn:aws:s3:::{BUCKET}/*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
    )
    assert _ask(policy, "s3:GetObject", "k", aws__SecureTransport="false") == "Deny"
    assert _ask(policy, "s3:GetObject", "k", aws__SecureTransport="true") == "Allow"
    boolean = _policy({**PUBLIC_READ, "Condition": {"Bool": {"aws:SecureTransport": True}}})
    assert _ask(boolean, "s3:GetObject", "k", aws__SecureTransport="TRUE") == "Allow"


def test_string_conditions_on_s3_keys() -> None:
    listing = _policy(
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:ListBucket",
            "Resource": f"arn:aws:s3:::{BUCKET}",
            "Condition": {
                "StringLike": {"s3:prefix": ["home/*", ""]},
                "StringEquals": {"s3:delimiter": "/"},
            },
        }
    )
    assert (
        _ask(listing, "s3:ListBucket", None, s3__prefix="home/alice/", s3__delimiter="/") == "Allow"
    )
    assert _ask(listing, "s3:ListBucket", None, s3__prefix="", s3__delimiter="/") == "Allow"
    assert _ask(listing, "s3:ListBucket", None, s3__prefix="etc/", s3__delimiter="/") is None
    assert _ask(listing, "s3:ListBucket", None, s3__prefix="home/x") is None  # delimiter missing
    acl = _policy(
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": f"arn:aws:s3:::{BUCKET}/*",
            "Condition": {
                "StringNotEquals": {"s3:x-amz-acl": ["private", "bucket-owner-full-control"]}
            },
        }
    )
    assert _ask(acl, "s3:PutObject", "k", s3__x_amz_acl="public-read") == "Deny"
    assert _ask(acl, "s3:PutObject", "k", s3__x_amz_acl="private") is None
    assert _ask(acl, "s3:PutObject", "k") == "Deny"  # negated operator holds for an absent key
    if_exists = _policy(
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": f"arn:aws:s3:::{BUCKET}/*",
            "Condition": {"StringEqualsIfExists": {"s3:x-amz-acl": "private"}},
        }
    )
    assert _ask(if_exists, "s3:PutObject", "k") == "Allow"  # absent key: IfExists holds
    assert _ask(if_exists, "s3:PutObject", "k", s3__x_amz_acl="private") == "Allow"
    assert _ask(if_exists, "s3:PutObject", "k", s3__x_amz_acl="public-read") is None
    ignore_case = _policy(
        {**PUBLIC_READ, "Condition": {"StringEqualsIgnoreCase": {"aws:UserAgent": "CurL"}}}
    )
    assert _ask(ignore_case, "s3:GetObject", "k", aws__UserAgent="curl") == "Allow"
    assert (
        _ask(ignore_case, "s3:GetObject", "k", AWS__USERAGENT="curl") == "Allow"
    )  # keys ignore case


def test_numeric_date_null_and_set_operators() -> None:
    numeric = _policy(
        {
            **PUBLIC_READ,
            "Action": "s3:ListBucket",
            "Resource": f"arn:aws:s3:::{BUCKET}",
            "Condition": {"NumericLessThanEquals": {"s3:max-keys": "10"}},
        }
    )
    assert _ask(numeric, "s3:ListBucket", None, s3__max_keys="10") == "Allow"
    assert _ask(numeric, "s3:ListBucket", None, s3__max_keys="11") is None
    assert _ask(numeric, "s3:ListBucket", None, s3__max_keys="ten") is None
    dated = _policy(
        {**PUBLIC_READ, "Condition": {"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}}
    )
    assert _ask(dated, "s3:GetObject", "k", aws__CurrentTime="2026-11-22T04:00:00Z") == "Allow"
    assert _ask(dated, "s3:GetObject", "k", aws__CurrentTime="2031-01-01T00:00:00Z") is None
    null = _policy(
        {**PUBLIC_READ, "Condition": {"Null": {"s3:x-amz-server-side-encryption": "true"}}}
    )
    assert _ask(null, "s3:GetObject", "k") == "Allow"
    assert _ask(null, "s3:GetObject", "k", s3__x_amz_server_side_encryption="AES256") is None
    tags = _policy(
        {
            **PUBLIC_READ,
            "Condition": {"ForAllValues:StringEquals": {"s3:RequestObjectTagKeys": ["a", "b"]}},
        }
    )
    assert _ask(tags, "s3:GetObject", "k", s3__RequestObjectTagKeys=["a", "b"]) == "Allow"
    assert _ask(tags, "s3:GetObject", "k", s3__RequestObjectTagKeys=["a", "c"]) is None
    assert _ask(tags, "s3:GetObject", "k") == "Allow"  # ForAllValues holds for no values
    anyv = _policy(
        {
            **PUBLIC_READ,
            "Condition": {"ForAnyValue:StringLike": {"s3:RequestObjectTagKeys": "pub*"}},
        }
    )
    assert _ask(anyv, "s3:GetObject", "k", s3__RequestObjectTagKeys=["x", "public"]) == "Allow"
    assert _ask(anyv, "s3:GetObject", "k", s3__RequestObjectTagKeys=["x"]) is None
    assert _ask(anyv, "s3:GetObject", "k") is None


def test_policy_variables_only_in_2012_version() -> None:
    home = {
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": f"arn:aws:s3:::{BUCKET}/home/${{aws:username}}/*",
    }
    policy = _policy(home)
    assert _ask(policy, "s3:PutObject", "home/alice/x", ALICE, aws__username="alice") == "Allow"
    assert _ask(policy, "s3:PutObject", "home/bob/x", ALICE, aws__username="alice") is None
    assert _ask(policy, "s3:PutObject", "home//x", ALICE) is None  # variable absent: no match
    old = _policy(home, version="2008-10-17")
    assert _ask(old, "s3:PutObject", "home/alice/x", ALICE, aws__username="alice") is None
    assert _ask(old, "s3:PutObject", "home/${aws:username}/x", ALICE) == "Allow"


def test_referer_if_exists_as_s3_tests() -> None:
    """ceph/s3-tests test_bucket_policy_set_condition_operator_end_with_IfExists."""
    policy = _policy(
        {
            "Sid": "Allow Public Access to All Objects",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Condition": {"StringLikeIfExists": {"aws:Referer": "http://www.example.com/*"}},
            "Resource": f"arn:aws:s3:::{BUCKET}/*",
        }
    )
    assert _ask(policy, "s3:GetObject", "foo", aws__Referer="http://www.example.com/") == "Allow"
    assert (
        _ask(policy, "s3:GetObject", "foo", aws__Referer="http://www.example.com/a.html") == "Allow"
    )
    assert _ask(policy, "s3:GetObject", "foo") == "Allow"
    assert _ask(policy, "s3:GetObject", "foo", aws__Referer="http://example.com") is None


def test_statement_object_instead_of_list_and_no_version() -> None:
    policy = parse_policy(json.dumps({"Statement": PUBLIC_READ}), BUCKET)
    assert policy.version == "2008-10-17"
    assert _ask(policy, "s3:GetObject", "k") == "Allow"


@pytest.mark.parametrize(
    "document",
    [
        "not json",
        "[]",
        json.dumps({"Version": "2012-10-17"}),
        json.dumps({"Version": "2012-10-17", "Statement": []}),
        json.dumps({"Version": "2019-01-01", "Statement": [PUBLIC_READ]}),
        json.dumps({"Version": "2012-10-17", "Statement": [PUBLIC_READ], "Extra": 1}),
        json.dumps({"Statement": [{**PUBLIC_READ, "Effect": "Maybe"}]}),
        json.dumps({"Statement": [{k: v for k, v in PUBLIC_READ.items() if k != "Effect"}]}),
        json.dumps({"Statement": [{k: v for k, v in PUBLIC_READ.items() if k != "Principal"}]}),
        json.dumps({"Statement": [{k: v for k, v in PUBLIC_READ.items() if k != "Action"}]}),
        json.dumps({"Statement": [{k: v for k, v in PUBLIC_READ.items() if k != "Resource"}]}),
        json.dumps({"Statement": [{**PUBLIC_READ, "NotAction": "s3:PutObject"}]}),
        json.dumps({"Statement": [{**PUBLIC_READ, "Action": "s3:GetObjects"}]}),
        json.dumps({"Statement": [{**PUBLIC_READ, "Action": "ec2:RunInstances"}]}),
        json.dumps({"Statement": [{**PUBLIC_READ, "Action": "s3:Nope*"}]}),
        json.dumps({"Statement": [{**PUBLIC_READ, "Resource": "arn:aws:s3:::other-bucket/*"}]}),
        json.dumps({"Statement": [{**PUBLIC_READ, "Resource": "arn:aws:ec2:::photos/*"}]}),
        json.dumps({"Statement": [{**PUBLIC_READ, "Principal": {"Nobody": "x"}}]}),
        json.dumps(
            {"Statement": [{**PUBLIC_READ, "Principal": {"AWS": "arn:aws:iam::x:badtype"}}]}
        ),
        json.dumps({"Statement": [{**PUBLIC_READ, "Principal": "someone"}]}),
        json.dumps({"Statement": [PUBLIC_READ, PUBLIC_READ]}),
        json.dumps(
            {"Statement": [{**PUBLIC_READ, "Condition": {"StringEqualz": {"s3:prefix": "a"}}}]}
        ),
        json.dumps(
            {
                "Statement": [
                    {**PUBLIC_READ, "Condition": {"IpAddress": {"aws:SourceIp": "300.1.1.1/8"}}}
                ]
            }
        ),
        json.dumps(
            {"Statement": [{**PUBLIC_READ, "Condition": {"NumericLessThan": {"s3:max-keys": "x"}}}]}
        ),
        json.dumps(
            {"Statement": [{**PUBLIC_READ, "Condition": {"Bool": {"aws:SecureTransport": "yes"}}}]}
        ),
        json.dumps({"Statement": [{**PUBLIC_READ, "Condition": {"StringEquals": {"nokey": "a"}}}]}),
        json.dumps(
            {
                "Statement": [
                    {**PUBLIC_READ, "Condition": {"ForSome:StringEquals": {"s3:prefix": "a"}}}
                ]
            }
        ),
        json.dumps(
            {"Statement": [{**PUBLIC_READ, "Condition": {"StringEquals": {"s3:prefix": []}}}]}
        ),
    ],
)
def test_malformed_policies_refused(document: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(document, BUCKET)
    assert info.value.code == "MalformedPolicy" and info.value.http_status == 400


def test_oversized_policy_refused() -> None:
    big = {**PUBLIC_READ, "Sid": "x" * 21000}
    with pytest.raises(PolicyError) as info:
        parse_policy(json.dumps({"Statement": [big]}), BUCKET)
    assert info.value.code == "PolicyTooLarge"


def test_bucket_wildcard_resource_allowed_when_it_covers_the_bucket() -> None:
    policy = _policy({**PUBLIC_READ, "Resource": "arn:aws:s3:::pho*/*"})
    assert _ask(policy, "s3:GetObject", "k") == "Allow"
    tenant_form = _policy({**PUBLIC_READ, "Resource": f"arn:aws:s3::*:{BUCKET}/*"})
    assert _ask(tenant_form, "s3:GetObject", "k") == "Allow"
    with pytest.raises(PolicyError):
        _policy({**PUBLIC_READ, "Resource": f"arn:aws:s3:eu-west-1::{BUCKET}/*"})
    everything = _policy({**PUBLIC_READ, "Resource": "*"})
    assert _ask(everything, "s3:GetObject", "k") == "Allow"


def test_policy_status_is_public() -> None:
    """The policies of ceph/s3-tests' test_get_*_bucket_policy_status."""
    from cumulo.objectstore.policy.bucket_policy import is_public

    both = [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"]
    public = _policy(
        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:ListBucket", "Resource": both}
    )
    assert is_public(public)
    narrow_ip = _policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": "s3:ListBucket",
            "Resource": both,
            "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/32"}},
        }
    )
    assert not is_public(narrow_ip)
    wide_ip = _policy({**PUBLIC_READ, "Condition": {"IpAddress": {"aws:SourceIp": "0.0.0.0/1"}}})
    assert is_public(wide_ip)
    not_principal = _policy(
        {
            "Effect": "Allow",
            "NotPrincipal": {"AWS": "arn:aws:iam::s3tenant1:root"},
            "Action": "s3:ListBucket",
            "Resource": both,
        }
    )
    assert is_public(not_principal)
    named = _policy({**PUBLIC_READ, "Principal": {"AWS": "acct-a"}})
    assert not is_public(named)
    deny = _policy({**PUBLIC_READ, "Effect": "Deny"})
    assert not is_public(deny)
    referer = _policy({**PUBLIC_READ, "Condition": {"StringLike": {"aws:Referer": "http://x/*"}}})
    assert is_public(referer)  # a Referer header is set by the caller: still public
