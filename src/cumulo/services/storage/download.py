"""Streaming a template or ISO from a URL into an image store, checksummed on the way.

The body is never held in memory: each chunk is hashed and written through the store's
staged writer. The checksum is compared before ``commit``, so a mismatch, a size over the
limit or a broken connection leaves nothing at the final path. Failures are raised as
``DownloadFailed`` with the reason a user sees in the template's ``status``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from cumulo.services.storage.imagestore import StoreWriter

CHUNK = 1 << 20
# Bare hex digests name their algorithm by length, as CloudStack's DigestHelper guesses.
_BY_LENGTH = {32: "md5", 40: "sha1", 64: "sha256", 128: "sha512"}
_BY_PREFIX = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-512": "sha512"}
_PREFIXED = re.compile(r"^\{([A-Za-z0-9-]+)\}([0-9A-Fa-f]+)$")


class DownloadFailed(Exception):
    """The download did not produce a verified image; ``str()`` is the reason to show."""


@dataclass(frozen=True)
class Checksum:
    algorithm: str  # a hashlib name
    hexdigest: str

    @classmethod
    def parse(cls, text: str) -> Checksum:
        """'{SHA-256}ab12…', '{MD5}…' or a bare hex digest; ValueError if neither."""
        text = text.strip()
        match = _PREFIXED.match(text)
        if match:
            algorithm = _BY_PREFIX.get(match.group(1).upper())
            if algorithm is None:
                raise ValueError(f"unsupported checksum algorithm {match.group(1)}")
            digest = match.group(2)
        else:
            if not re.fullmatch(r"[0-9A-Fa-f]+", text):
                raise ValueError(f"checksum is not a hex digest: {text}")
            algorithm, digest = _BY_LENGTH.get(len(text), ""), text
            if not algorithm:
                raise ValueError(f"a {len(text)}-digit checksum names no known algorithm")
        if len(digest) != hashlib.new(algorithm).digest_size * 2:
            raise ValueError(f"checksum has the wrong length for {algorithm}")
        return cls(algorithm, digest.lower())


def check_url(url: str) -> None:
    """Only http(s) URLs are fetched; file:// and the rest would read the server's own disk."""
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"unsupported URL {url}: only http and https URLs can be registered")


def _content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length")
    return int(value) if value and value.isdigit() else None


def fetch(
    url: str,
    writer: StoreWriter,
    *,
    checksum: Checksum | None,
    max_bytes: int,
    timeout: float = 60.0,
    transport: Any = None,
    progress: Callable[[int, int | None], None] | None = None,
) -> int:
    """Stream ``url`` into ``writer`` and commit it; returns the size in bytes.

    On any failure the writer is aborted and DownloadFailed says why.
    """
    hasher = hashlib.new(checksum.algorithm) if checksum else None
    size = 0
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=True, transport=transport) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise DownloadFailed(
                    f"failed to download {url}: HTTP {response.status_code} "
                    f"{response.reason_phrase}"
                )
            announced = _content_length(response)
            if announced is not None and announced > max_bytes:
                raise DownloadFailed(f"{url} is {announced} bytes, over the limit {max_bytes}")
            for chunk in response.iter_bytes(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise DownloadFailed(f"{url} is over the size limit of {max_bytes} bytes")
                if hasher is not None:
                    hasher.update(chunk)
                writer.write(chunk)
                if progress is not None:
                    progress(size, announced)
        if checksum is not None and hasher is not None:
            actual = hasher.hexdigest()
            if actual != checksum.hexdigest:
                raise DownloadFailed(
                    f"checksum mismatch: expected {checksum.algorithm} {checksum.hexdigest}, "
                    f"got {actual}"
                )
        writer.commit()
    except DownloadFailed:
        writer.abort()
        raise
    except httpx.HTTPError as err:
        writer.abort()
        raise DownloadFailed(f"failed to download {url}: {err or type(err).__name__}") from err
    except BaseException:
        writer.abort()
        raise
    return size


def copy_local(
    source: Path, writer: StoreWriter, *, checksum: Checksum | None, max_bytes: int
) -> int:
    """Copy a file this server holds (another zone's copy) into ``writer``, as ``fetch`` does
    for a URL: streamed, size-limited, checksummed, committed or aborted."""
    hasher = hashlib.new(checksum.algorithm) if checksum else None
    size = 0
    try:
        with source.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise DownloadFailed(f"{source.name} is over the size limit of {max_bytes}")
                if hasher is not None:
                    hasher.update(chunk)
                writer.write(chunk)
        if checksum is not None and hasher is not None and hasher.hexdigest() != checksum.hexdigest:
            raise DownloadFailed("checksum mismatch while copying between zones")
        writer.commit()
    except OSError as err:
        writer.abort()
        raise DownloadFailed(f"failed to copy {source.name}: {err}") from err
    except BaseException:
        writer.abort()
        raise
    return size
