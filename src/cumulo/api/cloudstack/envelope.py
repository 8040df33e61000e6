"""The CloudStack wire format: JSON and XML envelopes, and the one place errors become bodies.

Shapes follow reference/cloudstack-api.md §2: ``<command>response`` wraps everything; lists
carry ``count`` and the object array, and an empty list is an empty object; JSON omits empty
(None) fields while XML keeps them as empty elements.
"""

from __future__ import annotations

import json
import re
from typing import Any
from xml.sax.saxutils import escape

from cumulo import CLOUDSTACK_VERSION
from cumulo.api.cloudstack.results import Flat, Listing, Submit, Success
from cumulo.services.errors import CloudError

JSON_TYPE = "application/json; charset=UTF-8"
XML_TYPE = "text/xml; charset=UTF-8"
# Characters XML 1.0 cannot carry even escaped; one stray control character in a user-supplied
# name would otherwise make every XML listing that shows it unparsable.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def body_for(result: Any, object_name: str | None) -> dict[str, Any]:
    """The content under ``<command>response`` for a handler's result."""
    if isinstance(result, Listing):
        return list_body(result, object_name or "item")
    if isinstance(result, Success):
        body: dict[str, Any] = {"success": result.success}
        if result.displaytext:
            body["displaytext"] = result.displaytext
        return body
    if isinstance(result, Flat):
        return result.body
    if isinstance(result, dict):
        return {object_name: result} if object_name else result
    raise TypeError(f"handler returned {type(result).__name__}")


def list_body(listing: Listing, object_name: str) -> dict[str, Any]:
    """``count`` only when non-zero and the array only when non-empty (CS ApiResponseSerializer).

    So an empty result is ``{}``, and a page past the end still tells the total: ``{"count": N}``
    (``cs``'s ``fetch_list`` stops on it).
    """
    body: dict[str, Any] = {}
    if listing.count:
        body["count"] = listing.count
    if listing.items:
        body[object_name] = listing.items
    return body


def submit_body(submit: Submit, job_id: str) -> dict[str, Any]:
    if submit.created_id:
        return {"id": submit.created_id, "jobid": job_id}
    return {"jobid": job_id}


def error_body(err: CloudError) -> dict[str, Any]:
    """CS ExceptionResponse; each uuidList entry is an ExceptionProxyObject ``{"uuid": …}``."""
    return {
        "uuidList": [{"uuid": u} for u in err.uuids],
        "errorcode": err.errorcode,
        "cserrorcode": err.cserrorcode,
        "errortext": err.text,
    }


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def to_json(response_name: str, body: dict[str, Any]) -> bytes:
    return json.dumps({response_name: _drop_none(body)}, separators=(",", ":")).encode()


def _xml_scalar(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return escape(_NOT_XML.sub("", str(value)))


def _xml_items(name: str, value: Any, out: list[str]) -> None:
    if isinstance(value, list):
        for item in value:
            _xml_items(name, item, out)
        return
    if isinstance(value, dict):
        out.append(f"<{name}>")
        for key, inner in value.items():
            _xml_items(key, inner, out)
        out.append(f"</{name}>")
        return
    text = _xml_scalar(value)
    out.append(f"<{name}>{text}</{name}>" if text else f"<{name}/>")


def _xml_uuid_list(entries: list[dict[str, str]], out: list[str]) -> None:
    """CS writes the ids of an error inside ONE element: ``<uuidList><uuid>…</uuid></uuidList>``,
    and leaves the element out when there are none."""
    if not entries:
        return
    out.append("<uuidList>")
    for entry in entries:
        _xml_items("uuid", entry["uuid"], out)
    out.append("</uuidList>")


def to_xml(response_name: str, body: dict[str, Any]) -> bytes:
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<{response_name} cloud-stack-version="{CLOUDSTACK_VERSION}">',
    ]
    for key, value in body.items():
        if key == "uuidList":
            _xml_uuid_list(value, out)
            continue
        _xml_items(key, value, out)
    out.append(f"</{response_name}>")
    return "".join(out).encode()


def render(response_name: str, body: dict[str, Any], fmt: str) -> tuple[bytes, str]:
    if fmt == "json":
        return to_json(response_name, body), JSON_TYPE
    return to_xml(response_name, body), XML_TYPE
