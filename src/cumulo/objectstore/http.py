"""The raw-ASGI request and response of the S3 service.

Raw ASGI rather than a framework request object: the body must stream through the payload
checker chunk by chunk, the path must stay exactly as the client signed it, and a client that
disconnects mid-upload must surface as an exception so the blob writer discards its file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

from cumulo.objectstore.errors import S3Error

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class ClientDisconnected(Exception):
    """The client went away before the whole body arrived."""


@dataclass
class S3Request:
    method: str
    raw_path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    host: str
    bucket: str | None
    key: str | None
    receive: Receive
    # True when the bucket came from the Host header (SigV2 signs it into the path).
    virtual_host: bool = False
    body_started: bool = False
    bytes_received: int = 0
    client_ip: str = ""
    scheme: str = "http"

    @property
    def body_withheld(self) -> bool:
        """The client waits for 100-continue and we never asked for the body: the
        connection cannot be reused, since the server would read the next request as the
        body it is still owed."""
        return "100-continue" in self.headers.get("expect", "").lower() and not self.body_started

    def arg(self, name: str) -> str | None:
        for k, v in self.query:
            if k == name:
                return v
        return None

    def has(self, name: str) -> bool:
        return any(k == name for k, _ in self.query)

    async def raw_body(self) -> AsyncIterator[bytes]:
        """The body as received, chunk by chunk; raises ClientDisconnected if cut short."""
        self.body_started = True
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected()
            chunk = message.get("body", b"")
            if chunk:
                self.bytes_received += len(chunk)
                yield chunk
            if not message.get("more_body", False):
                return


def parse_request(scope: Scope, receive: Receive, domains: list[str]) -> S3Request:
    headers: dict[str, str] = {}
    for name, value in scope["headers"]:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]},{text}" if key in headers else text
    raw = scope.get("raw_path") or scope["path"].encode()
    raw_path = raw.decode("latin-1").split("?", 1)[0]
    query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    host = headers.get("host", "")
    bucket, key, virtual = _address(raw_path, host, domains)
    client = scope.get("client") or ("", 0)
    return S3Request(
        virtual_host=virtual,
        client_ip=str(client[0]),
        scheme=str(scope.get("scheme", "http")),
        method=scope["method"],
        raw_path=raw_path,
        query=query,
        headers=headers,
        host=host,
        bucket=bucket,
        key=key,
        receive=receive,
    )


def _address(raw_path: str, host: str, domains: list[str]) -> tuple[str | None, str | None, bool]:
    """Virtual-host style when the Host is ``<bucket>.<domain>``, else path style."""
    hostname = host.rsplit(":", 1)[0].lower() if not host.startswith("[") else host
    path = _decode_path(raw_path)
    for domain in domains:
        suffix = "." + domain.lower()
        if hostname.endswith(suffix) and len(hostname) > len(suffix):
            return hostname[: -len(suffix)], (path[1:] or None), True
    parts = path[1:].split("/", 1)
    if not parts[0]:
        return None, None, False
    return parts[0], (parts[1] if len(parts) > 1 and parts[1] else None), False


def _decode_path(raw_path: str) -> str:
    try:
        return unquote(raw_path, errors="strict")
    except UnicodeDecodeError as err:
        raise S3Error("InvalidURI", "Couldn't parse the specified URI.") from err


@dataclass
class Response:
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    stream: AsyncIterator[bytes] | None = None
    length: int | None = None
    head: bool = False

    async def send(self, send: Send) -> None:
        headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in self.headers]
        length = self.length if self.stream is not None else len(self.body)
        if length is not None and self.status not in (204, 304):
            headers.append((b"content-length", str(length).encode()))
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        if self.head or self.stream is None:
            await send({"type": "http.response.body", "body": b"" if self.head else self.body})
            return
        async for chunk in self.stream:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


def xml_response(
    body: bytes, status: int = 200, headers: list[tuple[str, str]] | None = None
) -> Response:
    return Response(status, [("Content-Type", "application/xml"), *(headers or [])], body)
