"""apache-libcloud 3.9.1 against the real server: its signing quirks, errors and job polling.

libcloud lower-cases names before sorting and leaves "~", "[" and "]" unescaped in values
(reference §1.1); the server must accept exactly what it signs.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from libcloud.common.types import ProviderError
from libcloud.compute.providers import get_driver
from libcloud.compute.types import InvalidCredsError, Provider

from tests.integration.tenants import add_user, new_account
from tests.support.cloud import Cloud


def _driver(cloud: Cloud, secret: str | None = None) -> Any:
    cls = get_driver(Provider.CLOUDSTACK)
    return cls(
        cloud.admin.api_key,
        secret or cloud.admin.secret,
        host="127.0.0.1",
        port=cloud.port,
        path="/client/api",
        secure=False,
    )


def test_tilde_and_brackets_in_values(cloud: Cloud) -> None:
    drv = _driver(cloud)
    result = drv.connection._sync_request(
        command="listUsers", params={"keyword": "x~[y]"}, method="GET"
    )
    assert result == {}


def test_map_parameters_are_signed_and_accepted(cloud: Cloud) -> None:
    drv = _driver(cloud)
    result = drv.connection._sync_request(
        command="listUsers",
        params={
            "username": "admin",
            "tags[0].key": "k~[0]",
            "tags[0].value": "v a*l/u e",
            "tags[1].key": "Second",
            "tags[1].value": "~",
        },
        method="GET",
    )
    assert result["count"] == 1
    assert result["user"][0]["username"] == "admin"


def test_libcloud_finds_a_value_with_its_quirks(cloud: Cloud) -> None:
    account = new_account(cloud, "lc")
    username = f"lc~[{uuid.uuid4().hex[:6]}]"
    add_user(cloud, account, username)
    drv = _driver(cloud)
    result = drv.connection._sync_request(
        command="listUsers", params={"username": username, "listall": "true"}, method="GET"
    )
    assert result["count"] == 1
    assert result["user"][0]["username"] == username


def test_wrong_secret_raises_invalid_credentials(cloud: Cloud) -> None:
    drv = _driver(cloud, secret="wrong-secret")
    with pytest.raises(InvalidCredsError):
        drv.connection._sync_request(command="listUsers", params={}, method="GET")


def test_parameter_error_reaches_libcloud_as_errortext(cloud: Cloud) -> None:
    drv = _driver(cloud)
    with pytest.raises(ProviderError) as err:
        drv.connection._sync_request(command="listUsers", params={"id": "nope"}, method="GET")
    assert err.value.http_code == 431
    assert "Invalid parameter id value=nope" in str(err.value.value)


def test_async_job_is_polled_to_its_result(cloud: Cloud) -> None:
    account = new_account(cloud, "lc")
    drv = _driver(cloud)
    result = drv.connection._async_request(command="deleteAccount", params={"id": account["id"]})
    assert result == {"success": True}
    assert cloud.call("listAccounts", id=account["id"], listall="true") == {}
