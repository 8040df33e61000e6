"""Cross-origin access for the web dashboard's object browser, and for nothing else.

The dashboard (served by the management server, another origin) signs S3 requests in the
browser with the user's own keys and sends them straight here, so uploads and downloads never
pass through the management server. Browsers only allow that when the S3 service answers
CORS for the dashboard's origin on every bucket, whatever the bucket's own CORS rules say.
This wrapper does exactly that for the configured origins (by default the management
server's own address); requests from any other origin fall through to the service, where
bucket CORS configurations apply as S3 defines them. It grants no access: every request is
still authenticated by its signature.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

METHODS = "GET, PUT, POST, DELETE, HEAD"
EXPOSED = (
    "ETag, Content-Length, Content-Type, Last-Modified, x-amz-request-id, x-amz-version-id, "
    "x-amz-delete-marker, x-amz-meta-*"
)
MAX_AGE = "600"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


class ConsoleCors:
    def __init__(self, app: App, origins: list[str]) -> None:
        self.app = app
        self.origins = frozenset(o.rstrip("/") for o in origins if o)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        origin = _header(scope, b"origin") if scope.get("type") == "http" else None
        if origin is None or origin not in self.origins:
            await self.app(scope, receive, send)
            return
        wanted = _header(scope, b"access-control-request-method")
        if scope.get("method") == "OPTIONS" and wanted is not None:
            await self._preflight(scope, origin, send)
            return
        await self.app(scope, receive, _with_cors(send, origin))

    async def _preflight(self, scope: Scope, origin: str, send: Send) -> None:
        asked = _header(scope, b"access-control-request-headers") or ""
        headers = [
            (b"access-control-allow-origin", origin.encode()),
            (b"access-control-allow-methods", METHODS.encode()),
            (b"access-control-allow-headers", asked.encode("latin-1")),
            (b"access-control-max-age", MAX_AGE.encode()),
            (b"vary", b"Origin"),
            (b"content-length", b"0"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


def _with_cors(send: Send, origin: str) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            kept = [
                (k, v)
                for k, v in message.get("headers", [])
                if not bytes(k).lower().startswith(b"access-control-")
            ]
            kept += [
                (b"access-control-allow-origin", origin.encode()),
                (b"access-control-expose-headers", EXPOSED.encode()),
                (b"vary", b"Origin"),
            ]
            message = {**message, "headers": kept}
        await send(message)

    return wrapped
