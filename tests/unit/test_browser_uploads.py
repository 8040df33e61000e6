"""The browser upload's body parsing and bounds, without a server: the multipart parser
finds the ``file`` part however the body is cut into chunks, and the sink refuses a body
that grows past its bound, a checksum mismatch and a format that is not the declared one."""

from __future__ import annotations

import hashlib

import pytest

from cumulo.api.upload_route import MultipartFile
from cumulo.db.models_infra import ImageStore
from cumulo.services.storage.browser_uploads import Begun, Kind, Refused, _Sink, sniff

BOUNDARY = b"----cumulo7f3a"
DATA = b"QFI\xfb" + bytes(range(256)) * 40 + b"\r\n--not-the-boundary\r\n" + b"\r\n" * 3


def body(file_data: bytes = DATA, *, close: bool = True) -> bytes:
    parts = (
        b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="name"\r\n\r\nx\r\n'
        b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="file"; '
        b'filename="d.qcow2"\r\nContent-Type: application/octet-stream\r\n\r\n'
        + file_data
        + b"\r\n--"
        + BOUNDARY
    )
    return parts + (b"--\r\n" if close else b"")


@pytest.mark.parametrize("chunk", [1, 2, 7, 64, 4096, 1 << 20])
def test_multipart_file_part_whatever_the_chunks(chunk: int) -> None:
    parser = MultipartFile(BOUNDARY)
    data = body()
    got = b"".join(
        piece for i in range(0, len(data), chunk) for piece in parser.feed(data[i : i + chunk])
    )
    parser.finish()
    assert got == DATA


def test_multipart_cut_short_or_without_a_file_is_refused() -> None:
    parser = MultipartFile(BOUNDARY)
    parser.feed(body(close=False)[:-40])
    with pytest.raises(Refused) as cut:
        parser.finish()
    assert cut.value.status == 400 and "truncated" in cut.value.text
    parser = MultipartFile(BOUNDARY)
    parser.feed(b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="x"\r\n\r\n1\r\n')
    parser.feed(b"--" + BOUNDARY + b"--\r\n")
    with pytest.raises(Refused) as missing:
        parser.finish()
    assert "no 'file' field" in missing.value.text


class _Writer:
    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> None:
        self.data += data

    def commit(self) -> None:
        pass

    def abort(self) -> None:
        self.data = b""


def sink(fmt: str = "QCOW2", max_bytes: int = 1 << 20, checksum: str | None = None) -> _Sink:
    begun = Begun(1, Kind.VOLUME, "u", ImageStore(), "p", fmt, checksum, max_bytes)
    return _Sink(_Writer(), begun)


def test_sink_bounds_checksums_and_sniffs() -> None:
    small = sink(max_bytes=100)
    small.write(b"QFI\xfb" + b"\0" * 96)
    with pytest.raises(Refused) as big:
        small.write(b"\0")
    assert big.value.status == 413
    good = sink(checksum=hashlib.sha256(DATA).hexdigest())
    good.write(DATA)
    good.verify()
    bad = sink(checksum="0" * 64)
    bad.write(DATA)
    with pytest.raises(Refused, match="checksum"):
        bad.verify()
    raw = sink()
    raw.write(b"\0" * 512)
    with pytest.raises(Refused, match="RAW, not the declared format QCOW2"):
        raw.verify()
    with pytest.raises(Refused, match="empty"):
        sink().verify()
    iso = bytearray(0x9000)
    iso[0x8001:0x8006] = b"CD001"
    assert (sniff(bytes(iso)), sniff(DATA), sniff(b"\0" * 10)) == ("ISO", "QCOW2", "RAW")
