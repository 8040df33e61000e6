"""The wire format of the real server, field by field against reference §2 and §3.

JSON (``response=json``) and XML (the default); every shape: lists, empty lists, single
objects, success, async submits, job results and errors; HTTP status equal to errorcode;
case-insensitive names; paging; and malformed parameters that must write nothing.
"""

from __future__ import annotations

import json
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from cs import CloudStack

from cumulo import CLOUDSTACK_VERSION
from cumulo.api.cloudstack.signing import sign_params
from tests.integration.tenants import add_user, new_account
from tests.support.cloud import Cloud, make_cloud

JSON_TYPE = "application/json; charset=UTF-8"
XML_TYPE = "text/xml; charset=UTF-8"
NOT_AVAILABLE = "The given command does not exist or it is not available for the user"
JOB_FIELDS = {
    "jobid",
    "jobstatus",
    "jobresultcode",
    "jobresulttype",
    "jobresult",
    "jobinstancetype",
    "jobinstanceid",
    "created",
    "completed",
    "cmd",
    "userid",
    "accountid",
}


def raw(
    cloud: Cloud, pairs: dict[str, str], *, method: str = "GET", sign: bool = True
) -> httpx.Response:
    """A request whose parameter names are sent exactly as given (any case)."""
    params = dict(pairs)
    if sign:
        params["signature"] = sign_params(cloud.admin.secret, params)
    if method == "POST":
        return httpx.post(cloud.endpoint, data=params, timeout=30)
    return httpx.get(f"{cloud.endpoint}?{urlencode(params)}", timeout=30)


def admin_call(
    cloud: Cloud, command: str, fmt: str | None = "json", **params: Any
) -> httpx.Response:
    pairs = {"command": command, "apiKey": cloud.admin.api_key}
    if fmt is not None:
        pairs["response"] = fmt
    pairs.update({k: str(v) for k, v in params.items()})
    return raw(cloud, pairs)


def xml_root(resp: httpx.Response, name: str) -> ET.Element:
    assert resp.headers["content-type"] == XML_TYPE
    root = ET.fromstring(resp.content)
    assert root.tag == name
    assert root.attrib == {"cloud-stack-version": CLOUDSTACK_VERSION}
    return root


def users_named(cloud: Cloud, username: str) -> int:
    return int(cloud.call("listUsers", username=username, listall="true").get("count", 0))


# --- lists -------------------------------------------------------------------------------


def test_list_non_empty_json(cloud: Cloud) -> None:
    resp = admin_call(cloud, "listUsers", username="admin")
    assert resp.status_code == 200
    assert resp.headers["content-type"] == JSON_TYPE
    data = resp.json()
    assert list(data) == ["listusersresponse"]
    body = data["listusersresponse"]
    assert list(body) == ["count", "user"]
    assert body["count"] == 1 and len(body["user"]) == 1
    user = body["user"][0]
    assert user["username"] == "admin" and user["account"] == "admin"
    assert isinstance(user["isdefault"], bool)
    uuid.UUID(user["id"])  # ids are UUID strings
    # Dates look like 2013-04-10T16:52:06-0700.
    assert len(user["created"]) == 24 and user["created"][19] in "+-"
    # JSON omits empty (null) fields.
    assert None not in user.values()


def test_list_non_empty_xml_is_the_default(cloud: Cloud) -> None:
    resp = admin_call(cloud, "listUsers", fmt=None, username="admin")
    assert resp.status_code == 200
    root = xml_root(resp, "listusersresponse")
    assert [c.tag for c in root] == ["count", "user"]
    assert root.findtext("count") == "1"
    user = root.find("user")
    assert user is not None
    assert user.findtext("username") == "admin"
    assert user.findtext("isdefault") == "true"
    json_user = admin_call(cloud, "listUsers", username="admin").json()["listusersresponse"]
    # XML carries every field JSON does, with the same values.
    for key, value in json_user["user"][0].items():
        text = user.findtext(key)
        expected = str(value).lower() if isinstance(value, bool) else str(value)
        assert text == expected, key


def test_list_empty_json_and_xml(cloud: Cloud) -> None:
    missing = f"nobody-{uuid.uuid4().hex}"
    resp = admin_call(cloud, "listUsers", username=missing)
    assert resp.status_code == 200
    assert resp.json() == {"listusersresponse": {}}
    resp = admin_call(cloud, "listUsers", fmt=None, username=missing)
    assert resp.status_code == 200
    assert len(xml_root(resp, "listusersresponse")) == 0


def test_response_value_is_case_insensitive(cloud: Cloud) -> None:
    resp = admin_call(cloud, "listUsers", fmt="JSON", username="admin")
    assert resp.headers["content-type"] == JSON_TYPE
    assert resp.json()["listusersresponse"]["count"] == 1
    resp = admin_call(cloud, "listUsers", fmt="xml", username="admin")
    assert resp.headers["content-type"] == XML_TYPE


# --- single objects, success, async ----------------------------------------------------------


def test_single_object_json_and_xml(cloud: Cloud) -> None:
    name = f"one-{uuid.uuid4().hex[:8]}"
    base = {
        "password": "pw-123456",
        "firstname": "One",
        "lastname": "Obj",
        "email": "one@example.com",
        "accounttype": 0,
    }
    resp = admin_call(cloud, "createAccount", username=name, **base)
    assert resp.status_code == 200, resp.text
    body = resp.json()["createaccountresponse"]
    assert list(body) == ["account"]
    assert body["account"]["name"] == name
    resp = admin_call(cloud, "createAccount", fmt=None, username=name + "x", **base)
    assert resp.status_code == 200, resp.text
    root = xml_root(resp, "createaccountresponse")
    assert [c.tag for c in root] == ["account"]
    assert root.findtext("account/name") == name + "x"
    assert root.findtext("account/user/username") == name + "x"


def test_success_response_json_and_xml(cloud: Cloud) -> None:
    account = new_account(cloud, "env")
    first = add_user(cloud, account, f"s1-{uuid.uuid4().hex[:8]}")
    second = add_user(cloud, account, f"s2-{uuid.uuid4().hex[:8]}")
    resp = admin_call(cloud, "deleteUser", id=first["id"])
    assert resp.status_code == 200, resp.text
    body = resp.json()["deleteuserresponse"]
    assert body["success"] is True
    assert set(body) <= {"success", "displaytext"}
    resp = admin_call(cloud, "deleteUser", fmt=None, id=second["id"])
    root = xml_root(resp, "deleteuserresponse")
    assert root.findtext("success") == "true"
    assert users_named(cloud, first["username"]) == 0


def test_async_submit_and_job_result_json(cloud: Cloud) -> None:
    account = new_account(cloud, "env")
    user = add_user(cloud, account, f"as-{uuid.uuid4().hex[:8]}")
    resp = admin_call(cloud, "disableUser", id=user["id"])
    assert resp.status_code == 200, resp.text
    body = resp.json()["disableuserresponse"]
    assert list(body) == ["jobid"]
    job = cloud.wait_job(body["jobid"])
    assert set(job) >= JOB_FIELDS
    assert job["jobid"] == body["jobid"]
    assert job["jobstatus"] == 1 and job["jobresultcode"] == 0
    assert job["jobresulttype"] == "object"
    assert job["jobinstancetype"] == "User" and job["jobinstanceid"] == user["id"]
    assert job["jobresult"]["user"]["id"] == user["id"]
    assert job["jobresult"]["user"]["state"] == "disabled"
    assert job["cmd"].startswith("org.apache.cloudstack.api.command")
    admin = cloud.call("listUsers", username="admin")["user"][0]
    assert job["userid"] == admin["id"] and job["accountid"] == admin["accountid"]
    for stamp in (job["created"], job["completed"]):
        assert len(stamp) == 24 and stamp[19] in "+-"
    assert job["created"] <= job["completed"]


def test_async_submit_and_job_result_xml(cloud: Cloud) -> None:
    account = new_account(cloud, "env")
    resp = admin_call(cloud, "deleteAccount", fmt=None, id=account["id"])
    assert resp.status_code == 200, resp.text
    root = xml_root(resp, "deleteaccountresponse")
    assert [c.tag for c in root] == ["jobid"]
    jobid = root.findtext("jobid")
    assert jobid is not None
    cloud.wait_job(jobid)
    resp = admin_call(cloud, "queryAsyncJobResult", fmt=None, jobid=jobid)
    root = xml_root(resp, "queryasyncjobresultresponse")
    assert root.findtext("jobstatus") == "1"
    assert root.findtext("jobresultcode") == "0"
    assert root.findtext("jobresult/success") == "true"
    assert root.findtext("jobinstanceid") == account["id"]
    assert cloud.call("listAccounts", id=account["id"], listall="true") == {}


def test_cs_polls_an_async_job_to_its_result(cloud: Cloud) -> None:
    account = new_account(cloud, "env")
    user = add_user(cloud, account, f"poll-{uuid.uuid4().hex[:8]}")
    client = CloudStack(
        endpoint=cloud.endpoint,
        key=cloud.admin.api_key,
        secret=cloud.admin.secret,
        poll_interval=0.1,
    )
    result = client.disableUser(id=user["id"], fetch_result=True)
    assert result["user"]["id"] == user["id"] and result["user"]["state"] == "disabled"


def test_async_create_submit_has_id_and_jobid(cloud: Cloud) -> None:
    """Async-create commands answer {id, jobid}; probe whichever the registry declares."""
    from cumulo.api.cloudstack import commands  # noqa: F401
    from cumulo.api.cloudstack.registry import REGISTRY, Kind

    creators = sorted(s.name for s in REGISTRY.values() if s.kind is Kind.ASYNC_CREATE)
    recipe = _async_create_recipe(cloud, creators)
    if recipe is None:
        pytest.skip(f"no async-create command with a known recipe yet (declared: {creators})")
    command, params = recipe
    resp = admin_call(cloud, command, **params)
    assert resp.status_code == 200, resp.text
    body = resp.json()[f"{command.lower()}response"]
    assert list(body) == ["id", "jobid"]
    uuid.UUID(body["id"])
    job = cloud.wait_job(body["jobid"])
    assert job["jobinstanceid"] == body["id"]


def _async_create_recipe(cloud: Cloud, creators: list[str]) -> tuple[str, dict[str, Any]] | None:
    """Parameters for async-create commands that need nothing but a fresh name."""
    simple: dict[str, dict[str, Any]] = {
        "createAffinityGroup": {"name": f"ag-{uuid.uuid4().hex[:8]}", "type": "host anti-affinity"},
    }
    if "addGuestOs" in creators:
        category = cloud.call("listOsCategories")["oscategory"][0]["id"]
        simple["addGuestOs"] = {
            "oscategoryid": category,
            "osdisplayname": f"Envelope OS {uuid.uuid4().hex[:8]}",
        }
    for name in creators:
        if name in simple:
            return name, simple[name]
    return None


# --- job failure ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def slow_jobs_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    """A cloud whose jobs wait a second before running, so the world can change meanwhile."""
    data_dir: Path = tmp_path_factory.mktemp("slow-jobs")
    c = make_cloud(data_dir, CUMULO_JOBS__INJECT_DELAY_SECONDS="1.0")
    c.start()
    try:
        yield c
    finally:
        c.stop()


def test_failed_job_result_shape(slow_jobs_cloud: Cloud) -> None:
    cloud = slow_jobs_cloud
    account = new_account(cloud, "env")
    user = add_user(cloud, account, f"gone-{uuid.uuid4().hex[:8]}")
    jobid = cloud.call("disableUser", id=user["id"])["jobid"]
    # The user is deleted before the job runs: the job fails with a parameter error.
    cloud.call("deleteUser", id=user["id"])
    job = cloud.wait_job(jobid, timeout=60)
    assert job["jobstatus"] == 2
    assert job["jobresultcode"] == 431
    assert job["jobresulttype"] == "object"
    assert job["jobresult"]["errorcode"] == 431
    assert job["jobresult"]["errortext"]


# --- errors ------------------------------------------------------------------------------------


def test_error_json_shape_and_status(cloud: Cloud) -> None:
    resp = admin_call(cloud, "listUsers", id="not-a-uuid")
    assert resp.status_code == 431
    assert resp.headers["content-type"] == JSON_TYPE
    body = resp.json()["listusersresponse"]
    assert list(body) == ["uuidList", "errorcode", "cserrorcode", "errortext"]
    assert body["uuidList"] == []
    assert body["errorcode"] == 431 and body["cserrorcode"] == 4350
    assert "Invalid parameter id value=not-a-uuid" in body["errortext"]


def test_error_xml_shape_and_status(cloud: Cloud) -> None:
    resp = admin_call(cloud, "listUsers", fmt=None, id="not-a-uuid")
    assert resp.status_code == 431
    root = xml_root(resp, "listusersresponse")
    assert [c.tag for c in root] == ["errorcode", "cserrorcode", "errortext"]
    assert root.findtext("errorcode") == "431"
    assert root.findtext("cserrorcode") == "4350"


@pytest.mark.parametrize("fmt", ["json", None])
def test_unknown_command_is_432_errorresponse(cloud: Cloud, fmt: str | None) -> None:
    resp = admin_call(cloud, "listFlyingSaucers", fmt=fmt)
    assert resp.status_code == 432
    if fmt == "json":
        body = resp.json()["errorresponse"]
        assert body["errorcode"] == 432 and body["errortext"] == NOT_AVAILABLE
    else:
        root = xml_root(resp, "errorresponse")
        assert root.findtext("errorcode") == "432"
        assert root.findtext("errortext") == NOT_AVAILABLE


def test_missing_command_is_400(cloud: Cloud) -> None:
    resp = raw(cloud, {"response": "json", "apiKey": cloud.admin.api_key})
    assert resp.status_code == 400
    body = resp.json()["errorresponse"]
    assert body["errorcode"] == 400 and body["errortext"]
    resp = httpx.get(cloud.endpoint, timeout=30)
    assert resp.status_code == 400
    assert xml_root(resp, "errorresponse").findtext("errorcode") == "400"


def test_unsigned_call_is_401_under_the_command_name(cloud: Cloud) -> None:
    resp = raw(cloud, {"command": "listUsers", "response": "json"}, sign=False)
    assert resp.status_code == 401
    assert resp.json()["listusersresponse"]["errorcode"] == 401


def test_cs_reads_an_error_body(cloud: Cloud) -> None:
    from cs import CloudStackApiException

    client = CloudStack(endpoint=cloud.endpoint, key=cloud.admin.api_key, secret=cloud.admin.secret)
    with pytest.raises(CloudStackApiException) as err:
        client.listUsers(id="nope")
    assert err.value.response.status_code == 431
    assert err.value.error["errorcode"] == 431


# --- names are case-insensitive ------------------------------------------------------------------


@pytest.mark.parametrize(
    "names",
    [
        ("COMMAND", "Response", "apiKey"),
        ("command", "RESPONSE", "apikey"),
        ("Command", "response", "APIKEY"),
    ],
)
def test_parameter_names_are_case_insensitive(cloud: Cloud, names: tuple[str, str, str]) -> None:
    cmd, fmt, key = names
    pairs = {cmd: "listUsers", fmt: "json", key: cloud.admin.api_key, "UserName": "admin"}
    resp = raw(cloud, pairs)
    assert resp.status_code == 200, resp.text
    body = resp.json()["listusersresponse"]
    assert body["count"] == 1 and body["user"][0]["username"] == "admin"


def test_post_form_is_accepted(cloud: Cloud) -> None:
    pairs = {
        "command": "listUsers",
        "response": "json",
        "apiKey": cloud.admin.api_key,
        "username": "admin",
    }
    resp = raw(cloud, pairs, method="POST")
    assert resp.status_code == 200, resp.text
    assert resp.json()["listusersresponse"]["count"] == 1


# --- paging ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def five_users(cloud: Cloud) -> dict[str, Any]:
    account = new_account(cloud, "env")
    for i in range(4):
        add_user(cloud, account, f"{account['name']}-u{i}")
    return account


def _page(cloud: Cloud, account: dict[str, Any], **paging: Any) -> dict[str, Any]:
    return cloud.call("listUsers", account=account["name"], domainid=account["domainid"], **paging)


def test_count_is_the_total_not_the_page(cloud: Cloud, five_users: dict[str, Any]) -> None:
    first = _page(cloud, five_users, page=1, pagesize=2)
    second = _page(cloud, five_users, page=2, pagesize=2)
    third = _page(cloud, five_users, page=3, pagesize=2)
    assert [first["count"], second["count"], third["count"]] == [5, 5, 5]
    assert [len(first["user"]), len(second["user"]), len(third["user"])] == [2, 2, 1]
    names = [u["username"] for p in (first, second, third) for u in p["user"]]
    assert len(set(names)) == 5
    # Past the end: no objects, but the total is still told (CS ApiResponseSerializer).
    assert _page(cloud, five_users, page=4, pagesize=2) == {"count": 5}


def test_unlimited_page_size(cloud: Cloud, five_users: dict[str, Any]) -> None:
    everything = _page(cloud, five_users, pagesize=-1)
    assert everything["count"] == 5 and len(everything["user"]) == 5


def test_cs_fetch_list_pages_through(cloud: Cloud, five_users: dict[str, Any]) -> None:
    client = CloudStack(endpoint=cloud.endpoint, key=cloud.admin.api_key, secret=cloud.admin.secret)
    users = client.listUsers(
        fetch_list=True, account=five_users["name"], domainid=five_users["domainid"]
    )
    assert len(users) == 5


@pytest.mark.parametrize(
    ("paging", "text"),
    [
        ({"pagesize": -1, "page": 1}, "Can't specify page parameter when pagesize is -1"),
        ({"pagesize": 501}, "Page size can't exceed max allowed page size value: 500"),
        ({"pagesize": 0}, "Page size must be a positive number"),
        ({"page": 0, "pagesize": 5}, "Invalid parameter page value=0"),
        ({"page": "two", "pagesize": 5}, "Invalid parameter page value=two"),
    ],
)
def test_bad_paging_is_431(cloud: Cloud, paging: dict[str, Any], text: str) -> None:
    resp = admin_call(cloud, "listUsers", **paging)
    assert resp.status_code == 431, resp.text
    assert text in resp.json()["listusersresponse"]["errortext"]


def test_page_size_at_the_limit_is_fine(cloud: Cloud) -> None:
    resp = admin_call(cloud, "listUsers", pagesize=500, page=1)
    assert resp.status_code == 200


# --- malformed parameters write nothing ----------------------------------------------------------


def _create_account(cloud: Cloud, **override: Any) -> tuple[httpx.Response, str]:
    name = f"bad-{uuid.uuid4().hex[:10]}"
    params: dict[str, Any] = {
        "username": name,
        "password": "pw-123456",
        "firstname": "B",
        "lastname": "A",
        "email": "bad@example.com",
        "accounttype": 0,
        **override,
    }
    params = {k: v for k, v in params.items() if v is not None}
    return admin_call(cloud, "createAccount", **params), str(params.get("username", name))


@pytest.mark.parametrize(
    ("override", "text"),
    [
        (
            {"email": None},
            "Unable to execute API command createaccount due to missing parameter email",
        ),
        ({"email": ""}, "due to missing parameter email"),
        ({"domainid": "not-a-uuid"}, "Invalid parameter domainid value=not-a-uuid"),
        ({"roleid": "1234"}, "Invalid parameter roleid value=1234"),
        ({"accounttype": "admin"}, "Invalid parameter accounttype value=admin"),
        ({"accounttype": "1.0"}, "Invalid parameter accounttype value=1.0"),
        ({"firstname": "x" * 256}, "due to length greater than 255"),
    ],
)
def test_malformed_parameters_are_431_and_write_nothing(
    cloud: Cloud, override: dict[str, Any], text: str
) -> None:
    resp, username = _create_account(cloud, **override)
    assert resp.status_code == 431, resp.text
    body = resp.json()["createaccountresponse"]
    assert body["errorcode"] == 431 and body["cserrorcode"] == 4350
    assert text in body["errortext"]
    assert users_named(cloud, username) == 0
    assert cloud.call("listAccounts", name=username, listall="true") == {}


def test_bad_boolean_is_431(cloud: Cloud) -> None:
    resp = admin_call(cloud, "listUsers", listall="maybe")
    assert resp.status_code == 431
    assert "Invalid parameter listall value=maybe" in resp.json()["listusersresponse"]["errortext"]


def test_well_formed_request_after_the_failures_still_works(cloud: Cloud) -> None:
    """The control for the malformed cases: the same call, well formed, writes the row."""
    resp, username = _create_account(cloud)
    assert resp.status_code == 200, resp.text
    assert users_named(cloud, username) == 1


def test_json_body_is_compact_utf8(cloud: Cloud) -> None:
    resp = admin_call(cloud, "listUsers", username="admin")
    assert json.loads(resp.content.decode("utf-8")) == resp.json()
