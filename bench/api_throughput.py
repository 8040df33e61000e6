"""Signed CloudStack API calls per second against a bare endpoint on the same server stack.

Starts a real management server on loopback (fresh data directory, SQLite by default, or
``--database-url``), then drives it with ``wrk`` (Debian package) at 1, 8 and 32 concurrent
connections: first the bare ``/livez`` endpoint (Starlette + uvicorn, no auth, no database),
then signed ``listUsers`` (and ``listZones`` once the cloud model declares it). A signed
request without signatureVersion 3 stays valid, so wrk can replay one pre-signed URL; the
server still verifies the HMAC, resolves the key, checks the role and queries the database
on every call. Prints requests/s, p50/p99 latency and the ratio signed / bare.

    .venv/bin/python bench/api_throughput.py [--seconds 10] [--connections 1,8,32]
"""

from __future__ import annotations

import argparse
import configparser
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

import cumulo.api.cloudstack.commands  # noqa: F401  (declares the commands)
from cumulo.api.cloudstack.registry import lookup
from cumulo.api.cloudstack.signing import sign_params

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    data_dir: Path, port: int, database_url: str, integration_port: int
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUMULO_")}
    env.update(
        {
            "CUMULO_DATA_DIR": str(data_dir),
            "CUMULO_API__PORT": str(port),
            "CUMULO_API__INTEGRATION_PORT": str(integration_port),
            "CUMULO_DATABASE__URL": database_url,
            "CUMULO_LOG__LEVEL": "WARNING",
        }
    )
    subprocess.run(
        [sys.executable, "-m", "cumulo", "init"], env=env, check=True, stdout=subprocess.DEVNULL
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "cumulo", "server"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/livez", timeout=1)
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not start")


def signed_url(port: int, data_dir: Path, command: str) -> str:
    ini = configparser.ConfigParser()
    ini.read(data_dir / "admin.ini")
    params = {"command": command, "response": "json", "apiKey": ini["cloudstack"]["key"]}
    params["signature"] = sign_params(ini["cloudstack"]["secret"], params)
    return f"http://127.0.0.1:{port}/client/api?{urlencode(params)}"


def wrk(url: str, connections: int, seconds: int) -> tuple[float, float, float, int]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, _ms(lat["50"]), _ms(lat["99"]), int(non2xx.group(1)) if non2xx else 0


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * UNITS[unit]


def _row(name: str, conns: int, rps: float, p50: float, p99: float, base: float | None) -> None:
    ratio = f"{rps / base:>6.2f}" if base else f"{'':>6}"
    print(f"{name:<26} {conns:>5} {rps:>9.0f} {p50:>8.2f} {p99:>8.2f} {ratio}")


def _measure(url: str, name: str, conns: int, seconds: int, base: float | None) -> float:
    rps, p50, p99, bad = wrk(url, conns, seconds)
    if bad:
        raise SystemExit(f"{name}: {bad} responses were not 2xx")
    _row(name, conns, rps, p50, p99, base)
    return rps


def _seed(integration_port: int) -> None:
    """One zone (enabled, so users see it too), so listZones returns an object, not {}."""
    if lookup("createZone") is None:
        return
    query = urlencode(
        {
            "command": "createZone",
            "name": "bench-zone",
            "networktype": "Advanced",
            "internaldns1": "10.0.0.2",
            "allocationstate": "Enabled",
            "response": "json",
        }
    )
    urllib.request.urlopen(f"http://127.0.0.1:{integration_port}/client/api?{query}", timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", default="1,8,32")
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (make install adds it)")
    commands = [c for c in ("listZones", "listUsers") if lookup(c) is not None]
    data_dir = Path(tempfile.mkdtemp(prefix="cumulo-bench-"))
    port, integration = free_port(), free_port()
    proc = start_server(data_dir, port, args.database_url, integration)
    try:
        _seed(integration)
        print(f"{'endpoint':<26} {'conns':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} ratio")
        for conns in (int(c) for c in args.connections.split(",")):
            base = _measure(
                f"http://127.0.0.1:{port}/livez", "bare /livez", conns, args.seconds, None
            )
            for command in commands:
                _measure(
                    signed_url(port, data_dir, command),
                    f"signed {command}",
                    conns,
                    args.seconds,
                    base,
                )
                # The same command unsigned on the integration port: what signing itself costs.
                unsigned = (
                    f"http://127.0.0.1:{integration}/client/api?command={command}&response=json"
                )
                _measure(unsigned, f"unsigned {command} (8096)", conns, args.seconds, base)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)
        shutil.rmtree(data_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
