"""Session login as the CloudStack UI and cmk use it (reference §1.2).

login is POST only; it answers the loginresponse fields and sets the JSESSIONID and sessionkey
cookies. With the default api.sessionkey.check.locations (CookieAndParameter) every later call
needs the JSESSIONID cookie, the sessionkey cookie AND the sessionkey parameter, all matching.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.support.cloud import Cloud

BAD_CREDENTIALS = "unable to verify user credentials and/or request signature"
LOGIN_FIELDS = {
    "username",
    "userid",
    "domainid",
    "timeout",
    "account",
    "firstname",
    "lastname",
    "type",
    "registered",
    "sessionkey",
    "is2faenabled",
    "is2faverified",
}


@dataclass
class Session:
    jsessionid: str
    key: str
    body: dict[str, Any]
    set_cookies: list[str]


def _login(cloud: Cloud, cookies: dict[str, str] | None = None, **form: str) -> httpx.Response:
    data = {"command": "login", "response": "json", **form}
    return httpx.post(cloud.endpoint, data=data, cookies=cookies, timeout=30)


def _admin_login(cloud: Cloud, **extra: str) -> Session:
    resp = _login(cloud, username="admin", password=cloud.admin_password, **extra)
    assert resp.status_code == 200, resp.text
    return Session(
        jsessionid=resp.cookies["JSESSIONID"],
        key=resp.cookies["sessionkey"],
        body=resp.json()["loginresponse"],
        set_cookies=resp.headers.get_list("set-cookie"),
    )


def _call(
    cloud: Cloud,
    command: str,
    *,
    cookies: dict[str, str],
    key: str | None,
    method: str = "GET",
    **params: str,
) -> httpx.Response:
    query = {"command": command, "response": "json", **params}
    if key is not None:
        query["sessionkey"] = key
    with httpx.Client(cookies=cookies, timeout=30) as client:
        if method == "POST":
            return client.post(cloud.endpoint, data=query)
        return client.get(cloud.endpoint, params=query)


def _both(s: Session) -> dict[str, str]:
    return {"JSESSIONID": s.jsessionid, "sessionkey": s.key}


def _assert_401(resp: httpx.Response) -> None:
    assert resp.status_code == 401, resp.text
    body = next(iter(resp.json().values()))
    assert body["errorcode"] == 401 and body["errortext"] == BAD_CREDENTIALS


def test_login_by_get_is_refused(cloud: Cloud) -> None:
    resp = httpx.get(
        cloud.endpoint,
        params={
            "command": "login",
            "username": "admin",
            "password": cloud.admin_password,
            "response": "json",
        },
        timeout=30,
    )
    assert resp.status_code == 405
    body = resp.json()["loginresponse"]
    assert body["errorcode"] == 405
    assert "set-cookie" not in resp.headers


@pytest.mark.parametrize("params", [{}, {"username": "admin"}], ids=["bare", "no-password"])
def test_login_by_get_is_405_before_parameters_are_checked(
    cloud: Cloud, params: dict[str, str]
) -> None:
    resp = httpx.get(
        cloud.endpoint, params={"command": "login", "response": "json", **params}, timeout=30
    )
    assert resp.status_code == 405, resp.text
    assert resp.json()["loginresponse"]["errorcode"] == 405
    resp = httpx.get(cloud.endpoint, params={"COMMAND": "Login", **params}, timeout=30)
    assert resp.status_code == 405
    assert ET.fromstring(resp.content).findtext("errorcode") == "405"


def test_wrong_password_is_refused(cloud: Cloud) -> None:
    resp = _login(cloud, username="admin", password=cloud.admin_password + "x")
    assert resp.status_code == 401
    assert resp.json()["loginresponse"]["errorcode"] == 401
    assert "set-cookie" not in resp.headers
    resp = _login(cloud, username=f"nobody-{uuid.uuid4().hex[:6]}", password="x")
    assert resp.status_code == 401


def test_login_response_fields_and_cookies(cloud: Cloud) -> None:
    s = _admin_login(cloud)
    assert set(s.body) >= LOGIN_FIELDS
    admin = cloud.call("listUsers", username="admin")["user"][0]
    assert s.body["username"] == "admin"
    assert s.body["userid"] == admin["id"]
    assert s.body["domainid"] == admin["domainid"]
    assert s.body["account"] == "admin"
    assert s.body["firstname"] == admin["firstname"]
    assert s.body["lastname"] == admin["lastname"]
    assert s.body["type"] == "1"  # LoginCmdResponse.type is a String
    assert isinstance(s.body["timeout"], int) and s.body["timeout"] > 0
    assert s.body["registered"] == "false"
    assert s.body["is2faenabled"] == "false"
    assert s.body["sessionkey"] == s.key
    # 20 random bytes, URL-safe Base64 without padding.
    assert len(s.key) == 27 and "=" not in s.key
    by_name = {c.split("=", 1)[0]: c for c in s.set_cookies}
    assert set(by_name) == {"JSESSIONID", "sessionkey"}
    for cookie in by_name.values():
        assert "httponly" in cookie.lower()


def test_login_response_in_xml_by_default(cloud: Cloud) -> None:
    resp = httpx.post(
        cloud.endpoint,
        data={"command": "login", "username": "admin", "password": cloud.admin_password},
        timeout=30,
    )
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "text/xml; charset=UTF-8"
    root = ET.fromstring(resp.content)
    assert root.tag == "loginresponse"
    assert root.findtext("username") == "admin"
    assert root.findtext("sessionkey") == resp.cookies["sessionkey"]


def test_session_with_cookie_and_parameter_works(cloud: Cloud) -> None:
    s = _admin_login(cloud)
    for method in ("GET", "POST"):
        resp = _call(
            cloud, "listUsers", cookies=_both(s), key=s.key, method=method, username="admin"
        )
        assert resp.status_code == 200, resp.text
        assert resp.json()["listusersresponse"]["count"] == 1


def test_session_needs_the_parameter(cloud: Cloud) -> None:
    s = _admin_login(cloud)
    _assert_401(_call(cloud, "listUsers", cookies=_both(s), key=None))


def test_session_needs_the_sessionkey_cookie(cloud: Cloud) -> None:
    """CookieAndParameter: the parameter alone, with only JSESSIONID, is not enough."""
    s = _admin_login(cloud)
    _assert_401(_call(cloud, "listUsers", cookies={"JSESSIONID": s.jsessionid}, key=s.key))


def test_session_needs_the_jsessionid_cookie(cloud: Cloud) -> None:
    s = _admin_login(cloud)
    _assert_401(_call(cloud, "listUsers", cookies={"sessionkey": s.key}, key=s.key))
    _assert_401(_call(cloud, "listUsers", cookies={}, key=s.key))


@pytest.mark.parametrize("which", ["param", "cookie", "jsessionid"])
def test_session_mismatch_is_refused(cloud: Cloud, which: str) -> None:
    s = _admin_login(cloud)
    other = _admin_login(cloud)
    cookies, key = _both(s), s.key
    if which == "param":
        key = other.key
    elif which == "cookie":
        cookies["sessionkey"] = other.key
    else:
        cookies["JSESSIONID"] = other.jsessionid
    _assert_401(_call(cloud, "listUsers", cookies=cookies, key=key))
    # Both sessions are still fine on their own.
    assert _call(cloud, "listUsers", cookies=_both(s), key=s.key).status_code == 200
    assert _call(cloud, "listUsers", cookies=_both(other), key=other.key).status_code == 200


def test_logout_ends_the_session(cloud: Cloud) -> None:
    s = _admin_login(cloud)
    other = _admin_login(cloud)
    resp = _call(cloud, "logout", cookies=_both(s), key=s.key)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"logoutresponse": {"description": "success"}}
    expired = {c.split("=", 1)[0] for c in resp.headers.get_list("set-cookie")}
    assert expired == {"JSESSIONID", "sessionkey"}
    _assert_401(_call(cloud, "listUsers", cookies=_both(s), key=s.key))
    _assert_401(_call(cloud, "logout", cookies=_both(s), key=s.key))
    # Another session of the same user lives on.
    assert _call(cloud, "listUsers", cookies=_both(other), key=other.key).status_code == 200


def test_a_new_login_ends_the_session_it_came_with(cloud: Cloud) -> None:
    """As ApiServlet: login invalidates the old HTTP session (no session fixation)."""
    old = _admin_login(cloud)
    resp = _login(cloud, cookies=_both(old), username="admin", password=cloud.admin_password)
    assert resp.status_code == 200
    assert resp.cookies["JSESSIONID"] != old.jsessionid
    _assert_401(_call(cloud, "listUsers", cookies=_both(old), key=old.key))
    fresh = {"JSESSIONID": resp.cookies["JSESSIONID"], "sessionkey": resp.cookies["sessionkey"]}
    assert _call(cloud, "listUsers", cookies=fresh, key=fresh["sessionkey"]).status_code == 200


def test_bad_signature_logout_leaves_the_session_alone(cloud: Cloud) -> None:
    """A state-changing call that fails authentication changes nothing."""
    from tests.support.cloud import Keys

    s = _admin_login(cloud)
    bad = Keys(cloud.admin.api_key, "wrong-secret")
    resp = cloud.signed("logout", bad)
    assert resp.status_code == 401
    assert _call(cloud, "listUsers", cookies=_both(s), key=s.key).status_code == 200


@pytest.mark.parametrize("domain", ["/", "ROOT", "/ROOT", "root/"])
def test_login_with_a_domain_path(cloud: Cloud, domain: str) -> None:
    s = _admin_login(cloud, domain=domain)
    assert s.body["username"] == "admin"
    assert _call(cloud, "listUsers", cookies=_both(s), key=s.key).status_code == 200


def test_login_with_a_domain_id(cloud: Cloud) -> None:
    domainid = cloud.call("listUsers", username="admin")["user"][0]["domainid"]
    s = _admin_login(cloud, domainId=domainid)
    assert s.body["domainid"] == domainid


def test_login_in_an_unknown_domain_is_refused(cloud: Cloud) -> None:
    resp = _login(
        cloud, username="admin", password=cloud.admin_password, domain=f"/nope-{uuid.uuid4().hex}"
    )
    assert resp.status_code == 401


def test_a_user_session_sees_only_what_the_user_may(cloud: Cloud) -> None:
    name = f"sess-{uuid.uuid4().hex[:8]}"
    password = "pw-" + uuid.uuid4().hex
    cloud.call(
        "createAccount",
        username=name,
        password=password,
        firstname="Ses",
        lastname="Sion",
        email="s@example.com",
        accounttype=0,
        timezone="Asia/Kolkata",
    )
    resp = _login(cloud, username=name, password=password)
    assert resp.status_code == 200, resp.text
    body = resp.json()["loginresponse"]
    assert body["type"] == "0" and body["account"] == name
    # India has no daylight saving time: the offset is always 5.5 hours.
    assert body["timezone"] == "Asia/Kolkata" and body["timezoneoffset"] == "5.5"
    cookies = {"JSESSIONID": resp.cookies["JSESSIONID"], "sessionkey": resp.cookies["sessionkey"]}
    users = _call(cloud, "listUsers", cookies=cookies, key=cookies["sessionkey"], listall="true")
    assert users.status_code == 200
    assert [u["username"] for u in users.json()["listusersresponse"]["user"]] == [name]
    # An admin-only command is "not available" to the user.
    denied = _call(
        cloud,
        "createAccount",
        cookies=cookies,
        key=cookies["sessionkey"],
        method="POST",
        username=name + "-2",
        password="x-123456",
        firstname="a",
        lastname="b",
        email="e@example.com",
        accounttype="0",
    )
    assert denied.status_code == 432
    assert cloud.call("listUsers", username=name + "-2", listall="true") == {}


@pytest.fixture
def check_locations(cloud: Cloud) -> Iterator[Callable[[str], None]]:
    """Set api.sessionkey.check.locations for one test, and put the default back after."""
    name = "api.sessionkey.check.locations"

    def set_to(value: str) -> None:
        cloud.call("updateConfiguration", name=name, value=value)

    try:
        yield set_to
    finally:
        cloud.call("resetConfiguration", name=name)
        assert cloud.call("listConfigurations", name=name)["configuration"][0]["value"] == (
            "CookieAndParameter"
        )


def test_cookie_or_parameter_mode(cloud: Cloud, check_locations: Callable[[str], None]) -> None:
    check_locations("CookieOrParameter")
    s = _admin_login(cloud)
    jsession = {"JSESSIONID": s.jsessionid}
    assert _call(cloud, "listUsers", cookies=jsession, key=s.key).status_code == 200
    assert _call(cloud, "listUsers", cookies=_both(s), key=None).status_code == 200
    _assert_401(_call(cloud, "listUsers", cookies=jsession, key=None))
    _assert_401(_call(cloud, "listUsers", cookies=_both(s), key="forged"))
    _assert_401(_call(cloud, "listUsers", cookies={**jsession, "sessionkey": "x"}, key=s.key))


def test_parameter_only_mode(cloud: Cloud, check_locations: Callable[[str], None]) -> None:
    check_locations("ParameterOnly")
    s = _admin_login(cloud)
    jsession = {"JSESSIONID": s.jsessionid}
    assert _call(cloud, "listUsers", cookies=jsession, key=s.key).status_code == 200
    assert _call(cloud, "listUsers", cookies=_both(s), key=s.key).status_code == 200
    _assert_401(_call(cloud, "listUsers", cookies=_both(s), key=None))
    _assert_401(_call(cloud, "listUsers", cookies={**jsession, "sessionkey": "x"}, key=s.key))
