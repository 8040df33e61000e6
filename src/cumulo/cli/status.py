"""``cumulo status``: is the cloud well, in one screen, through the API only.

It asks what an operator checks first: the management server answers (and how fast), the S3
service answers, zones, hosts by state with the ones not Up listed, capacity by type, and
jobs that failed in the last day. The exit code says whether something needs attention: 0
all well, 1 degraded (a host not Up), 3 the API cannot be reached. The S3 line checks the
service this machine's settings name; in a farm it may run elsewhere, so it only informs.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from cumulo.cli import apicmd, output
from cumulo.cli.client import ApiError, Client

BAD_HOST_STATES = frozenset({"Down", "Disconnected", "Alert", "Error"})
CAPACITY_NAMES = {
    0: "memory",
    1: "cpu",
    2: "storage",
    3: "storage allocated",
    4: "public IPs",
    5: "private IPs",
    6: "secondary storage",
    7: "VLANs",
    8: "direct attached public IPs",
    9: "local storage",
    19: "GPU",
    90: "CPU cores",
}


def _rows(client: Client, api: str, **params: Any) -> list[dict[str, Any]]:
    answer = client.call(api, **params)
    return output.rows_of(answer)[1] if answer else []


def _s3_state() -> str:
    """Whether this machine's S3 service answers (status runs on the operator's box)."""
    try:
        from cumulo.common.settings import load_settings

        s3 = load_settings().s3
        resp = httpx.get(f"http://{s3.host}:{s3.port}/", timeout=3)
    except (httpx.HTTPError, OSError, ValueError, AttributeError):
        return "down"
    return "up" if resp.status_code < 500 else f"error {resp.status_code}"


def _section(title: str, rows: list[dict[str, Any]], tty: bool) -> None:
    print(f"\n{title}")
    print(output.table(rows, None, 160, tty).rstrip() if rows else "  (none)")


def run(opts: apicmd.Options) -> int:
    tty = sys.stdout.isatty()
    try:
        profile, client = apicmd.connect(opts.profile)
        started = time.monotonic()
        caps = client.call("listCapabilities").get("capability", {})
        latency_ms = (time.monotonic() - started) * 1000
        zones = _rows(client, "listZones")
        hosts = _rows(client, "listHosts", listall="true")
        capacity = _rows(client, "listCapacity")
        since = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S+0000")
        jobs = _rows(client, "listAsyncJobs", listall="true", startdate=since)
    except ApiError as err:
        print(
            f"cumulo: {err.command} failed: errorcode {err.errorcode}: {err.text}", file=sys.stderr
        )
        return apicmd.API_FAILED
    except httpx.HTTPError as err:
        print(f"cumulo: cannot reach the cloud: {err}", file=sys.stderr)
        return apicmd.UNREACHABLE
    s3 = _s3_state()
    print(f"profile {profile.name}: {profile.url}")
    print(
        f"management API: up, CloudStack {caps.get('cloudstackversion', '?')}, {latency_ms:.0f} ms"
    )
    print(f"S3 service (this machine): {s3}")
    states = Counter(str(h.get("state")) for h in hosts)
    by_state = ", ".join(f"{n} {s}" for s, n in sorted(states.items())) or "none"
    print(f"hosts: {len(hosts)} ({by_state})")
    _section(
        "zones",
        [{k: z.get(k) for k in ("name", "id", "allocationstate", "networktype")} for z in zones],
        tty,
    )
    bad = [h for h in hosts if h.get("state") in BAD_HOST_STATES]
    keep = ("name", "state", "resourcestate", "hypervisor", "zonename", "lastpinged")
    _section("hosts needing attention", [{k: h.get(k) for k in keep} for h in bad], tty)
    cap_rows = [
        {
            "zone": c.get("zonename"),
            "type": CAPACITY_NAMES.get(int(c.get("type", -1)), str(c.get("type"))),
            "used": c.get("capacityused"),
            "total": c.get("capacitytotal"),
            "percent": c.get("percentused"),
        }
        for c in capacity
    ]
    _section("capacity", cap_rows, tty)
    failed = [
        {k: j.get(k) for k in ("jobid", "cmd", "created", "jobinstancetype", "jobinstanceid")}
        for j in jobs
        if int(j.get("jobstatus", 0)) == 2
    ]
    _section("jobs failed in the last day", failed[-10:], tty)
    return apicmd.API_FAILED if bad else apicmd.OK
