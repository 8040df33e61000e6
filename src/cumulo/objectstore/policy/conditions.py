"""The ``Condition`` block of a bucket policy (IAM JSON policy reference, "Condition operators").

A block is ``{"<Operator>": {"<key>": value-or-list}}``. Operators may carry the
``ForAnyValue:``/``ForAllValues:`` set qualifiers and the ``IfExists`` suffix. Semantics
kept from IAM: several operators, or several keys under one operator, must all hold (AND);
several values for one key are alternatives (OR); a negated operator (``StringNotEquals``,
``NotIpAddress`` ...) holds when none of its values match, and also when the key is absent
from the request; ``...IfExists`` holds when the key is absent.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from cumulo.objectstore.policy.errors import malformed_policy

Matcher = Callable[[str, str], bool]


def wildcard(pattern: str, *, ignore_case: bool = False) -> re.Pattern[str]:
    """``*`` matches any run of characters and ``?`` one character; nothing else is special."""
    return _compiled(pattern, ignore_case)


@lru_cache(maxsize=4096)
def _compiled(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.compile("".join(parts), flags)


def _like(value: str, pattern: str) -> bool:
    return wildcard(pattern).fullmatch(value) is not None


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _date(text: str) -> datetime | None:
    number = _number(text)
    if number is not None:
        return datetime.fromtimestamp(number, UTC)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _numeric(compare: Callable[[float, float], bool]) -> Matcher:
    def match(value: str, policy: str) -> bool:
        a, b = _number(value), _number(policy)
        return a is not None and b is not None and compare(a, b)

    return match


def _dated(compare: Callable[[datetime, datetime], bool]) -> Matcher:
    def match(value: str, policy: str) -> bool:
        a, b = _date(value), _date(policy)
        return a is not None and b is not None and compare(a, b)

    return match


def _in_network(value: str, policy: str) -> bool:
    try:
        return ipaddress.ip_address(value.strip()) in ipaddress.ip_network(policy, strict=False)
    except ValueError:
        return False


# operator → (matcher, negated, how policy values are validated)
_OPERATORS: dict[str, tuple[Matcher, bool, str]] = {
    "StringEquals": (lambda v, p: v == p, False, "string"),
    "StringNotEquals": (lambda v, p: v == p, True, "string"),
    "StringEqualsIgnoreCase": (lambda v, p: v.casefold() == p.casefold(), False, "string"),
    "StringNotEqualsIgnoreCase": (lambda v, p: v.casefold() == p.casefold(), True, "string"),
    "StringLike": (_like, False, "string"),
    "StringNotLike": (_like, True, "string"),
    "NumericEquals": (_numeric(lambda a, b: a == b), False, "number"),
    "NumericNotEquals": (_numeric(lambda a, b: a == b), True, "number"),
    "NumericLessThan": (_numeric(lambda a, b: a < b), False, "number"),
    "NumericLessThanEquals": (_numeric(lambda a, b: a <= b), False, "number"),
    "NumericGreaterThan": (_numeric(lambda a, b: a > b), False, "number"),
    "NumericGreaterThanEquals": (_numeric(lambda a, b: a >= b), False, "number"),
    "DateEquals": (_dated(lambda a, b: a == b), False, "date"),
    "DateNotEquals": (_dated(lambda a, b: a == b), True, "date"),
    "DateLessThan": (_dated(lambda a, b: a < b), False, "date"),
    "DateLessThanEquals": (_dated(lambda a, b: a <= b), False, "date"),
    "DateGreaterThan": (_dated(lambda a, b: a > b), False, "date"),
    "DateGreaterThanEquals": (_dated(lambda a, b: a >= b), False, "date"),
    "Bool": (lambda v, p: v.lower() == p.lower(), False, "bool"),
    "BinaryEquals": (lambda v, p: v == p, False, "string"),
    "IpAddress": (_in_network, False, "ip"),
    "NotIpAddress": (_in_network, True, "ip"),
    "ArnEquals": (lambda v, p: v == p, False, "string"),
    "ArnNotEquals": (lambda v, p: v == p, True, "string"),
    "ArnLike": (_like, False, "string"),
    "ArnNotLike": (_like, True, "string"),
    "Null": (lambda v, p: True, False, "bool"),
}
_QUALIFIERS = ("ForAnyValue", "ForAllValues")
_KEY = re.compile(r"(aws|s3):[A-Za-z0-9_./+\-]+(/.+)?", re.IGNORECASE)
_VARIABLE = re.compile(r"\$\{([^}]*)\}")


@dataclass(frozen=True)
class Condition:
    """One ``operator → key → values`` test; ``key`` is lower-case (keys ignore case)."""

    operator: str
    qualifier: str | None
    if_exists: bool
    key: str
    values: tuple[str, ...]


def parse_conditions(block: Any) -> tuple[Condition, ...]:
    if not isinstance(block, dict):
        raise malformed_policy("Condition must be an object")
    conditions: list[Condition] = []
    for name, tests in block.items():
        qualifier, operator, if_exists = _split_operator(name)
        if not isinstance(tests, dict) or not tests:
            raise malformed_policy(f"Invalid Condition block for {name}")
        for key, raw in tests.items():
            if not isinstance(key, str) or not _KEY.fullmatch(key):
                raise malformed_policy(f"Policy has an invalid condition key: {key}")
            values = _values(raw, name)
            _validate(operator, values)
            conditions.append(Condition(operator, qualifier, if_exists, key.lower(), values))
    return tuple(conditions)


def _split_operator(name: Any) -> tuple[str | None, str, bool]:
    if not isinstance(name, str):
        raise malformed_policy("Invalid Condition operator")
    qualifier = None
    base = name
    prefix, colon, rest = name.partition(":")
    if colon:
        if prefix not in _QUALIFIERS:
            raise malformed_policy(f"Invalid Condition operator: {name}")
        qualifier, base = prefix, rest
    if_exists = base.endswith("IfExists") and base != "IfExists"
    base = base.removesuffix("IfExists") if if_exists else base
    if base not in _OPERATORS or (if_exists and base == "Null"):
        raise malformed_policy(f"Invalid Condition operator: {name}")
    return qualifier, base, if_exists


def _values(raw: Any, operator: str) -> tuple[str, ...]:
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise malformed_policy(f"Empty value list in Condition {operator}")
    out = []
    for item in items:
        if isinstance(item, bool):
            out.append("true" if item else "false")
        elif isinstance(item, str | int | float):
            out.append(str(item))
        else:
            raise malformed_policy(f"Invalid value in Condition {operator}")
    return tuple(out)


def _validate(operator: str, values: tuple[str, ...]) -> None:
    kind = _OPERATORS[operator][2]
    for value in values:
        if kind == "number" and _number(value) is None:
            raise malformed_policy(f"Invalid numeric value {value!r} in {operator}")
        if kind == "date" and _date(value) is None:
            raise malformed_policy(f"Invalid date value {value!r} in {operator}")
        if kind == "bool" and value.lower() not in ("true", "false"):
            raise malformed_policy(f"Invalid boolean value {value!r} in {operator}")
        if kind == "ip":
            try:
                ipaddress.ip_network(value, strict=False)
            except ValueError as err:
                raise malformed_policy(f"Invalid IP address {value!r} in {operator}") from err


# -- evaluation ----------------------------------------------------------------------------


def substitute(text: str, context: Mapping[str, Sequence[str]]) -> str | None:
    """Replace ``${key}`` policy variables (and the ``${*}``, ``${?}``, ``${$}`` escapes);
    None when a variable is absent, so the value cannot match anything."""
    missing = False

    def value(match: re.Match[str]) -> str:
        nonlocal missing
        name = match.group(1)
        if name in ("*", "?", "$"):
            return name
        found = context.get(name.lower())
        if not found:
            missing = True
            return ""
        return found[0]

    result = _VARIABLE.sub(value, text)
    return None if missing else result


def holds(condition: Condition, context: Mapping[str, Sequence[str]], *, variables: bool) -> bool:
    """Whether one condition holds for a request context (keys lower-case)."""
    present = list(context.get(condition.key) or ())
    if condition.operator == "Null":
        return (not present) == (condition.values[0].lower() == "true")
    match, negated, kind = _OPERATORS[condition.operator]
    values = _policy_values(condition.values, context, variables and kind == "string")

    def one(value: str) -> bool:
        found = any(match(value, p) for p in values)
        return not found if negated else found

    if condition.qualifier == "ForAllValues":
        return all(one(v) for v in present)
    if not present:
        if condition.if_exists:
            return True
        return negated and condition.qualifier is None
    if condition.qualifier == "ForAnyValue":
        return any(one(v) for v in present)
    if negated:
        return all(one(v) for v in present)
    return any(one(v) for v in present)


def _policy_values(
    values: tuple[str, ...], context: Mapping[str, Sequence[str]], variables: bool
) -> list[str]:
    if not variables:
        return list(values)
    return [v for v in (substitute(x, context) for x in values) if v is not None]
