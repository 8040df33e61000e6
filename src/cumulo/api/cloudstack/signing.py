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
from datetime import datetime
from urllib.parse import quote

from cumulo.common.time import utcnow

_JAVA_SAFE = "-_.*"


def java_encode(value: str) -> str:
    # Python's quote never escapes "~"; Java's URLEncoder does.
    return quote(value, safe=_JAVA_SAFE).replace("~", "%7E")


def _encoders() -> tuple[tuple[str, ...], ...]:
    # Characters each client family leaves unescaped beyond Java's set.
    return ((), ("~",), ("~", "[", "]"))


def _encode(value: str, keep: tuple[str, ...]) -> str:
    text = java_encode(value)
    for ch in keep:
        text = text.replace(quote(ch, safe=""), ch)
    return text


def canonical_strings(params: dict[str, str]) -> list[str]:
    """Every string a known client may have signed, the server's own rule first."""
    names = [n for n in params if n.lower() != "signature"]
    orders = (sorted(names), sorted(names, key=str.lower))
    seen: list[str] = []
    for keep in _encoders():
        for order in orders:
            text = "&".join(f"{n}={_encode(params[n], keep)}" for n in order).lower()
            if text not in seen:
                seen.append(text)
    return seen


def sign(secret: str, text: str) -> str:
    mac = hmac.new(secret.encode(), text.encode(), hashlib.sha1).digest()
    return base64.b64encode(mac).decode()


def verify(secret: str, params: dict[str, str], signature: str) -> bool:
    """True when any accepted canonical form matches; every candidate is compared in full."""
    # A "+" sent unencoded in a query string arrives as a space.
    wanted = signature.replace(" ", "+").encode()
    ok = False
    for text in canonical_strings(params):
        ok |= hmac.compare_digest(sign(secret, text).encode(), wanted)
    return ok


def sign_params(secret: str, params: dict[str, str]) -> str:
    """The server-rule signature of ``params`` (used by the CLI, tests and benchmarks)."""
    return sign(secret, canonical_strings(params)[0])


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
