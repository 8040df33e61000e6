"""The ``aws-chunked`` body encoding, decoded incrementally.

Wire format (S3 API reference, "Signature Calculations for the Authorization Header:
Transferring Payload in Multiple Chunks" and "... including trailing headers"):

    <hex size>[;chunk-signature=<64 hex>]\\r\\n<data>\\r\\n   ... repeated
    0[;chunk-signature=<64 hex>]\\r\\n
    [<name>:<value>\\r\\n ...  [x-amz-trailer-signature:<64 hex>\\r\\n]]
    \\r\\n

The decoder is a push parser: ``feed`` takes whatever piece the transport delivered and
returns the payload bytes it contained, so a chunk is never buffered whole (chunk data is
passed through as it arrives and its signature checked when its last byte has been seen;
the object only becomes visible after the whole stream verified). Only chunk-size lines
and the trailer section are buffered, both with small limits.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from cumulo.objectstore.auth.errors import ChecksumError
from cumulo.objectstore.auth.sigv4 import EMPTY_SHA256, ChunkSigner

MAX_SIZE_LINE = 4096
MAX_TRAILER = 16384
_SIZE = re.compile(rb"[0-9A-Fa-f]{1,15}")
_SIGNATURE = re.compile(r"[0-9a-f]{64}")
TRAILER_SIGNATURE = "x-amz-trailer-signature"
_OWS = " \t"  # HTTP optional whitespace; CR, VT and the like are not stripped (RFC 9110 5.6.3)

_SIZE_LINE, _DATA, _DATA_END, _TRAILER, _DONE = range(5)


def _framing(message: str) -> ChecksumError:
    return ChecksumError("InvalidChunkSizeError", message)


def _mismatch(message: str) -> ChecksumError:
    return ChecksumError("SignatureDoesNotMatch", message)


class ChunkDecoder:
    """Decodes one aws-chunked body; verifies chunk and trailer signatures when signed."""

    def __init__(self, signer: ChunkSigner | None, *, with_trailer: bool) -> None:
        self._signer = signer
        self._with_trailer = with_trailer
        self._state = _SIZE_LINE
        self._line = bytearray()
        self._remaining = 0
        self._chunk_hash = hashlib.sha256()
        self._chunk_signature = ""
        self._trailer_bytes = 0
        self._trailer_signature: str | None = None
        self.trailers: dict[str, str] = {}
        self.decoded = 0

    def feed(self, piece: bytes) -> list[bytes]:
        """Consume one piece of the wire body; return the payload bytes it carried."""
        out: list[bytes] = []
        pos, end = 0, len(piece)
        while pos < end:
            if self._state == _DATA:
                pos = self._take_data(piece, pos, out)
            elif self._state == _DONE:
                raise ChecksumError("IncompleteBody", "Data found after the final chunk.")
            else:
                pos = self._take_line(piece, pos)
        return out

    def finish(self) -> dict[str, str]:
        """The body ended: it must have ended exactly after the final chunk (and trailers)."""
        if self._state == _TRAILER and not self._line:
            # A few clients omit the CRLF that closes an empty (or the) trailer section.
            self._end_trailers()
        if self._state != _DONE:
            raise ChecksumError("IncompleteBody", "The aws-chunked body ended early.")
        return self.trailers

    # -- data -------------------------------------------------------------------------

    def _take_data(self, piece: bytes, pos: int, out: list[bytes]) -> int:
        n = min(self._remaining, len(piece) - pos)
        data = piece if (pos == 0 and n == len(piece)) else piece[pos : pos + n]
        if self._signer is not None:
            self._chunk_hash.update(data)
        out.append(data)
        self.decoded += n
        self._remaining -= n
        if self._remaining == 0:
            self._verify_chunk(self._chunk_hash.hexdigest())
            self._state = _DATA_END
        return pos + n

    # -- lines (size lines, the CRLF after data, trailers) ----------------------------

    def _take_line(self, piece: bytes, pos: int) -> int:
        if self._state == _DATA_END:
            need = 2 - len(self._line)
            self._line += piece[pos : pos + need]
            if len(self._line) == 2:
                if self._line != b"\r\n":
                    raise _framing("Chunk data is longer than its declared size.")
                self._line.clear()
                self._state = _SIZE_LINE
            return min(pos + need, len(piece))
        newline = piece.find(b"\n", pos)
        stop = len(piece) if newline < 0 else newline + 1
        self._line += piece[pos:stop]
        self._check_line_size()
        if newline >= 0:
            line = bytes(self._line)
            self._line.clear()
            if not line.endswith(b"\r\n"):
                raise _framing("Chunk lines must end with CRLF.")
            self._on_line(line[:-2])
        return stop

    def _check_line_size(self) -> None:
        if self._state == _SIZE_LINE and len(self._line) > MAX_SIZE_LINE:
            raise _framing("Chunk size line too long.")
        if self._state == _TRAILER and self._trailer_bytes + len(self._line) > MAX_TRAILER:
            raise ChecksumError("MalformedTrailerError", "Trailing headers too large.")

    def _on_line(self, line: bytes) -> None:
        if self._state == _SIZE_LINE:
            self._on_size_line(line)
        else:
            self._on_trailer_line(line)

    def _on_size_line(self, line: bytes) -> None:
        size_text, _, extension = line.partition(b";")
        if not _SIZE.fullmatch(size_text):
            raise _framing("Invalid chunk size.")
        self._chunk_signature = self._chunk_signature_of(extension)
        size = int(size_text, 16)
        if size == 0:
            self._verify_chunk(EMPTY_SHA256)
            self._state = _TRAILER
            return
        self._remaining = size
        self._chunk_hash = hashlib.sha256()
        self._state = _DATA

    def _chunk_signature_of(self, extension: bytes) -> str:
        if self._signer is None:
            return ""
        name, _, value = extension.decode("latin-1").partition("=")
        if name != "chunk-signature" or not _SIGNATURE.fullmatch(value):
            raise _mismatch("Missing or malformed chunk-signature.")
        return value

    def _verify_chunk(self, data_sha256: str) -> None:
        if self._signer is None:
            return
        expected = self._signer.next_chunk(data_sha256)
        if not hmac.compare_digest(expected.encode(), self._chunk_signature.encode()):
            raise _mismatch("The chunk signature does not match.")

    def _on_trailer_line(self, line: bytes) -> None:
        if not line:
            self._end_trailers()
            return
        self._trailer_bytes += len(line) + 2
        name, colon, value = line.decode("latin-1").partition(":")
        if not colon or not name.strip():
            raise ChecksumError("MalformedTrailerError", "Malformed trailing header.")
        name, value = name.strip(_OWS).lower(), value.strip(_OWS)
        if name == TRAILER_SIGNATURE:
            self._trailer_signature = value
        else:
            self.trailers[name] = value

    def _end_trailers(self) -> None:
        if self.trailers and not self._with_trailer:
            raise ChecksumError("MalformedTrailerError", "Trailing headers were not declared.")
        if self._signer is not None and self._with_trailer:
            self._verify_trailer()
        self._state = _DONE

    def _verify_trailer(self) -> None:
        assert self._signer is not None
        canonical = "".join(f"{k}:{v}\n" for k, v in sorted(self.trailers.items()))
        expected = self._signer.trailer(canonical.encode("utf-8"))
        provided = (self._trailer_signature or "").encode()
        if not hmac.compare_digest(expected.encode(), provided):
            raise _mismatch("The trailer signature does not match.")
