"""S3's XML: a tiny builder for responses and a namespace-blind reader for request bodies."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Union

from cumulo.common.time import aware
from cumulo.objectstore.errors import S3Error

NS = "http://s3.amazonaws.com/doc/2006-03-01/"
XSI = "http://www.w3.org/2001/XMLSchema-instance"

Child = Union["Node", None]


class Node:
    """An element: ``Node("Key", "a.txt")`` or ``Node("Contents", [Node(...), ...])``."""

    __slots__ = ("attrs", "children", "tag", "text")

    def __init__(
        self, tag: str, content: str | Iterable[Child] | None = None, **attrs: str
    ) -> None:
        self.tag, self.attrs = tag, attrs
        self.text: str | None = content if isinstance(content, str) else None
        self.children = (
            [c for c in content if c is not None]
            if content is not None and not isinstance(content, str)
            else []
        )

    def element(self) -> ET.Element:
        el = ET.Element(self.tag, self.attrs)
        el.text = self.text
        for child in self.children:
            el.append(child.element())
        return el


def render(root: Node, namespace: bool = True) -> bytes:
    el = root.element()
    if namespace:
        el.set("xmlns", NS)
    body: bytes = ET.tostring(el, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body


def timestamp(value: datetime) -> str:
    """ISO 8601 with milliseconds and Z, as S3 writes LastModified and CreationDate."""
    utc = aware(value).astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse(body: bytes) -> ET.Element:
    """Parse a request body; namespaces are dropped so ``find("Key")`` works either way."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError as err:
        raise S3Error("MalformedXML") from err
    for el in root.iter():
        if "}" in el.tag:
            el.tag = el.tag.split("}", 1)[1]
    return root


def text(el: ET.Element, path: str, default: str | None = None) -> str | None:
    found = el.find(path)
    if found is None:
        return default
    return found.text or ""


def values(el: ET.Element, path: str) -> list[Any]:
    return el.findall(path)
