"""Every id a client sees is a UUID: internal integer keys never leak through any list."""

from __future__ import annotations

import re
from typing import Any

from tests.support.cloud import Cloud

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# Fields whose names end in "id" but are not entity ids in CloudStack's API.
NOT_IDS = {"usagetypeid", "alerttypeid", "cserrorcode", "ostypeid", "rootdeviceid", "deviceid"}


def _id_fields(value: Any, path: str = "") -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    if isinstance(value, dict):
        for key, inner in value.items():
            here = f"{path}.{key}"
            if key.endswith("id") and key not in NOT_IDS and not isinstance(inner, dict | list):
                found.append((here, inner))
            found += _id_fields(inner, here)
    elif isinstance(value, list):
        for item in value:
            found += _id_fields(item, path)
    return found


def test_every_list_shows_only_uuid_ids(cloud: Cloud) -> None:
    # Make sure there is something in each list: a job, an event, a second account.
    created = cloud.call(
        "createAccount",
        accounttype=0,
        username=f"idcheck{cloud.port}",
        password="pw-1",
        firstname="I",
        lastname="D",
        email="i@d.example",
    )["account"]
    job = cloud.call("deleteAccount", id=created["id"])["jobid"]
    assert cloud.wait_job(job)["jobstatus"] == 1
    apis = cloud.call("listApis")["api"]
    lists = [
        a["name"]
        for a in apis
        if a["name"].startswith("list") and not any(p["required"] for p in a["params"])
    ]
    assert {"listUsers", "listAccounts", "listDomains", "listEvents", "listAsyncJobs"} <= set(lists)
    checked = 0
    for name in lists:
        resp = cloud.signed(name, listall="true")
        assert resp.status_code == 200, (name, resp.text)
        for path, value in _id_fields(resp.json()):
            assert isinstance(value, str) and UUID.match(value), f"{name}{path} = {value!r}"
            checked += 1
    assert checked > 20  # the walk really saw ids
