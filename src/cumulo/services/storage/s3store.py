"""An image store backend on S3 (Cumulo's own S3 service or any SigV4 endpoint).

Writes are multipart uploads so nothing is visible before ``commit`` (CompleteMultipartUpload)
and ``abort`` leaves no upload behind. Agents get presigned URLs scoped to one object.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urlsplit
from xml.etree import ElementTree

import httpx

from cumulo.common import sigv4

PART_SIZE = 8 * 1024 * 1024


class S3Error(Exception):
    """An S3 request answered with an unexpected status."""


def _strip_ns(xml: bytes) -> ElementTree.Element:
    root = ElementTree.fromstring(xml)
    for el in root.iter():
        el.tag = re.sub(r"^\{.*\}", "", el.tag)
    return root


class S3Store:
    """implements imagestore.ImageStoreBackend over path-style S3 requests."""

    def __init__(
        self,
        endpoint: str,
        bucket: str,
        access_key: str,
        secret_key: str,
        *,
        region: str = "us-east-1",
        timeout_s: float = 60.0,
        verify_tls: bool = True,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.bucket = bucket
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region
        self.host = urlsplit(self.endpoint).netloc
        self.http = httpx.Client(timeout=timeout_s, verify=verify_tls)

    def _path(self, key: str = "") -> str:
        return f"/{self.bucket}/{key.lstrip('/')}" if key else f"/{self.bucket}"

    def _request(
        self,
        method: str,
        key: str = "",
        params: dict[str, str] | None = None,
        content: bytes | None = None,
        ok: tuple[int, ...] = (200,),
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        params = params or {}
        path = self._path(key)
        signed = sigv4.sign_headers(
            method, self.host, path, params, self.access_key, self.secret_key, self.region
        )
        signed.update(headers or {})
        url = f"{self.endpoint}{sigv4.uri_encode(path, safe='/-_.~')}"
        query = sigv4.canonical_query(params)
        if query:
            url = f"{url}?{query}"
        resp = self.http.request(method, url, content=content, headers=signed)
        if resp.status_code not in ok:
            raise S3Error(f"S3 {method} {path}: {resp.status_code} {resp.text[:300]}")
        return resp

    def check_bucket(self, create: bool = False) -> None:
        """Raise S3Error unless the bucket answers to these keys (created if allowed)."""
        resp = self._request("HEAD", ok=(200, 404))
        if resp.status_code == 404:
            if not create:
                raise S3Error(f"bucket {self.bucket} does not exist")
            self._request("PUT")

    def presign_get(self, path: str, ttl_s: int = 3600) -> str:
        return self._presign("GET", path, {}, ttl_s)

    def _presign(self, method: str, path: str, params: dict[str, str], ttl_s: int) -> str:
        p = self._path(path)
        query = sigv4.presign(
            method, self.host, p, params, self.access_key, self.secret_key, self.region, ttl_s
        )
        return f"{self.endpoint}{sigv4.uri_encode(p, safe='/-_.~')}?{query}"

    def start_upload(self, path: str) -> str:
        resp = self._request("POST", path, {"uploads": ""})
        node = _strip_ns(resp.content).find("UploadId")
        if node is None or not node.text:
            raise S3Error("CreateMultipartUpload answered no UploadId")
        return node.text

    def presign_part(self, path: str, upload_id: str, part_number: int, ttl_s: int = 3600) -> str:
        params = {"partNumber": str(part_number), "uploadId": upload_id}
        return self._presign("PUT", path, params, ttl_s)

    def upload_part(self, path: str, upload_id: str, part_number: int, data: bytes) -> str:
        params = {"partNumber": str(part_number), "uploadId": upload_id}
        resp = self._request("PUT", path, params, content=data)
        return resp.headers["etag"]

    def complete_upload(self, path: str, upload_id: str, etags: list[str]) -> None:
        parts = "".join(
            f"<Part><PartNumber>{i}</PartNumber><ETag>{etag}</ETag></Part>"
            for i, etag in enumerate(etags, start=1)
        )
        body = f"<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>".encode()
        self._request("POST", path, {"uploadId": upload_id}, content=body)

    def abort_upload(self, path: str, upload_id: str) -> None:
        self._request("DELETE", path, {"uploadId": upload_id}, ok=(200, 204, 404))

    def list_uploads(self, prefix: str = "") -> list[tuple[str, str]]:
        resp = self._request("GET", params={"uploads": "", "prefix": prefix})
        out = []
        for up in _strip_ns(resp.content).iter("Upload"):
            out.append((up.findtext("Key") or "", up.findtext("UploadId") or ""))
        return out

    def open_writer(self, path: str) -> S3Writer:
        return S3Writer(self, path)

    def delete(self, path: str) -> None:
        self._request("DELETE", path, ok=(200, 204, 404))

    def size(self, path: str) -> int:
        return int(self._request("HEAD", path).headers["content-length"])

    def exists(self, path: str) -> bool:
        return self._request("HEAD", path, ok=(200, 404)).status_code == 200

    def open_reader(self, path: str, start: int = 0) -> Iterator[bytes]:
        p = self._path(path)
        headers = sigv4.sign_headers(
            "GET", self.host, p, {}, self.access_key, self.secret_key, self.region
        )
        if start:
            headers["Range"] = f"bytes={start}-"
        url = f"{self.endpoint}{sigv4.uri_encode(p, safe='/-_.~')}"
        with self.http.stream("GET", url, headers=headers) as resp:
            if resp.status_code not in (200, 206):
                raise S3Error(f"S3 GET {p}: {resp.status_code}")
            yield from resp.iter_bytes()


class S3Writer:
    """Buffers PART_SIZE bytes per part; the object appears only at commit."""

    def __init__(self, store: S3Store, path: str) -> None:
        self.store = store
        self.path = path
        self.upload_id = store.start_upload(path)
        self.etags: list[str] = []
        self.buf = bytearray()

    def _flush(self) -> None:
        part = len(self.etags) + 1
        self.etags.append(self.store.upload_part(self.path, self.upload_id, part, bytes(self.buf)))
        self.buf.clear()

    def write(self, data: bytes) -> None:
        self.buf += data
        if len(self.buf) >= PART_SIZE:
            self._flush()

    def commit(self) -> None:
        if self.buf or not self.etags:
            self._flush()
        self.store.complete_upload(self.path, self.upload_id, self.etags)

    def abort(self) -> None:
        self.store.abort_upload(self.path, self.upload_id)
