"""Browser tests: scripts in web/e2e/ run by node with playwright-core and Debian's chromium."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
ARTIFACTS = ROOT / "build" / "artifacts" / "dashboard"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def run_script(name: str, env: dict[str, str], timeout: float) -> dict[str, Any]:
    """Run ``web/e2e/<name>``; its last line is a JSON object of what it saw, which must say
    no ``error`` (the script's exit code says the same)."""
    done = subprocess.run(
        ["node", str(WEB / "e2e" / name)],
        cwd=WEB,
        env={**os.environ, "CHROMIUM": CHROMIUM, "ARTIFACTS": str(ARTIFACTS), **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no result from the browser: {done.stdout[-2000:]} {done.stderr[-2000:]}"
    result: dict[str, Any] = json.loads(lines[-1])
    assert done.returncode == 0 and "error" not in result, result.get("error", done.stderr)
    return result
