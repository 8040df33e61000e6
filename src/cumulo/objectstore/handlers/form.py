"""A streaming reader of multipart/form-data, for browser POST uploads.

The fields before the file are small and read whole (bounded); the file part streams, so an
upload of any size passes through a fixed buffer. Fields after the file are ignored, as S3
ignores them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from cumulo.objectstore.errors import S3Error

MAX_FIELD = 64 * 1024
MAX_HEADER = 16 * 1024


def boundary_of(content_type: str) -> bytes:
    kind, _, params = content_type.partition(";")
    if kind.strip().lower() != "multipart/form-data":
        raise S3Error(
            "PreconditionFailed", "Bucket POST must be of the enclosure-type multipart/form-data"
        )
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.lower() == "boundary" and value:
            return value.strip('"').encode("latin-1")
    raise S3Error(
        "MalformedPOSTRequest",
        "The body of your POST request is not well-formed multipart/form-data.",
    )


def _malformed() -> S3Error:
    return S3Error(
        "MalformedPOSTRequest",
        "The body of your POST request is not well-formed multipart/form-data.",
    )


class FormReader:
    def __init__(self, body: AsyncIterator[bytes], boundary: bytes) -> None:
        self._body = body
        # A leading CRLF makes the first boundary look like every other one.
        self._buf = bytearray(b"\r\n")
        self._delim = b"\r\n--" + boundary
        self._done = False

    async def _fill(self) -> bool:
        chunk = await anext(self._body, None)
        if chunk is None:
            return False
        self._buf += chunk
        return True

    async def _until(self, marker: bytes, limit: int) -> bytes:
        while True:
            idx = self._buf.find(marker)
            if idx >= 0:
                out = bytes(self._buf[:idx])
                del self._buf[: idx + len(marker)]
                return out
            if len(self._buf) > limit or not await self._fill():
                raise _malformed()

    async def start(self) -> None:
        preamble = await self._until(self._delim, MAX_FIELD)
        del preamble

    async def next_part(self) -> dict[str, str] | None:
        """The next part's headers (lower-case names) plus its ``name`` and ``filename``."""
        while len(self._buf) < 2:
            if not await self._fill():
                raise _malformed()
        if self._buf[:2] == b"--":
            self._done = True
            return None
        raw = await self._until(b"\r\n\r\n", MAX_HEADER)
        headers: dict[str, str] = {}
        for line in raw.decode("utf-8", "replace").split("\r\n"):
            name, _, value = line.partition(":")
            if name.strip():
                headers[name.strip().lower()] = value.strip()
        for item in headers.get("content-disposition", "").split(";")[1:]:
            key, _, value = item.strip().partition("=")
            headers[key.lower()] = value.strip().strip('"')
        return headers

    async def value(self) -> bytes:
        return await self._until(self._delim, MAX_FIELD)

    async def stream(self) -> AsyncIterator[bytes]:
        """The current part's bytes, up to the next boundary."""
        keep = len(self._delim) - 1
        while True:
            idx = self._buf.find(self._delim)
            if idx >= 0:
                if idx:
                    yield bytes(self._buf[:idx])
                del self._buf[: idx + len(self._delim)]
                return
            if len(self._buf) > keep:
                out = bytes(self._buf[:-keep])
                del self._buf[:-keep]
                yield out
            if not await self._fill():
                raise S3Error("IncompleteBody")

    async def drain(self) -> None:
        while await self._fill():
            self._buf.clear()
