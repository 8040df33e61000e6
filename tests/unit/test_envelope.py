"""The wire shapes of reference §2, rendered without a server: JSON and XML, field by field."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

from cumulo import CLOUDSTACK_VERSION
from cumulo.api.cloudstack import envelope
from cumulo.api.cloudstack.results import Flat, Listing, Submit, Success
from cumulo.services.errors import ParamError, PermissionDenied

USER = {"id": "u-1", "username": "alice", "email": None, "isdefault": False}


def _json(name: str, body: dict[str, Any]) -> Any:
    raw, ctype = envelope.render(name, body, "json")
    assert ctype == "application/json; charset=UTF-8"
    return json.loads(raw)


def _xml(name: str, body: dict[str, Any]) -> ET.Element:
    raw, ctype = envelope.render(name, body, "xml")
    assert ctype == "text/xml; charset=UTF-8"
    assert raw.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(raw)
    assert root.tag == name
    assert root.attrib == {"cloud-stack-version": CLOUDSTACK_VERSION}
    return root


def test_non_empty_list() -> None:
    body = envelope.body_for(Listing([USER, {**USER, "id": "u-2"}], 7), "user")
    assert _json("listusersresponse", body) == {
        "listusersresponse": {
            "count": 7,
            "user": [
                {"id": "u-1", "username": "alice", "isdefault": False},
                {"id": "u-2", "username": "alice", "isdefault": False},
            ],
        }
    }
    root = _xml("listusersresponse", body)
    assert [c.tag for c in root] == ["count", "user", "user"]
    assert root.findtext("count") == "7"
    first = root.findall("user")[0]
    assert [c.tag for c in first] == ["id", "username", "email", "isdefault"]
    assert first.findtext("isdefault") == "false"
    assert first.find("email") is not None and first.findtext("email") == ""


def test_empty_list_has_neither_count_nor_array() -> None:
    body = envelope.body_for(Listing([], 0), "user")
    assert body == {}
    assert _json("listusersresponse", body) == {"listusersresponse": {}}
    assert len(_xml("listusersresponse", body)) == 0


def test_page_past_the_end_still_says_the_total() -> None:
    """ApiResponseSerializer writes count whenever it is non-zero, even with no objects."""
    body = envelope.body_for(Listing([], 3), "user")
    assert _json("listusersresponse", body) == {"listusersresponse": {"count": 3}}
    root = _xml("listusersresponse", body)
    assert [c.tag for c in root] == ["count"]


def test_single_object() -> None:
    body = envelope.body_for({"id": "z-1", "name": "zone1", "tags": []}, "zone")
    assert _json("createzoneresponse", body) == {
        "createzoneresponse": {"zone": {"id": "z-1", "name": "zone1", "tags": []}}
    }
    root = _xml("createzoneresponse", body)
    assert [c.tag for c in root] == ["zone"]
    assert root.findtext("zone/name") == "zone1"


def test_success() -> None:
    body = envelope.body_for(Success("done"), None)
    assert _json("deletezoneresponse", body) == {
        "deletezoneresponse": {"success": True, "displaytext": "done"}
    }
    root = _xml("deletezoneresponse", body)
    assert root.findtext("success") == "true"
    assert root.findtext("displaytext") == "done"
    assert envelope.body_for(Success(), None) == {"success": True}


def test_flat_fields_sit_directly_under_the_response() -> None:
    body = envelope.body_for(Flat({"username": "admin", "timeout": 1800}), None)
    assert _json("loginresponse", body) == {"loginresponse": {"username": "admin", "timeout": 1800}}
    assert _xml("loginresponse", body).findtext("timeout") == "1800"


def test_async_submit_shapes() -> None:
    plain = envelope.submit_body(Submit(params={}), "j-1")
    assert _json("stopvirtualmachineresponse", plain) == {
        "stopvirtualmachineresponse": {"jobid": "j-1"}
    }
    created = envelope.submit_body(Submit(created_id="vm-1"), "j-2")
    assert _json("deployvirtualmachineresponse", created) == {
        "deployvirtualmachineresponse": {"id": "vm-1", "jobid": "j-2"}
    }
    root = _xml("deployvirtualmachineresponse", created)
    assert [(c.tag, c.text) for c in root] == [("id", "vm-1"), ("jobid", "j-2")]


def test_error_shape_json_and_xml() -> None:
    body = envelope.error_body(ParamError("bad value"))
    assert _json("listusersresponse", body) == {
        "listusersresponse": {
            "uuidList": [],
            "errorcode": 431,
            "cserrorcode": 4350,
            "errortext": "bad value",
        }
    }
    root = _xml("listusersresponse", body)
    assert [c.tag for c in root] == ["errorcode", "cserrorcode", "errortext"]
    assert root.findtext("errorcode") == "431"
    assert root.findtext("cserrorcode") == "4350"


def test_error_uuid_list_shape() -> None:
    """Each entry is an ExceptionProxyObject: {"uuid": …} in JSON, <uuid> inside one element."""
    body = envelope.error_body(PermissionDenied("no", uuids=["a-1", "b-2"]))
    data = _json("deletevolumeresponse", body)["deletevolumeresponse"]
    assert data["uuidList"] == [{"uuid": "a-1"}, {"uuid": "b-2"}]
    assert data["errorcode"] == 531 and data["cserrorcode"] == 4365
    root = _xml("deletevolumeresponse", body)
    lists = root.findall("uuidList")
    assert len(lists) == 1
    assert [u.text for u in lists[0].findall("uuid")] == ["a-1", "b-2"]


def test_json_drops_none_but_keeps_empty_and_false() -> None:
    body = {"user": {"a": None, "b": "", "c": False, "d": 0, "e": [], "f": {"g": None}}}
    assert _json("x", body) == {"x": {"user": {"b": "", "c": False, "d": 0, "e": [], "f": {}}}}


def test_xml_escapes_markup_and_drops_forbidden_characters() -> None:
    body = {"user": {"name": "a<b>&c\x01d\x1f", "note": 'q"uote'}}
    root = _xml("x", body)
    assert root.findtext("user/name") == "a<b>&cd"
    assert root.findtext("user/note") == 'q"uote'


def test_nested_lists_and_job_result_in_xml() -> None:
    body = {
        "jobstatus": 1,
        "jobresult": {"user": {"id": "u-1", "nic": [{"id": "n1"}, {"id": "n2"}]}},
    }
    root = _xml("queryasyncjobresultresponse", body)
    assert root.findtext("jobstatus") == "1"
    assert [n.findtext("id") for n in root.findall("jobresult/user/nic")] == ["n1", "n2"]


def test_unicode_survives_both_formats() -> None:
    body = {"user": {"name": "Zoë 中"}}
    assert _json("x", body)["x"]["user"]["name"] == "Zoë 中"
    assert _xml("x", body).findtext("user/name") == "Zoë 中"
