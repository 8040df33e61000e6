"""The router's metadata, user-data and password services (cloud-init's CloudStack contract).

One small process in the router namespace serves two ports on the router's guest address
(shared/reference/ecosystem.md §4):

* **port 80**: ``latest/meta-data/`` (an index, one key a line), ``latest/meta-data/<key>``,
  ``latest/user-data`` (raw bytes; 404 when the VM has none) and the older
  ``latest/<key>`` spelling. Every answer is chosen by the request's **source IP**: a guest
  sees its own data only, an unknown address gets 404.
* **port 8080**: the password server. ``GET /`` with ``DomU_Request: send_my_password``
  answers the pending password (text/plain) or ``saved_password``; ``DomU_Request:
  saved_password`` marks it delivered. Any other request is answered ``bad_request``.

The data file (JSON, written by ``write_data``, mode 0600 because it holds passwords) is
re-read whenever it is replaced, so the dataplane updates a running router by writing a new
file and renaming it into place. Passwords are one-time: delivered passwords are remembered
in ``<data>.saved`` beside the data file as a salted hash per guest address. That survives a
restart and a re-render of the same password from the database (which keeps the sealed
password), while a new password (reset) has a different hash and is served again. So the
dataplane needs to do nothing special: it may re-render freely. Nothing here logs a password.

    python -m cumulo.agent.network.router_http --data FILE --listen IP [--port 80]
        [--password-port 8080]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cumulo.agentrpc.netconfig import RouterConfig, VmData

FORMAT = 1
META_PREFIX = "/latest/meta-data"
USER_DATA = "/latest/user-data"


# --- the data file ---------------------------------------------------------------------------


def meta_data(vm: VmData) -> dict[str, str]:
    """The metadata leaves of one VM; keys without a value are left out of the index.

    cloud-init empties the whole metadata dict when one listed leaf fails, so nothing is
    listed that would not be served. Several public keys become one leaf of lines (cloud-init
    turns it into a list).
    """
    items = {
        "service-offering": vm.service_offering,
        "availability-zone": vm.availability_zone,
        "local-ipv4": vm.ip,
        "local-hostname": vm.local_hostname,
        "public-ipv4": vm.public_ipv4 or "",
        "public-hostname": vm.public_ipv4 or "",
        "instance-id": vm.instance_id,
        "vm-id": vm.vm_id,
        "public-keys": "\n".join(vm.public_keys),
    }
    return {key: value for key, value in items.items() if value}


def _entry(vm: VmData) -> dict[str, Any]:
    user_data = base64.b64encode(vm.user_data).decode() if vm.user_data is not None else None
    return {"meta-data": meta_data(vm), "user-data": user_data, "password": vm.password}


def render_data(config: RouterConfig) -> bytes:
    doc = {"format": FORMAT, "vms": {vm.ip: _entry(vm) for vm in config.vm_data}}
    return json.dumps(doc, sort_keys=True, indent=1).encode()


def _atomic_write(path: Path, raw: bytes) -> None:
    """Temp file (0600) → write → fsync → rename → fsync the directory."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(raw)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)  # readers see the old file or the new one, never half
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a crash
    finally:
        os.close(dir_fd)


def write_data(config: RouterConfig, path: Path) -> str:
    """Write the data file for ``config`` atomically (0600): ``"updated"`` or ``"unchanged"``."""
    raw = render_data(config)
    try:
        if path.read_bytes() == raw:
            return "unchanged"
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(path, raw)
    return "updated"


def saved_path(data: Path) -> Path:
    return data.with_name(data.name + ".saved")


# --- the state the server keeps ----------------------------------------------------------------


@dataclass
class Store:
    """The current data file (reloaded when replaced) and the delivered-password record."""

    data_path: Path
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stamp: tuple[int, int, int] | None = None
    _vms: dict[str, dict[str, Any]] = field(default_factory=dict)
    _saved: dict[str, str] = field(default_factory=dict)
    _salt: str = ""

    def __post_init__(self) -> None:
        self._load_saved()

    def _load_saved(self) -> None:
        try:
            doc = json.loads(saved_path(self.data_path).read_text())
        except (OSError, ValueError):
            doc = {}
        self._salt = str(doc.get("salt") or secrets.token_hex(16))
        self._saved = {str(k): str(v) for k, v in dict(doc.get("saved", {})).items()}

    def vm(self, ip: str) -> dict[str, Any] | None:
        with self._lock:
            self._refresh()
            return self._vms.get(ip)

    def _refresh(self) -> None:
        try:
            st = os.stat(self.data_path)
        except OSError:
            self._vms, self._stamp = {}, None
            return
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        try:
            doc = json.loads(self.data_path.read_bytes())
        except (OSError, ValueError):
            return  # keep serving the previous data; the next good file replaces it
        self._vms = {str(ip): dict(entry) for ip, entry in dict(doc.get("vms", {})).items()}
        self._stamp = stamp

    def _token(self, ip: str, password: str) -> str:
        return hashlib.sha256(f"{self._salt}\0{ip}\0{password}".encode()).hexdigest()

    def pending_password(self, ip: str) -> str | None:
        """The password to hand to ``ip``, unless it was already delivered."""
        with self._lock:
            self._refresh()
            password = self._vms.get(ip, {}).get("password")
            if not password or self._saved.get(ip) == self._token(ip, str(password)):
                return None
            return str(password)

    def mark_saved(self, ip: str) -> None:
        with self._lock:
            self._refresh()
            password = self._vms.get(ip, {}).get("password")
            if not password:
                return
            self._saved[ip] = self._token(ip, str(password))
            doc = {"salt": self._salt, "saved": self._saved}
            _atomic_write(saved_path(self.data_path), json.dumps(doc, sort_keys=True).encode())


# --- HTTP ----------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    store: Store
    server_version = "cumulo-router"
    sys_version = ""

    def _send(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Client address and request line only (never a header or body: no passwords)."""
        sys.stderr.write(f"{self.client_address[0]} {format % args}\n")


class MetadataHandler(_Handler):
    def do_GET(self) -> None:
        vm = self.store.vm(self.client_address[0])
        body = answer(vm, self.path) if vm is not None else None
        if body is None:
            self._send(404, b"Not Found\n")
        else:
            self._send(200, body)

    do_HEAD = do_GET


def answer(vm: dict[str, Any], raw_path: str) -> bytes | None:
    """The body for one metadata path of one VM, or None for 404."""
    path = raw_path.split("?", 1)[0].rstrip("/")
    meta: dict[str, str] = vm.get("meta-data", {})
    if path == META_PREFIX:
        return "\n".join(meta).encode()
    if path == USER_DATA:
        user_data = vm.get("user-data")
        return base64.b64decode(user_data) if user_data is not None else None
    key = path.removeprefix(META_PREFIX + "/") if path.startswith(META_PREFIX + "/") else None
    if key is None and path.startswith("/latest/"):
        key = path.removeprefix("/latest/")  # the older spelling, latest/<key>
    value = meta.get(key) if key else None
    return value.encode() if value is not None else None


class PasswordHandler(_Handler):
    def do_GET(self) -> None:
        ip = self.client_address[0]
        request = (self.headers.get("DomU_Request") or "").strip()
        if request == "send_my_password":
            password = self.store.pending_password(ip)
            self._send(200, (password if password is not None else "saved_password").encode())
        elif request == "saved_password":
            self.store.mark_saved(ip)
            self._send(200, b"saved_password")
        else:
            self._send(400, b"bad_request")


def _server(listen: str, port: int, handler: type[_Handler], store: Store) -> ThreadingHTTPServer:
    bound = type(handler.__name__, (handler,), {"store": store})
    server = ThreadingHTTPServer((listen, port), bound)
    server.daemon_threads = True
    return server


def serve(data: Path, listen: str, port: int = 80, password_port: int = 8080) -> None:
    """Serve both ports until the process is killed."""
    store = Store(data)
    servers = [
        _server(listen, port, MetadataHandler, store),
        _server(listen, password_port, PasswordHandler, store),
    ]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    pid = os.getpid()
    sys.stderr.write(f"[{pid}] router_http listening on {listen}:{port} and :{password_port}\n")
    sys.stderr.flush()
    for thread in threads:
        thread.join()


def argv(data: Path, listen: str, port: int = 80, password_port: int = 8080) -> list[str]:
    """The command line the dataplane runs inside the router namespace."""
    return [
        sys.executable, "-m", "cumulo.agent.network.router_http", "--data", str(data),
        "--listen", listen, "--port", str(port), "--password-port", str(password_port),
    ]  # fmt: skip


# --- the process, for the dataplane ------------------------------------------------------------

DATA_NAME = "vmdata.json"
PID_NAME = "router_http.pid"
LOG_NAME = "router_http.log"


def running_pid(run_dir: Path, listen: str | None = None) -> int | None:
    """The service's pid when it runs for this run_dir (and address): a reused pid is not."""
    try:
        pid = int((run_dir / PID_NAME).read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    args = [a.decode(errors="replace") for a in cmdline]
    if "cumulo.agent.network.router_http" not in args or str(run_dir / DATA_NAME) not in args:
        return None
    if listen is not None and listen not in args:
        return None
    return pid


def _spawn(netns: str | None, run_dir: Path, listen: str) -> int:
    """Start detached (it outlives the agent, like dnsmasq): ``sh`` backgrounds it and exits,
    so no zombie is left with the agent; returns the service's own pid."""
    command = shlex.join(argv(run_dir / DATA_NAME, listen))
    log = shlex.quote(str(run_dir / LOG_NAME))
    script = f"{command} </dev/null >>{log} 2>&1 & echo $!"
    full = ["sh", "-c", script]
    if netns:
        full = ["ip", "netns", "exec", netns, *full]
    done = subprocess.run(
        full, capture_output=True, text=True, timeout=30, check=True, start_new_session=True
    )
    return int(done.stdout.strip())


def _wait_listening(pid: int, run_dir: Path, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    marker = f"[{pid}] router_http listening"
    while time.monotonic() < deadline:
        text = (
            (run_dir / LOG_NAME).read_text(errors="replace")
            if (run_dir / LOG_NAME).exists()
            else ""
        )
        if marker in text:
            return
        if not Path(f"/proc/{pid}").exists():
            break
        time.sleep(0.05)
    raise RuntimeError(f"router_http did not start: {text[-500:]}")


def apply(config: RouterConfig, netns: str | None, run_dir: Path) -> str:
    """Make the router's metadata/password service match ``config``.

    Writes ``run_dir/vmdata.json`` (the running service picks it up by itself) and starts
    the service on ``router_ip`` when it is not running there (pid file ``router_http.pid``,
    log ``router_http.log``). Returns ``"started"``, ``"updated"`` or ``"unchanged"``. The
    delivered-password record ``vmdata.json.saved`` stays in run_dir across restarts.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    changed = write_data(config, run_dir / DATA_NAME)
    if running_pid(run_dir, config.router_ip) is not None:
        return changed
    stop(run_dir)  # one bound to an old address
    pid = _spawn(netns, run_dir, config.router_ip)
    (run_dir / PID_NAME).write_text(f"{pid}\n")
    _wait_listening(pid, run_dir)
    return "started"


def stop(run_dir: Path) -> None:
    """Stop the service (SIGTERM, then SIGKILL); absent is fine. The data files stay."""
    pid = running_pid(run_dir)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if running_pid(run_dir) is not None:
            os.kill(pid, signal.SIGKILL)
    (run_dir / PID_NAME).unlink(missing_ok=True)


def main(arguments: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--listen", required=True)
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--password-port", type=int, default=8080)
    args = parser.parse_args(arguments)
    serve(args.data, args.listen, args.port, args.password_port)


if __name__ == "__main__":
    main()
