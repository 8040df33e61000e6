"""The first conversation any CloudStack client has with a cloud."""

from __future__ import annotations

from cs import CloudStack

from tests.support.cloud import Cloud


def test_cs_lists_the_admin_user(cloud: Cloud) -> None:
    client = CloudStack(endpoint=cloud.endpoint, key=cloud.admin.api_key, secret=cloud.admin.secret)
    users = client.listUsers(username="admin")
    assert users["count"] == 1
    assert users["user"][0]["account"] == "admin"
    assert users["user"][0]["roletype"] == "Admin"
