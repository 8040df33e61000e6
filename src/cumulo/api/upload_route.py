"""The browser upload endpoint: ``POST /upload/v1/<transfer>`` (getUploadParamsFor*'s postURL).

As CloudStack's browser upload, the client sends the file as ``multipart/form-data`` (a
``file`` field) with the headers X-signature, X-metadata and X-expires; a raw
``application/octet-stream`` body is taken as well (curl --data-binary). The body is parsed
as it streams in (never held whole in memory) and goes straight into the image store's staged
writer (services.storage.browser_uploads). Cross-origin requests are answered only for this
server's own origin, where the dashboard is served from.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, PlainTextResponse, Response

from cumulo.services.runtime import Runtime
from cumulo.services.storage import browser_uploads, volume_extract
from cumulo.services.storage.browser_uploads import Refused

PATH = browser_uploads.PREFIX + "{uuid}"
EXTRACT_PATH = volume_extract.PREFIX + "{uuid}"
MAX_HEADER_BYTES = 16384
_NAME = re.compile(rb'(?i)content-disposition:[^\r\n]*;\s*name="?([^";\r\n]+)"?')


class MultipartFile:
    """Streams the ``file`` part of a multipart/form-data body; other parts are skipped."""

    def __init__(self, boundary: bytes) -> None:
        self.delim = b"\r\n--" + boundary
        self.buf = b"\r\n"  # the first boundary has no CRLF before it
        self.state = "preamble"
        self.in_file = False
        self.found = False

    def feed(self, data: bytes) -> list[bytes]:
        self.buf += data
        out: list[bytes] = []
        while True:
            if self.state in ("preamble", "body"):
                idx = self.buf.find(self.delim)
                if idx < 0:
                    keep = len(self.delim) - 1
                    if len(self.buf) > keep:
                        if self.state == "body" and self.in_file:
                            out.append(self.buf[: len(self.buf) - keep])
                        self.buf = self.buf[len(self.buf) - keep :]
                    return out
                if self.state == "body" and self.in_file:
                    out.append(self.buf[:idx])
                    self.found = True
                self.buf = self.buf[idx + len(self.delim) :]
                self.state = "after"
            elif self.state == "after":
                if len(self.buf) < 2:
                    return out
                if self.buf[:2] == b"--":
                    self.state, self.buf = "end", b""
                    return out
                if self.buf[:2] != b"\r\n":
                    raise Refused(400, "malformed multipart body")
                self.buf, self.state = self.buf[2:], "headers"
            elif self.state == "headers":
                idx = self.buf.find(b"\r\n\r\n")
                if idx < 0:
                    if len(self.buf) > MAX_HEADER_BYTES:
                        raise Refused(400, "multipart part headers too long")
                    return out
                match = _NAME.search(self.buf[:idx])
                self.in_file = bool(match and match.group(1) == b"file") and not self.found
                self.buf, self.state = self.buf[idx + 4 :], "body"
            else:  # end: the epilogue is ignored
                self.buf = b""
                return out

    def finish(self) -> None:
        if self.state != "end":
            raise Refused(400, "the upload body is truncated")
        if not self.found:
            raise Refused(400, "the form has no 'file' field")


def _boundary(content_type: str) -> bytes | None:
    if not content_type.lower().startswith("multipart/form-data"):
        return None
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if match is None:
        raise Refused(400, "multipart body without a boundary")
    return match.group(1).encode()


async def _multipart(request: Request, boundary: bytes) -> AsyncIterator[bytes]:
    parser = MultipartFile(boundary)
    async for chunk in request.stream():
        for piece in parser.feed(chunk):
            yield piece
    parser.finish()


async def _raw(request: Request, declared: int | None) -> AsyncIterator[bytes]:
    got = 0
    async for chunk in request.stream():
        got += len(chunk)
        yield chunk
    if declared is not None and got != declared:
        raise Refused(400, "the upload body is truncated")


def _declared(request: Request) -> int | None:
    value = request.headers.get("content-length", "")
    return int(value) if value.isdigit() else None


class UploadRoute:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def _cors(self, request: Request, response: Response) -> Response:
        origin = request.headers.get("origin")
        own = f"{request.url.scheme}://{request.url.netloc}"
        if origin and origin == own:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = (
                "Content-Type, X-signature, X-metadata, X-expires"
            )
            response.headers["Vary"] = "Origin"
        return response

    async def handle(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return self._cors(request, Response(status_code=204))
        return self._cors(request, await self._post(request))

    async def _post(self, request: Request) -> Response:
        h, q = request.headers, request.query_params
        sig = h.get("x-signature") or q.get("signature", "")
        metadata = h.get("x-metadata") or q.get("metadata", "")
        expires = h.get("x-expires") or q.get("expires", "")
        declared = _declared(request)
        try:
            boundary = _boundary(h.get("content-type", ""))
            begun = await asyncio.to_thread(
                browser_uploads.begin,
                self.rt, request.path_params["uuid"], metadata, expires, sig, declared,
            )  # fmt: skip
            body = _raw(request, declared) if boundary is None else _multipart(request, boundary)
            await browser_uploads.receive(self.rt, begun, body)
        except Refused as err:
            return PlainTextResponse(err.text + "\n", status_code=err.status)
        except ClientDisconnect:
            return PlainTextResponse("the client went away\n", status_code=400)
        return PlainTextResponse("upload complete\n", status_code=200)


class ExtractLinks:
    """``GET /extract/v1/<extract>?expires=&signature=``: extractVolume's download link."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def handle(self, request: Request) -> Response:
        q = request.query_params
        path = await asyncio.to_thread(
            volume_extract.local_file,
            self.rt, request.path_params["uuid"], q.get("expires", ""), q.get("signature", ""),
        )  # fmt: skip
        if path is None:
            return PlainTextResponse("link invalid or expired\n", status_code=403)
        return FileResponse(path, media_type="application/octet-stream", filename=path.name)
