"""Cumulo's S3 service side by side with its peers: radosgw, swift + s3api, SeaweedFS, rclone.

One run brings each server up on loopback (free ports, all state under one temp dir, every
process started here and ended here by PID, even on failure or Ctrl-C; see bench/s3peers.py),
one at a time so they never compete, and measures:

- 4 KiB PUT then GET ops/s, many concurrent clients: ``--procs`` processes x ``--threads``
  threads, each thread with its own keep-alive connection and a small hand-rolled SigV4
  client (a boto3 call costs ~1 ms of client CPU; this costs a fraction of that), so the
  load generator is not what is measured. The same phases against a static loopback server
  that answers every request at once print the generator's ceiling on this machine.
- ``--large-mib`` objects (256 MiB): PUT as a multipart upload (16 MiB parts spread over the
  worker processes), GET as one streamed GetObject read into a reused buffer (MB/s, 10^6 B).
- the raw disk under the temp dir (fio O_DIRECT sequential read/write, or dd), so the table
  can say whether large GETs reach half the disk's read rate.

Medians over ``--reps`` (a fresh bucket per rep). Each column also shows its ratio to the best
peer other than Cumulo (the goal in issue 8 is Cumulo >= 1.0x in every column). Every load is
bounded by count (``--small-ops``, ``--large-count``) and by time (``--phase-seconds``).

    .venv/bin/python bench/s3_bench.py --quick                 # tiny sizes: does it all work?
    .venv/bin/python bench/s3_bench.py --peers seaweedfs,rclone --reps 3   # + Cumulo
    make bench-s3 BENCH_S3_ARGS="--reps 3"                     # installs the peers first
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import multiprocessing as mp
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.pool import Pool
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))
import s3peers  # (the bench directory is not a package)

REGION = "us-east-1"
SMALL = 4096
PART = 16 * 2**20
COLUMNS = ("put4k_ops", "get4k_ops", "put_large_MBps", "get_large_MBps")
T = TypeVar("T")
PEERS = ("radosgw", "swift", "seaweedfs", "rclone")
ALL_PEERS = (*PEERS, "cumulo")


# --- a minimal SigV4 client (one keep-alive connection per thread) --------------------------


def _sha256(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


EMPTY_SHA = _sha256(b"")


class Client:
    """Signed S3 requests over one persistent HTTP/1.1 connection (path-style addressing)."""

    def __init__(self, host: str, port: int, access: str, secret: str, timeout: float) -> None:
        self.host, self.port, self.access, self.secret = host, port, access, secret
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.rbuf = bytearray()
        self._keys: dict[str, bytes] = {}

    def _signing_key(self, day: str) -> bytes:
        if day not in self._keys:
            key = ("AWS4" + self.secret).encode()
            for part in (day, REGION, "s3", "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._keys[day] = key
        return self._keys[day]

    def _headers(
        self, method: str, path: str, query: str, payload_sha: str, extra: dict[str, str]
    ) -> dict[str, str]:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        headers = {
            "host": f"{self.host}:{self.port}",
            "x-amz-date": stamp,
            "x-amz-content-sha256": payload_sha,
            **{k.lower(): v for k, v in extra.items()},
        }
        names = sorted(headers)
        canonical = "\n".join(
            [
                method,
                quote(path, safe="/-_.~"),
                query,
                "".join(f"{n}:{headers[n].strip()}\n" for n in names),
                ";".join(names),
                payload_sha,
            ]
        )
        scope = f"{stamp[:8]}/{REGION}/s3/aws4_request"
        to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{_sha256(canonical.encode())}"
        sig = hmac.new(self._signing_key(stamp[:8]), to_sign.encode(), hashlib.sha256)
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self.access}/{scope}, "
            f"SignedHeaders={';'.join(names)}, Signature={sig.hexdigest()}"
        )
        return headers

    def request(
        self,
        method: str,
        path: str,
        query: str = "",
        body: bytes | memoryview = b"",
        payload_sha: str | None = None,
        extra: dict[str, str] | None = None,
        sink: bytearray | None = None,
    ) -> tuple[int, dict[str, str], bytes, int]:
        """(status, headers, body or b"" when a 200 is streamed into ``sink``, bytes read).

        A raw socket rather than http.client: http.client parses every response's headers
        with the email package, which costs more client CPU than the request itself."""
        sha = payload_sha or (_sha256(body) if body else EMPTY_SHA)
        headers = self._headers(method, path, query, sha, extra or {})
        headers["content-length"] = str(len(body))
        target = quote(path, safe="/-_.~") + (f"?{query}" if query else "")
        lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        head = f"{method} {target} HTTP/1.1\r\n{lines}\r\n".encode()
        for attempt in (1, 2):
            sent = False
            try:
                sock = self._connect()
                if len(body) <= 65536:
                    sock.sendall(head + bytes(body))
                else:
                    sock.sendall(head)
                    sock.sendall(body)
                sent = True
                return self._response(method, sink)
            except OSError:
                self.close()  # a server closing a keep-alive connection: one retry
                if attempt == 2 or (sent and self.rbuf):
                    raise
        raise AssertionError("unreachable")

    def _connect(self) -> socket.socket:
        if self.sock is None:
            self.sock = socket.create_connection((self.host, self.port), self.timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.rbuf = bytearray()
        return self.sock

    def _fill(self) -> None:
        assert self.sock is not None
        chunk = self.sock.recv(256 * 1024)
        if not chunk:
            raise ConnectionResetError("the server closed the connection")
        self.rbuf += chunk

    def _line(self) -> bytes:
        while (end := self.rbuf.find(b"\r\n")) < 0:
            self._fill()
        line = bytes(self.rbuf[:end])
        del self.rbuf[: end + 2]
        return line

    def _take(self, n: int, sink: bytearray | None) -> bytes:
        """The next ``n`` body bytes; with a sink they are read into it and dropped."""
        if sink is None:
            while len(self.rbuf) < n:
                self._fill()
            data = bytes(self.rbuf[:n])
            del self.rbuf[:n]
            return data
        have = min(n, len(self.rbuf))
        del self.rbuf[:have]
        view, left = memoryview(sink), n - have
        assert self.sock is not None
        while left:
            got = self.sock.recv_into(view[: min(left, len(view))])
            if not got:
                raise ConnectionResetError("the server closed the connection mid-body")
            left -= got
        return b""

    def _response(
        self, method: str, sink: bytearray | None
    ) -> tuple[int, dict[str, str], bytes, int]:
        while True:
            status_line = self._line()
            status = int(status_line.split(b" ", 2)[1])
            headers: dict[str, str] = {}
            while line := self._line():
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            if status != 100:
                break
        stream = sink if status == 200 else None
        data, got = b"", 0
        if method == "HEAD" or status in (204, 304):
            pass
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            parts = []
            while size := int(self._line().split(b";")[0], 16):
                parts.append(self._take(size, stream))
                got += size
                self._line()
            while self._line():  # trailers, then the blank line
                pass
            data = b"".join(parts)
        elif "content-length" in headers:
            got = int(headers["content-length"])
            data = self._take(got, stream)
        else:  # delimited by the server closing the connection
            with contextlib.suppress(ConnectionResetError):
                while True:
                    self._fill()
            data, got = bytes(self.rbuf), len(self.rbuf)
            self.close()
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, data, got

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


# --- worker-process tasks (a Pool forked once; each task opens its own connections) ---------


@dataclass
class Target:
    """What a worker needs to reach one server (picklable)."""

    host: str
    port: int
    access: str
    secret: str
    timeout: float = 60.0


@dataclass
class Outcome:
    done: list[int] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""
    nbytes: int = 0


_SMALL_BODY = os.urandom(SMALL)
_SMALL_SHA = _sha256(_SMALL_BODY)
_PART_BODY: bytes = b""
_PART_SHA: dict[int, str] = {}


def _client(t: Target) -> Client:
    return Client(t.host, t.port, t.access, t.secret, t.timeout)


def small_task(args: tuple[Target, str, str, list[int], int, float]) -> Outcome:
    """``op`` (PUT/GET) on keys ``ids`` of ``bucket`` with ``threads`` threads until the keys
    run out or the wall clock passes ``deadline`` (time.time())."""
    target, op, bucket, ids, threads, deadline = args
    todo, lock, out = list(reversed(ids)), threading.Lock(), Outcome()

    def worker() -> None:
        client = _client(target)
        try:
            while time.time() < deadline:
                with lock:
                    if not todo:
                        return
                    i = todo.pop()
                try:
                    if op == "PUT":
                        path = f"/{bucket}/s/{i:07d}"
                        status, _, data, _ = client.request(
                            "PUT", path, body=_SMALL_BODY, payload_sha=_SMALL_SHA
                        )
                        good = status == 200
                    else:
                        status, _, data, _ = client.request("GET", f"/{bucket}/s/{i:07d}")
                        good = status == 200 and data == _SMALL_BODY
                except (OSError, ValueError, IndexError) as exc:
                    status, data, good = 0, repr(exc).encode(), False
                with lock:
                    if good:
                        out.done.append(i)
                    else:
                        out.errors += 1
                        out.first_error = out.first_error or f"{op} {status} {data[:200]!r}"
        finally:
            client.close()

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    return out


def _part_body(size: int) -> tuple[memoryview, str]:
    global _PART_BODY
    if len(_PART_BODY) < PART:
        _PART_BODY = os.urandom(PART)
    if size not in _PART_SHA:
        _PART_SHA[size] = _sha256(memoryview(_PART_BODY)[:size])
    return memoryview(_PART_BODY)[:size], _PART_SHA[size]


def part_task(args: tuple[Target, str, str, str, list[tuple[int, int]]]) -> dict[int, str]:
    """Upload parts ``(number, size)`` of one multipart upload; returns number -> ETag."""
    target, bucket, key, upload_id, parts = args
    client, etags = _client(target), {}
    try:
        for number, size in parts:
            body, sha = _part_body(size)
            query = f"partNumber={number}&uploadId={quote(upload_id, safe='')}"
            status, headers, data, _ = client.request(
                "PUT", f"/{bucket}/{key}", query, body=body, payload_sha=sha
            )
            if status != 200:
                raise RuntimeError(f"UploadPart {number}: {status} {data[:300]!r}")
            etags[number] = headers.get("etag", "")
    finally:
        client.close()
    return etags


def prepare_parts(size: int) -> bool:
    """Warm a worker's part body and hashes outside the timed part (run once per worker)."""
    _part_body(min(PART, size))
    if size % PART:
        _part_body(size % PART)
    return True


def get_large_task(args: tuple[Target, str, str, int]) -> int:
    """Stream one object into a reused buffer; returns the bytes read."""
    target, bucket, key, size = args
    client, sink = _client(target), bytearray(1 << 20)
    try:
        status, _, data, got = client.request("GET", f"/{bucket}/{key}", sink=sink)
    finally:
        client.close()
    if status != 200 or got != size:
        raise RuntimeError(f"GET {key}: status {status}, {got} of {size} bytes {data[:200]!r}")
    return got


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _ignore_sigint() -> None:
    """Children: Ctrl-C is the parent's to handle (it ends them), SIGTERM just ends them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


# --- the measurements -----------------------------------------------------------------------


@dataclass
class Settings:
    small_ops: int
    large_mib: int
    large_count: int
    reps: int
    procs: int
    threads: int
    phase_seconds: float


def split(items: list[T], n: int) -> list[list[T]]:
    """Round-robin ``items`` over ``n`` workers."""
    return [items[k::n] for k in range(n)]


def small_phase(
    pool: Pool, target: Target, op: str, bucket: str, ids: list[int], cfg: Settings
) -> tuple[float, list[int], Outcome]:
    """Run one 4 KiB phase over every worker process; ops/s over the phase's wall time."""
    deadline = time.time() + cfg.phase_seconds
    tasks = [(target, op, bucket, chunk, cfg.threads, deadline) for chunk in split(ids, cfg.procs)]
    t0 = time.perf_counter()
    outs = pool.map(small_task, tasks, chunksize=1)
    elapsed = time.perf_counter() - t0
    total = Outcome()
    for o in outs:
        total.done += o.done
        total.errors += o.errors
        total.first_error = total.first_error or o.first_error
    return len(total.done) / elapsed, sorted(total.done), total


def check(status: int, data: bytes, what: str) -> None:
    # A 200 may still carry an S3 <Error> (CompleteMultipartUpload does that).
    if status not in (200, 204) or b"<Error>" in data:
        raise RuntimeError(f"{what}: {status} {data[:300]!r}")


def put_large(pool: Pool, client: Client, target: Target, bucket: str, key: str, size: int) -> None:
    status, _, data, _ = client.request("POST", f"/{bucket}/{key}", "uploads=")
    check(status, data, "CreateMultipartUpload")
    found = re.search(rb"<UploadId>([^<]+)</UploadId>", data)
    if not found:
        raise RuntimeError(f"no UploadId in {data[:300]!r}")
    upload_id = found.group(1).decode()
    parts = [(n + 1, min(PART, size - n * PART)) for n in range((size + PART - 1) // PART)]
    tasks = [(target, bucket, key, upload_id, chunk) for chunk in split(parts, pool_size(pool))]
    etags: dict[int, str] = {}
    for got in pool.map(part_task, [t for t in tasks if t[4]], chunksize=1):
        etags.update(got)
    xml = "".join(
        f"<Part><PartNumber>{n}</PartNumber><ETag>{etags[n]}</ETag></Part>" for n in sorted(etags)
    )
    body = f"<CompleteMultipartUpload>{xml}</CompleteMultipartUpload>".encode()
    status, _, data, _ = client.request(
        "POST", f"/{bucket}/{key}", f"uploadId={quote(upload_id, safe='')}", body=body
    )
    check(status, data, "CompleteMultipartUpload")


def pool_size(pool: Pool) -> int:
    return int(pool._processes)  # type: ignore[attr-defined]


def one_rep(pool: Pool, ep: s3peers.Endpoint, cfg: Settings, rep: int) -> dict[str, float]:
    host, port = ep.host_port
    target = Target(host, port, ep.access_key, ep.secret_key)
    client = _client(target)
    bucket = f"bench-{rep}-{int(time.time())}"
    for _ in range(20):  # a server just started may still answer 503 for a moment
        status, _, data, _ = client.request("PUT", f"/{bucket}")
        if status != 503:
            break
        time.sleep(0.5)
    check(status, data, f"CreateBucket {bucket}")
    out: dict[str, float] = {}
    # Untimed warm-up: connections, a new bucket's first allocations (SeaweedFS grows volumes
    # for a new collection on its first writes), then the same keys are overwritten.
    warm = list(range(min(cfg.small_ops, 2 * cfg.procs * cfg.threads)))
    small_phase(pool, target, "PUT", bucket, warm, cfg)
    put_ops, written, res = small_phase(
        pool, target, "PUT", bucket, list(range(cfg.small_ops)), cfg
    )
    report_errors(ep.name, "PUT 4K", res, cfg.small_ops)
    get_ops, _, res = small_phase(pool, target, "GET", bucket, written, cfg)
    report_errors(ep.name, "GET 4K", res, len(written))
    out["put4k_ops"], out["get4k_ops"] = put_ops, get_ops
    out.update(large_phase(pool, client, target, bucket, cfg, verify=True))
    client.close()
    return out


def large_phase(
    pool: Pool, client: Client, target: Target, bucket: str, cfg: Settings, verify: bool = False
) -> dict[str, float]:
    """``large_count`` multipart PUTs, then as many single-stream GETs, one object at a time."""
    size, out = cfg.large_mib * 2**20, dict[str, float]()
    if cfg.large_count <= 0:
        return out
    pool.map(prepare_parts, [size] * pool_size(pool), chunksize=1)
    # Bounded by count and by time: no new object once the phase's time is used up.
    t0, done = time.perf_counter(), 0
    while done < cfg.large_count and time.perf_counter() - t0 < cfg.phase_seconds:
        put_large(pool, client, target, bucket, f"l/{done}", size)
        done += 1
    out["put_large_MBps"] = done * size / 1e6 / (time.perf_counter() - t0)
    if verify:
        status, headers, _, _ = client.request("HEAD", f"/{bucket}/l/0")
        if status != 200 or int(headers.get("content-length", -1)) != size:
            raise RuntimeError(f"HEAD l/0 after multipart: {status} {headers}")
    t0, stored, done = time.perf_counter(), done, 0
    while done < stored and time.perf_counter() - t0 < cfg.phase_seconds:
        pool.apply(get_large_task, ((target, bucket, f"l/{done}", size),))
        done += 1
    out["get_large_MBps"] = done * size / 1e6 / (time.perf_counter() - t0)
    return out


def report_errors(name: str, what: str, res: Outcome, wanted: int) -> None:
    if res.errors:
        print(f"  {name} {what}: {res.errors} errors, first: {res.first_error}", flush=True)
    if len(res.done) < wanted:
        print(f"  {name} {what}: {len(res.done)} of {wanted} done before the deadline", flush=True)
    if not res.done:
        raise RuntimeError(f"{what}: no request succeeded ({res.first_error})")


def bench_endpoint(pool: Pool, ep: s3peers.Endpoint, cfg: Settings) -> dict[str, float]:
    reps = []
    for rep in range(cfg.reps):
        got = one_rep(pool, ep, cfg, rep)
        print(
            f"  {ep.name} rep {rep}: " + json.dumps({k: round(v, 1) for k, v in got.items()}),
            flush=True,
        )
        reps.append(got)
    return {k: statistics.median(r[k] for r in reps) for k in reps[0]}


# --- the generator's ceiling: a static server that answers every request at once ----------


def _static_server(port: int, large: int) -> None:
    """HTTP/1.1 keep-alive server that answers every request at once without storing
    anything: 4 KiB (the bytes the GET check expects) for a small GET, ``large`` zero bytes
    for a GET under /b/l/, canned XML for the multipart calls, an empty 200 otherwise.
    Request bodies are counted off, never buffered."""
    _ignore_sigint()
    small = b'HTTP/1.1 200 OK\r\nContent-Length: 4096\r\nETag: "x"\r\n\r\n' + _SMALL_BODY
    big_head = f'HTTP/1.1 200 OK\r\nContent-Length: {large}\r\nETag: "x"\r\n\r\n'.encode()
    big = big_head + bytes(large)
    empty = b'HTTP/1.1 200 OK\r\nContent-Length: 0\r\nETag: "x"\r\n\r\n'
    xml = b"<InitiateMultipartUploadResult><UploadId>u</UploadId></InitiateMultipartUploadResult>"
    initiate = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(xml), xml)

    def answer(head: bytes) -> bytes:
        method, path = [*head.split(b" ", 2), b"", b""][:2]
        if method == b"get":
            return big if path.startswith(b"/b/l/") else small
        if method == b"head":
            return big_head
        if method == b"post" and b"?uploads" in path:
            return initiate
        return empty

    class Proto(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.t: Any = transport
            self.buf = bytearray()
            self.skip = 0
            self.reply = b""
            self.pending = memoryview(b"")
            self.paused = False

        # A large reply goes out 1 MiB at a time as the socket drains: one write() of it all
        # would be copied into asyncio's buffer and trimmed from the front (quadratic in 3.11).
        def pause_writing(self) -> None:
            self.paused = True

        def resume_writing(self) -> None:
            self.paused = False
            self.pump()

        def pump(self) -> None:
            while self.pending and not self.paused:
                self.t.write(self.pending[: 1 << 20])
                self.pending = self.pending[1 << 20 :]

        def send(self, reply: bytes) -> None:
            self.pending = memoryview(reply)
            self.pump()

        def data_received(self, data: bytes) -> None:
            view = memoryview(data)
            while view:
                if self.skip:
                    n = min(self.skip, len(view))
                    self.skip, view = self.skip - n, view[n:]
                    if not self.skip:
                        self.send(self.reply)
                    continue
                self.buf += view
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                head, view = bytes(self.buf[:end]).lower(), memoryview(bytes(self.buf[end + 4 :]))
                self.buf = bytearray()
                m = re.search(rb"content-length:\s*(\d+)", head)
                self.reply, self.skip = answer(head), int(m.group(1)) if m else 0
                if not self.skip:
                    self.send(self.reply)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Proto, "127.0.0.1", port, reuse_port=True)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def ceiling(pool: Pool, cfg: Settings, stack: list[mp.Process]) -> dict[str, float]:
    """The same phases against the static server: what the load generator can do here."""
    port, size = s3peers.free_port(), cfg.large_mib * 2**20
    for _ in range(2):
        proc = mp.Process(target=_static_server, args=(port, size), daemon=True)
        proc.start()
        stack.append(proc)
    deadline = time.monotonic() + 10
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            break
        if time.monotonic() > deadline:
            raise RuntimeError("the static server did not start")
        time.sleep(0.05)
    target = Target("127.0.0.1", port, "k", "s")
    ids = list(range(cfg.small_ops))
    out = {
        "put4k_ops": small_phase(pool, target, "PUT", "b", ids, cfg)[0],
        "get4k_ops": small_phase(pool, target, "GET", "b", ids, cfg)[0],
    }
    client = _client(target)
    out.update(large_phase(pool, client, target, "b", cfg))
    client.close()
    for proc in stack:
        stop_process(proc)
    stack.clear()
    return out


def stop_process(proc: mp.Process) -> None:
    if proc.is_alive():
        proc.terminate()
        proc.join(5)
    if proc.is_alive():
        proc.kill()
        proc.join(5)


# --- raw disk ------------------------------------------------------------------------------


def raw_disk(root: Path, mib: int) -> dict[str, str]:
    """Sequential O_DIRECT read and write of a file under the bench's temp dir (fio if
    installed, as the storage reference measured it; dd otherwise). No cache dropping."""
    path = root / "rawdisk.bin"
    try:
        if shutil.which("fio"):
            return _fio(path, mib)
        return _dd(path, mib)
    except (OSError, ValueError, IndexError, subprocess.SubprocessError) as exc:
        return {"tool": f"failed: {exc}", "write": "-", "read": "-"}
    finally:
        path.unlink(missing_ok=True)


def _fio(path: Path, mib: int) -> dict[str, str]:
    out: dict[str, str] = {"tool": "fio 1 MiB seq, direct=1, libaio QD16"}
    for rw in ("write", "read"):
        argv = ["fio", "--name=raw", f"--filename={path}", f"--rw={rw}", "--bs=1M"]
        argv += ["--direct=1", "--ioengine=libaio", "--iodepth=16", f"--size={mib}M"]
        argv += ["--runtime=30", "--output-format=json"]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True)
        job = json.loads(done.stdout[done.stdout.index("{") :])["jobs"][0][rw]
        out[rw] = f"{job['bw_bytes'] / 1e6:.0f}"
    return out


def _dd(path: Path, mib: int) -> dict[str, str]:
    out: dict[str, str] = {"tool": "dd 1 MiB, O_DIRECT"}
    runs = {
        "write": ["dd", "if=/dev/zero", f"of={path}", "bs=1M", f"count={mib}", "oflag=direct"],
        "read": ["dd", f"if={path}", "of=/dev/null", "bs=1M", "iflag=direct"],
    }
    for rw, argv in runs.items():
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True)
        secs = float(re.findall(r"([\d.]+) s,", done.stderr)[-1])
        out[rw] = f"{mib * 2**20 / 1e6 / secs:.0f}"
    return out


# --- the table -----------------------------------------------------------------------------


def fmt(value: float | None, best: float | None) -> str:
    if value is None:
        return "-"
    ratio = f" ({value / best:.2f}x)" if best else ""
    return f"{value:,.0f}{ratio}"


def table(
    results: dict[str, dict[str, float]],
    eps: dict[str, s3peers.Endpoint],
    ceil: dict[str, float],
    disk: dict[str, str],
    cfg: Settings,
) -> str:
    size = f"{cfg.large_mib} MiB"
    heads = ["server", "durability", "PUT 4K ops/s", "GET 4K ops/s"]
    heads += [f"PUT {size} MB/s", f"GET {size} MB/s"]
    peers = [n for n in results if n != "cumulo"]
    best = {c: max((results[n].get(c, 0.0) for n in peers), default=0.0) for c in COLUMNS}
    rows = [heads, ["---"] * len(heads)]
    for name, res in results.items():
        ep = eps[name]
        cells = [f"{ep.version}", ep.durability]
        cells += [fmt(res.get(c), best[c] or None) for c in COLUMNS]
        rows.append(cells)
    rows.append(
        ["*load generator ceiling (static 200 server)*", "-"]
        + [fmt(ceil.get(c), None) for c in COLUMNS]
    )
    rows.append(
        [
            f"*raw disk: {disk.get('tool', '-')}*",
            *("-", "-", "-"),
            f"*write {disk.get('write', '-')}*",
            f"*read {disk.get('read', '-')}*",
        ]
    )
    lines = ["| " + " | ".join(r) + " |" for r in rows]
    lines.append(
        f"Ratios are to the best peer other than Cumulo. Medians of {cfg.reps} reps; "
        f"{cfg.small_ops} x 4 KiB over {cfg.procs} processes x {cfg.threads} threads; "
        f"{cfg.large_count} x {size} objects, {PART >> 20} MiB parts."
    )
    if "cumulo" in results and disk.get("read", "").isdigit():
        got = results["cumulo"].get("get_large_MBps")
        if got is not None:
            ratio = got / float(disk["read"])
            lines.append(f"Cumulo large GET / raw disk read = {ratio:.2f} (goal >= 0.5)")
    return "\n".join(lines)


# --- main ---------------------------------------------------------------------------------


def parse(argv: list[str] | None) -> tuple[argparse.Namespace, Settings]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--peers",
        default=",".join(PEERS),
        help=f"comma list, any of {','.join(PEERS)} (Cumulo runs last unless --no-cumulo)",
    )
    p.add_argument("--no-cumulo", action="store_true", help="measure the peers only")
    p.add_argument("--small-ops", type=int, default=5000, help="4 KiB objects per rep")
    p.add_argument("--large-mib", type=int, default=256, help="size of each large object")
    p.add_argument("--large-count", type=int, default=3, help="large objects per rep")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--procs", type=int, default=max(4, 2 * (os.cpu_count() or 1)))
    p.add_argument("--threads", type=int, default=8, help="connections per process")
    p.add_argument("--phase-seconds", type=float, default=120, help="time bound of each phase")
    p.add_argument("--disk-mib", type=int, default=2048, help="raw disk test file size")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (logs) afterwards")
    p.add_argument("--quick", action="store_true", help="tiny sizes: check the script works")
    args = p.parse_args(argv)
    if args.quick:  # tiny defaults; sizes given explicitly still win
        p.set_defaults(small_ops=400, large_mib=40, large_count=1, reps=1, phase_seconds=60)
        p.set_defaults(disk_mib=256)
        args = p.parse_args(argv)
    names = [n for n in args.peers.split(",") if n]
    unknown = set(names) - set(ALL_PEERS)
    if unknown:
        p.error(f"unknown peers {sorted(unknown)}; choose from {','.join(ALL_PEERS)}")
    if not args.no_cumulo and "cumulo" not in names:
        names.append("cumulo")
    args.names = [n for n in names if not (args.no_cumulo and n == "cumulo")]
    cfg = Settings(
        args.small_ops,
        args.large_mib,
        args.large_count,
        args.reps,
        args.procs,
        args.threads,
        args.phase_seconds,
    )
    return args, cfg


def main(argv: list[str] | None = None) -> int:
    args, cfg = parse(argv)
    root = Path(tempfile.mkdtemp(prefix="cumulo-s3bench-"))
    print(
        f"state under {root}; load: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True
    )
    # SIGTERM ends the run like Ctrl-C does: the finally blocks below stop every process.
    signal.signal(signal.SIGTERM, _interrupt)
    statics: list[mp.Process] = []
    pool = mp.get_context("fork").Pool(cfg.procs, initializer=_ignore_sigint)
    results: dict[str, dict[str, float]] = {}
    eps: dict[str, s3peers.Endpoint] = {}
    try:
        disk = raw_disk(root, args.disk_mib)
        print(f"raw disk ({disk['tool']}): write {disk['write']} MB/s, read {disk['read']} MB/s")
        ceil = ceiling(pool, cfg, statics)
        print("load generator ceiling: " + json.dumps({k: round(v) for k, v in ceil.items()}))
        for name in args.names:
            got = run_peer(pool, name, root, cfg)
            if got is not None:
                eps[name], results[name] = got
    except KeyboardInterrupt:
        print("interrupted: stopping everything", flush=True)
        return 130
    finally:
        pool.terminate()
        pool.join()
        for proc in statics:
            stop_process(proc)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print()
    print(table(results, eps, ceil, disk, cfg))
    return 0


def run_peer(
    pool: Pool, name: str, root: Path, cfg: Settings
) -> tuple[s3peers.Endpoint, dict[str, float]] | None:
    """Start one peer, measure it, stop it; None (and a clear line) when it cannot run."""
    peer_dir = root / name
    peer_dir.mkdir()
    procs = s3peers.Procs(peer_dir)
    t0 = time.perf_counter()
    try:
        ep = s3peers.PEERS[name](peer_dir, procs)
        print(
            f"{name}: up in {time.perf_counter() - t0:.1f} s ({ep.version}) at {ep.url}", flush=True
        )
        res = bench_endpoint(pool, ep, cfg)
        return ep, res
    except s3peers.PeerUnavailable as exc:
        print(f"SKIP {name}: {exc}", flush=True)
    except (RuntimeError, OSError, ValueError) as exc:
        print(f"SKIP {name}: failed during the run: {exc}", flush=True)
    finally:
        procs.stop_all(grace=5 if name == "seaweedfs" else 15)
        prune(peer_dir)
    return None


def prune(peer_dir: Path) -> None:
    """Free a stopped peer's data (radosgw's OSD file, objects) at once; keep its logs."""
    for path in peer_dir.iterdir():
        if path.is_dir() and path.name != "log":
            shutil.rmtree(path, ignore_errors=True)
        elif path.is_file() and path.suffix != ".log":
            path.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
