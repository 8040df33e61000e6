"""Signed requests against the real server, as each client family signs them (reference §1.1).

Every client encodes a little differently from the server's Java rule; each must still get a
200, while a wrong secret, a tampered value or an expired signatureVersion 3 request gets a 401
and changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import httpx
import pytest
from cs import CloudStack, CloudStackApiException

from tests.support.cloud import Cloud, Keys
from tests.unit.test_signing import cmk_sign, marvin_sign

BAD_CREDENTIALS = "unable to verify user credentials and/or request signature"
AWKWARD = "a b~c*d/e"


def _client(cloud: Cloud, secret: str | None = None, **kw: object) -> CloudStack:
    return CloudStack(
        endpoint=cloud.endpoint,
        key=cloud.admin.api_key,
        secret=secret or cloud.admin.secret,
        **kw,
    )


def _send(cloud: Cloud, params: dict[str, str], signature: str) -> httpx.Response:
    query = urlencode({**params, "signature": signature})
    return httpx.get(f"{cloud.endpoint}?{query}", timeout=30)


def _expires(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).strftime("%Y-%m-%dT%H:%M:%S%z")


def _assert_unauthorized(resp: httpx.Response, command: str) -> None:
    assert resp.status_code == 401, resp.text
    body = resp.json()[f"{command.lower()}response"]
    assert body["errorcode"] == 401
    assert body["errortext"] == BAD_CREDENTIALS


def _user_count(cloud: Cloud, username: str) -> int:
    return int(cloud.call("listUsers", username=username, listall="true").get("count", 0))


@pytest.mark.parametrize("method", ["get", "post"])
def test_cs_signs_space_tilde_star_slash(cloud: Cloud, method: str) -> None:
    """cs leaves "~" unescaped (reference §1.1); the server must accept it."""
    client = _client(cloud, method=method)
    result = client.listUsers(keyword=AWKWARD)
    assert result == {}  # nobody matches, and the empty list is an empty object
    admin = client.listUsers(keyword="adm~")
    assert admin == {}
    # The same value in a filter that does match proves the value arrived intact.
    username = f"sig~{uuid.uuid4().hex[:6]} x*y/z"
    _make_user(cloud, username)
    found = client.listUsers(username=username, listall=True)
    assert found["count"] == 1 and found["user"][0]["username"] == username


def _make_user(cloud: Cloud, username: str) -> dict[str, object]:
    account = cloud.call(
        "createAccount",
        username=username,
        password="pw-" + uuid.uuid4().hex,
        firstname="Sig",
        lastname="Test",
        email="sig@example.com",
        account=f"acct-{uuid.uuid4().hex[:8]}",
        accounttype=0,
    )["account"]
    user: dict[str, object] = account["user"][0]
    return user


@pytest.mark.parametrize("signer", [marvin_sign, cmk_sign], ids=["marvin", "cmk"])
def test_marvin_and_cmk_signers_are_accepted(
    cloud: Cloud, signer: Callable[[str, dict[str, str]], str]
) -> None:
    params = {
        "command": "listUsers",
        "response": "json",
        "apiKey": cloud.admin.api_key,
        "username": "admin",
        "keyword": "adm",
        "tags[0].key": "k~1",
    }
    resp = _send(cloud, params, signer(cloud.admin.secret, params))
    assert resp.status_code == 200, resp.text
    assert resp.json()["listusersresponse"]["count"] == 1
    # And the same signer's output is refused with another secret.
    resp = _send(cloud, params, signer(cloud.admin.secret + "x", params))
    _assert_unauthorized(resp, "listUsers")


def test_marvin_and_cmk_with_tilde_in_value(cloud: Cloud) -> None:
    for signer in (marvin_sign, cmk_sign):
        params = {
            "command": "listUsers",
            "response": "json",
            "apikey": cloud.admin.api_key,
            "keyword": AWKWARD,
        }
        resp = _send(cloud, params, signer(cloud.admin.secret, params))
        assert resp.status_code == 200, (signer.__name__, resp.text)
        assert resp.json() == {"listusersresponse": {}}


def test_signature_version_3_future_expiry_is_accepted(cloud: Cloud) -> None:
    # cs adds signatureVersion=3 and expires=now+10min by default.
    assert _client(cloud).listUsers(username="admin")["count"] == 1


def test_signature_version_3_past_expiry_is_refused(cloud: Cloud) -> None:
    client = _client(cloud)
    with pytest.raises(CloudStackApiException) as err:
        client.listUsers(signatureVersion="3", expires=_expires(-timedelta(seconds=5)))
    assert err.value.response.status_code == 401
    assert err.value.error["errortext"] == BAD_CREDENTIALS


def test_signature_version_3_without_expires_is_refused(cloud: Cloud) -> None:
    resp = cloud.signed("listUsers", signatureVersion="3")
    _assert_unauthorized(resp, "listUsers")


def test_signature_version_3_with_unparsable_expires_is_refused(cloud: Cloud) -> None:
    resp = cloud.signed("listUsers", signatureVersion="3", expires="tomorrow")
    _assert_unauthorized(resp, "listUsers")


def test_expires_is_ignored_without_signature_version_3(cloud: Cloud) -> None:
    """DOC dev.rst: without signatureVersion 3 the expiry is not checked."""
    resp = cloud.signed("listUsers", expires=_expires(-timedelta(days=1)))
    assert resp.status_code == 200, resp.text


def test_missing_signature_is_refused(cloud: Cloud) -> None:
    params = {"command": "listUsers", "response": "json", "apiKey": cloud.admin.api_key}
    resp = httpx.get(f"{cloud.endpoint}?{urlencode(params)}", timeout=30)
    _assert_unauthorized(resp, "listUsers")


def test_unknown_api_key_is_refused(cloud: Cloud) -> None:
    resp = cloud.signed("listUsers", Keys("no-such-key", cloud.admin.secret))
    _assert_unauthorized(resp, "listUsers")


def test_tampered_value_is_refused(cloud: Cloud) -> None:
    params = {
        "command": "listUsers",
        "response": "json",
        "apiKey": cloud.admin.api_key,
        "username": "admin",
    }
    good = _client(cloud, expiration=-1)
    data = dict(params)
    good._sign(data)
    resp = _send(cloud, {**params, "username": "admin2"}, str(data["signature"]))
    _assert_unauthorized(resp, "listUsers")


def test_wrong_secret_creates_nothing(cloud: Cloud) -> None:
    """A state-changing call with a bad signature is refused before anything is written."""
    username = f"ghost-{uuid.uuid4().hex[:8]}"
    bad = Keys(cloud.admin.api_key, cloud.admin.secret + "wrong")
    resp = cloud.signed(
        "createAccount",
        bad,
        username=username,
        password="pw-123456",
        firstname="G",
        lastname="H",
        email="g@example.com",
    )
    _assert_unauthorized(resp, "createAccount")
    assert _user_count(cloud, username) == 0
    accounts = cloud.call("listAccounts", name=username, listall="true")
    assert accounts == {}
    # The cs client, POSTing, gets the same answer.
    with pytest.raises(CloudStackApiException) as err:
        _client(cloud, secret=bad.secret, method="post").createUser(
            account="admin",
            username=username,
            password="pw-123456",
            firstname="G",
            lastname="H",
            email="g@example.com",
        )
    assert err.value.response.status_code == 401
    assert err.value.error["errortext"] == BAD_CREDENTIALS
    assert _user_count(cloud, username) == 0


def test_wrong_secret_deletes_nothing_and_keeps_keys(cloud: Cloud) -> None:
    user = _make_user(cloud, f"victim-{uuid.uuid4().hex[:8]}")
    keys = cloud.call("registerUserKeys", id=user["id"])["userkeys"]
    bad = Keys(cloud.admin.api_key, "not-the-secret")
    resp = cloud.signed("deleteAccount", bad, id=user["accountid"])
    _assert_unauthorized(resp, "deleteAccount")
    resp = cloud.signed("registerUserKeys", bad, id=user["id"])
    _assert_unauthorized(resp, "registerUserKeys")
    assert _user_count(cloud, str(user["username"])) == 1
    # The keys were not regenerated: the old pair still signs.
    own = Keys(keys["apikey"], keys["secretkey"])
    assert cloud.call("listUsers", own, id=user["id"])["count"] == 1
