"""The VM console in a real Chromium, against a real QEMU VM on a KVM host namespace.

createConsoleEndpoint's URL opens the dashboard's noVNC page; the test checks that noVNC
connected through the management server's WebSocket and that frames were drawn on the
canvas, then that the same (single-use) URL no longer opens.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_dashboard import ARTIFACTS, CHROMIUM, WEB
from tests.browser.test_dashboard import pytestmark as browser_marks
from tests.integration.test_agent import AgentProc
from tests.integration.test_kvm_vms import (  # noqa: F401  (fixtures)
    host_netns,
    job,
    kvm,
    tiny,
)
from tests.support.cloud import Cloud

pytestmark = [*browser_marks, pytest.mark.vm, pytest.mark.net, pytest.mark.slow]


def _open(url: str, shot: str) -> dict[str, Any]:
    env = {
        **os.environ,
        "CONSOLE_URL": url,
        "CHROMIUM": CHROMIUM,
        "ARTIFACTS": str(ARTIFACTS),
        "SHOT": shot,
    }
    done = subprocess.run(
        ["node", str(WEB / "e2e" / "console.mjs")],
        cwd=WEB,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no result from the browser: {done.stdout[-2000:]} {done.stderr[-2000:]}"
    result: dict[str, Any] = json.loads(lines[-1])
    assert done.returncode == 0 and "error" not in result, result.get("error", done.stderr)
    return result


def test_console_canvas_receives_frames(
    kvm: tuple[Cloud, dict[str, Any], AgentProc, Path, Path],  # noqa: F811
) -> None:
    cloud, ctx, _, _, _ = kvm
    vm = job(
        cloud,
        "deployVirtualMachine",
        zoneid=ctx["zone"]["id"],
        templateid=ctx["template"]["id"],
        serviceofferingid=ctx["offering"]["id"],
    )["jobresult"]["virtualmachine"]
    try:
        endpoint = cloud.call("createConsoleEndpoint", virtualmachineid=vm["id"])
        url = endpoint["consoleendpoint"]["url"]
        seen = _open(url, "console")
        assert seen["state"] == "connected", seen
        assert seen["width"] > 0 and seen["height"] > 0
        assert seen["opaque"] > 0.9, f"no frame drawn: {seen}"
        assert vm["instancename"] in seen["title"] or "Console" in seen["title"]
        again = _open(url, "console-reused")
        assert again["state"] == "disconnected"
        assert (ARTIFACTS / "console.png").stat().st_size > 3000
    finally:
        job(cloud, "destroyVirtualMachine", id=vm["id"], expunge="true")
