"""A throw-away PostgreSQL 15 cluster for the test session: one cluster, many databases.

Starting a cluster costs about a second, a database a few milliseconds, so the cluster is
started once, on first use, and every cloud gets its own database in it. The cluster lives
in a fresh temporary directory, listens on 127.0.0.1 on a free port (and on a Unix socket in
that directory), and trusts local connections only: nothing outside this machine can reach it.

initdb refuses to run as root, and tests usually run as root here, so the server programs
run as the ``postgres`` system user (created by Debian's ``postgresql-15`` package) through
``runuser``; a non-root session runs them directly.

The cluster is stopped and its directory removed when pytest unconfigures, even after a
failed or interrupted run. A small watchdog process does the same if pytest itself is killed
(it waits for a pipe from pytest to close), so no postmaster outlives its test session.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.support.cloud import free_port

BIN_DIR = Path(os.environ.get("CUMULO_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
SYSTEM_USER = "postgres"
SUPERUSER = "postgres"
# Durability is worthless in a cluster deleted at the end of the session; speed is not.
SERVER_OPTIONS = (
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "max_connections=400",
    "shared_buffers=32MB",
    "dynamic_shared_memory_type=mmap",
    "listen_addresses=127.0.0.1",
)

# Runs detached from pytest: when pytest's end of the pipe closes for any reason, stop the
# cluster (immediate mode: nothing in it is worth a checkpoint) and delete its directory.
WATCHDOG = """
import shutil, subprocess, sys
sys.stdin.buffer.read()
root, stop = sys.argv[1], sys.argv[2:]
subprocess.run(stop, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
shutil.rmtree(root, ignore_errors=True)
"""


def _as_server_user(argv: list[str]) -> list[str]:
    """Prefix ``argv`` so it runs as the postgres system user when we are root."""
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", SYSTEM_USER, "--", *argv]


def _run(argv: list[str], cwd: Path) -> None:
    done = subprocess.run(_as_server_user(argv), cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr or done.stdout}")


@dataclass
class PgCluster:
    root: Path
    port: int = 0
    databases: set[str] = field(default_factory=set)
    _watchdog: subprocess.Popen[bytes] | None = None

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root

    def url(self, dbname: str) -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def _pg_ctl(self, *args: str) -> list[str]:
        return [str(BIN_DIR / "pg_ctl"), "-D", str(self.data_dir), *args]

    def start(self) -> None:
        _run(
            [
                str(BIN_DIR / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            cwd=self.root,
        )
        self._trust_local_only()
        self._start_watchdog()
        for attempt in range(3):
            self.port = free_port()
            try:
                self._start_server()
                return
            except RuntimeError:
                # Another process may have taken the free port between probe and bind.
                if attempt == 2:
                    raise

    def _trust_local_only(self) -> None:
        """Replace initdb's pg_hba.conf: trust the socket and loopback, nothing else."""
        hba = self.data_dir / "pg_hba.conf"
        hba.write_text(
            "local all all trust\n"
            "host all all 127.0.0.1/32 trust\n"
            "host all all ::1/128 reject\n"
            "host all all 0.0.0.0/0 reject\n"
        )

    def _start_server(self) -> None:
        options = " ".join(
            [f"-p {self.port}", f"-k {self.socket_dir}", *(f"-c {o}" for o in SERVER_OPTIONS)]
        )
        log = self.root / "server.log"
        argv = self._pg_ctl("-w", "-t", "30", "-l", str(log), "-o", options, "start")
        # A session of its own: a Ctrl-C aimed at pytest must not reach the postmaster.
        done = subprocess.run(
            _as_server_user(argv),
            cwd=self.root,
            capture_output=True,
            text=True,
            start_new_session=True,
        )
        if done.returncode != 0:
            tail = log.read_text()[-2000:] if log.exists() else done.stderr
            raise RuntimeError(f"postgres did not start: {tail}")

    def _start_watchdog(self) -> None:
        stop = _as_server_user(self._pg_ctl("-m", "immediate", "-w", "stop"))
        self._watchdog = subprocess.Popen(
            [sys.executable, "-c", WATCHDOG, str(self.root), *stop],
            stdin=subprocess.PIPE,
            cwd=self.root,
            start_new_session=True,
        )

    def create_database(self, name: str) -> str:
        """A new empty database named after ``name``; returns its SQLAlchemy URL."""
        dbname = re.sub(r"[^a-z0-9_]", "_", name.lower())[:63]
        if dbname in self.databases:
            raise ValueError(f"database {dbname} was already handed out in this session")
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=SUPERUSER, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        self.databases.add(dbname)
        return self.url(dbname)

    def stop(self) -> None:
        """Stop the server and delete everything it wrote; safe to call more than once."""
        if self.data_dir.exists():
            subprocess.run(
                _as_server_user(self._pg_ctl("-m", "fast", "-w", "-t", "30", "stop")),
                cwd="/",
                capture_output=True,
                check=False,
            )
        shutil.rmtree(self.root, ignore_errors=True)
        if self._watchdog is not None:
            assert self._watchdog.stdin is not None
            self._watchdog.stdin.close()
            self._watchdog.wait(30)
            self._watchdog = None


def start_cluster() -> PgCluster:
    """Start a cluster in a new temporary directory the server user owns."""
    if not (BIN_DIR / "initdb").exists():
        raise RuntimeError(f"PostgreSQL 15 is not installed in {BIN_DIR} (make install)")
    root = Path(tempfile.mkdtemp(prefix="cumulo-pg-"))
    if os.geteuid() == 0:
        user = pwd.getpwnam(SYSTEM_USER)
        os.chown(root, user.pw_uid, user.pw_gid)
    os.chmod(root, 0o700)
    cluster = PgCluster(root)
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        raise
    return cluster


_cluster: PgCluster | None = None


def session_cluster(config: pytest.Config) -> PgCluster:
    """The session's cluster, started on first use and stopped when pytest unconfigures."""
    global _cluster
    if _cluster is None:
        started = time.monotonic()
        _cluster = start_cluster()
        config.add_cleanup(_stop_session_cluster)
        elapsed = time.monotonic() - started
        print(
            f"\n[postgres] cluster on port {_cluster.port} up in {elapsed:.2f} s", file=sys.stderr
        )
    return _cluster


def _stop_session_cluster() -> None:
    global _cluster
    cluster, _cluster = _cluster, None
    if cluster is not None:
        cluster.stop()


def database_url_for(request: pytest.FixtureRequest, name: str) -> str:
    """A fresh database for one cloud, in the session's cluster."""
    return session_cluster(request.config).create_database(name)
