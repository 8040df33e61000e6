"""The VM console in a real Chromium, against a real QEMU VM on a KVM host namespace.

createConsoleEndpoint's URL opens the dashboard's noVNC page; the test checks that noVNC
connected through the management server's WebSocket and that frames were drawn on the
canvas, then that the same (single-use) URL no longer opens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser import ARTIFACTS, run_script
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
    return run_script("console.mjs", {"CONSOLE_URL": url, "SHOT": shot}, timeout=180)


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
