"""Turning request parameters into a handler's typed arguments, or a 431 that says why."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from cumulo.api.cloudstack.registry import CommandSpec, ParamSpec
from cumulo.services.errors import ParamError

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# Java's Long.parseLong: an optional sign and ASCII digits. Python's int() would also take
# spaces, underscores ("1_0") and non-ASCII digits, which no CloudStack server accepts.
_INTEGER = re.compile(r"[+-]?[0-9]+")
_MAP_KEY = re.compile(r"^([a-z0-9_]+)\[(\d+)\]\.(.+)$", re.IGNORECASE)
_DATE_FORMATS = ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d")
INT_RANGE = {"integer": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}


def _bad(spec: ParamSpec, value: str, why: str) -> ParamError:
    return ParamError(f"Invalid parameter {spec.name} value={value} due to {why}")


def _uuid(spec: ParamSpec, value: str) -> str:
    if not _UUID.fullmatch(value):
        raise _bad(
            spec,
            value,
            "incorrect long value format, or entity does not exist or due to "
            "incorrect parameter annotation for the field in api cmd class",
        )
    return value.lower()


def _scalar(spec: ParamSpec, kind: str, value: str) -> Any:
    if kind == "string":
        if len(value) > spec.meta.length:
            raise _bad(spec, value[:40], f"length greater than {spec.meta.length}")
        if spec.meta.choices and value not in spec.meta.choices:
            allowed = ", ".join(spec.meta.choices)
            raise ParamError(f"Invalid value {value} for parameter {spec.name}: one of {allowed}")
        return value
    if kind == "uuid":
        return _uuid(spec, value)
    if kind == "boolean":
        if value.lower() not in ("true", "false"):
            raise _bad(spec, value, "not being a boolean (true or false)")
        return value.lower() == "true"
    if kind in INT_RANGE:
        if not _INTEGER.fullmatch(value):
            raise _bad(spec, value, "incorrect number format")
        number = int(value)
        low, high = INT_RANGE[kind]
        low = spec.meta.min if spec.meta.min is not None else low
        high = spec.meta.max if spec.meta.max is not None else high
        if not low <= number <= high:
            raise _bad(spec, value, f"being outside the range {low}..{high}")
        return number
    if kind == "date":
        for fmt in _DATE_FORMATS:
            try:
                parsed = datetime.strptime(value, fmt)
            except ValueError:
                continue
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        raise _bad(spec, value, "incorrect date format (yyyy-MM-dd or yyyy-MM-dd'T'HH:mm:ssZ)")
    raise AssertionError(kind)


def _maps(spec: ParamSpec, raw: dict[str, str]) -> list[dict[str, str]] | None:
    """``tags[0].key=a&tags[0].value=b`` → ``[{"key": "a", "value": "b"}]``, in index order."""
    groups: dict[int, dict[str, str]] = {}
    for key, value in raw.items():
        m = _MAP_KEY.match(key)
        if m and m.group(1).lower() == spec.name:
            groups.setdefault(int(m.group(2)), {})[m.group(3)] = value
    return [groups[i] for i in sorted(groups)] or None


def parse(spec: CommandSpec, raw: dict[str, str]) -> dict[str, Any]:
    """Parse ``raw`` (names as sent) into keyword arguments named as the handler's parameters."""
    lowered = {k.lower(): v for k, v in raw.items()}
    out: dict[str, Any] = {}
    for p in spec.params.values():
        if p.type == "map":
            value: Any = _maps(p, raw)
        elif p.name in lowered and lowered[p.name] != "":
            text = lowered[p.name]
            if p.type == "list":
                value = [_scalar(p, p.item_type or "string", v.strip()) for v in text.split(",")]
            else:
                value = _scalar(p, p.type, text)
        else:
            value = None
        if value is None:
            if p.required:
                raise ParamError(
                    f"Unable to execute API command {spec.name.lower()} due to missing "
                    f"parameter {p.name}"
                )
            value = p.default
        out[p.pyname] = value
    return out
