"""CloudStack request signatures (reference/cloudstack-api.md §1.1).

The server's rule: sort the parameter names as received, Java-URL-encode the values (only
``A-Za-z0-9.-*_`` stay; space is ``%20``), join, lower-case the whole string, HmacSHA1 with
the secret key, Base64. Real clients deviate: ``cs``, marvin and cmk leave ``~`` unescaped,
libcloud also ``[`` and ``]``, and libcloud and marvin sort by lower-cased name. We try the
server rule first and then each known variant, comparing every candidate in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterator
from datetime import datetime
from urllib.parse import quote

from cumulo.common.time import utcnow

_JAVA_SAFE = "-_.*"


def java_encode(value: str) -> str:
    # Python's quote never escapes "~"; Java's URLEncoder does.
    return quote(value, safe=_JAVA_SAFE).replace("~", "%7E")


# Characters each client family leaves unescaped beyond Java's set.
_VARIANTS: tuple[tuple[str, ...], ...] = ((), ("~",), ("~", "[", "]"))
# How java_encode writes each of them (the "~" by hand, see java_encode).
_ESCAPED = {"~": "%7E", "[": "%5B", "]": "%5D"}
# \Z, not $: "$" also matches before a final newline, and "abc\n" must be encoded.
_PLAIN = re.compile(r"[A-Za-z0-9._*-]*\Z")


def _encode(value: str, keep: tuple[str, ...]) -> str:
    if _PLAIN.match(value):
        return value  # the common case: nothing to escape under any rule
    text = java_encode(value)
    for ch in keep:
        # Not quote(ch): Python's quote never escapes "~", so that would replace "~" by "~".
        text = text.replace(_ESCAPED[ch], ch)
    return text


def _canonical(params: dict[str, str], order: list[str], keep: tuple[str, ...]) -> str:
    return "&".join(f"{n}={_encode(params[n], keep)}" for n in order).lower()


def canonical_strings(params: dict[str, str]) -> Iterator[str]:
    """Every string a known client may have signed, the server's own rule first, lazily."""
    names = [n for n in params if n.lower() != "signature"]
    orders = (sorted(names), sorted(names, key=str.lower))
    seen: set[str] = set()
    for keep in _VARIANTS:
        for order in orders:
            text = _canonical(params, order, keep)
            if text not in seen:
                seen.add(text)
                yield text


def sign(secret: str, text: str) -> str:
    mac = hmac.new(secret.encode(), text.encode(), hashlib.sha1).digest()
    return base64.b64encode(mac).decode()


def verify(secret: str, params: dict[str, str], signature: str) -> bool:
    """True when any accepted canonical form matches; every candidate is compared in full."""
    # A "+" sent unencoded in a query string arrives as a space.
    # Each comparison is constant-time; which variant matched reveals nothing secret.
    wanted = signature.replace(" ", "+").encode()
    return any(
        hmac.compare_digest(sign(secret, text).encode(), wanted)
        for text in canonical_strings(params)
    )


def sign_params(secret: str, params: dict[str, str]) -> str:
    """The server-rule signature of ``params`` (used by the CLI, tests and benchmarks)."""
    return sign(secret, next(canonical_strings(params)))


def parse_expires(value: str) -> datetime | None:
    for fmt in ("%Y-%m-%dT%H:%M:%S%z",):
        try:
            return datetime.strptime(value, fmt)
        except ValueError:
            continue
    return None


def expired(value: str | None, now: datetime | None = None) -> bool:
    """signatureVersion 3 requires ``expires``; a missing, unparsable or past one fails."""
    if not value:
        return True
    when = parse_expires(value)
    return when is None or when <= (now or utcnow())
