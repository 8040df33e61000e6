"""Registered user data through the real server: base64 rules, size limit, tenancy."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.integration.tenants import Tenant, error, make_tenant, uniq
from tests.support.cloud import Cloud

CLOUD_CONFIG = b"#cloud-config\nruncmd:\n  - echo hello {{ ds.meta_data.greeting }}\n"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _names(tenant: Tenant, **params: Any) -> set[str]:
    return {u["name"] for u in tenant.call("listUserData", **params).get("userdata", [])}


def test_register_list_delete(cloud: Cloud) -> None:
    tenant = make_tenant(cloud)
    name = uniq("ud")
    entry = tenant.call(
        "registerUserData", name=name, userdata=_b64(CLOUD_CONFIG), params="greeting"
    )["userdata"]
    assert entry["userdata"] == _b64(CLOUD_CONFIG) and entry["params"] == "greeting"
    assert entry["account"] == tenant.name and entry["accountid"] == tenant.account_id
    listed = tenant.call("listUserData", id=entry["id"])["userdata"][0]
    assert base64.b64decode(listed["userdata"]) == CLOUD_CONFIG
    events = tenant.call("listEvents", type="REGISTER.USER.DATA").get("event", [])
    assert any(e.get("resourceid") == entry["id"] for e in events)
    tenant.call("deleteUserData", id=entry["id"])
    assert name not in _names(tenant)


@pytest.mark.parametrize(
    "payload",
    ["not base64 at all!", "YWJj$", "", base64.b64encode(b"x" * 32769).decode()],
    ids=["garbage", "bad-char", "empty", "over-32KiB"],
)
def test_bad_user_data_is_refused_and_nothing_written(cloud: Cloud, payload: str) -> None:
    tenant = make_tenant(cloud)
    name = uniq("bad")
    resp = tenant.cloud.signed(
        "registerUserData", tenant.keys, method="POST", name=name, userdata=payload
    )
    assert error(resp, "registerUserData")[0] == 431
    assert name not in _names(tenant)


def test_largest_allowed_user_data_is_accepted_by_post(cloud: Cloud) -> None:
    tenant = make_tenant(cloud)
    resp = tenant.cloud.signed(
        "registerUserData",
        tenant.keys,
        method="POST",
        name=uniq("big"),
        userdata=_b64(b"y" * 32768),
    )
    assert resp.status_code == 200, resp.text


def test_names_and_contents_are_unique_per_account(cloud: Cloud) -> None:
    tenant = make_tenant(cloud)
    name = uniq("one")
    tenant.call("registerUserData", name=name, userdata=_b64(b"#!/bin/sh\necho 1\n"))
    resp = tenant.raw("registerUserData", name=name, userdata=_b64(b"#!/bin/sh\necho 2\n"))
    assert error(resp, "registerUserData")[0] == 431
    resp = tenant.raw("registerUserData", name=uniq("two"), userdata=_b64(b"#!/bin/sh\necho 1\n"))
    assert error(resp, "registerUserData")[0] == 431
    assert tenant.call("listUserData")["count"] == 1


def test_tenants_do_not_see_or_delete_each_others_user_data(cloud: Cloud) -> None:
    alice, bob = make_tenant(cloud), make_tenant(cloud)
    entry = alice.call("registerUserData", name=uniq("a"), userdata=_b64(b"secret"))["userdata"]
    assert bob.call("listUserData", listall="true") == {}
    assert bob.call("listUserData", id=entry["id"]) == {}
    resp = bob.raw("deleteUserData", id=entry["id"])
    assert error(resp, "deleteUserData")[0] == 531
    assert alice.call("listUserData", id=entry["id"])["count"] == 1
    # The root admin sees it with listall.
    admin_view = alice.cloud.call("listUserData", listall="true", id=entry["id"])
    assert admin_view["count"] == 1
