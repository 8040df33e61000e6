"""docs/api-coverage.md is generated from the registry and must never go stale."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from cumulo.api.cloudstack import coverage
from cumulo.api.cloudstack.registry import REGISTRY
from tests.support.cloud import Cloud

DOC = Path(__file__).resolve().parents[2] / "docs" / "api-coverage.md"
ROW = re.compile(r"^\| `(\w+)` \| (sync|list|async|async-create) \| ")


def _rows(text: str) -> dict[str, str]:
    rows: dict[str, str] = {}
    for line in text.splitlines():
        m = ROW.match(line)
        if m:
            assert m.group(1) not in rows, f"{m.group(1)} listed twice"
            rows[m.group(1)] = m.group(2)
    return rows


def test_committed_doc_matches_the_registry() -> None:
    fresh = coverage.render()
    assert DOC.read_text() == fresh, "docs/api-coverage.md is stale: run `make docs`"


def test_the_module_entry_point_prints_the_same_page() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "cumulo.api.cloudstack.coverage"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out == coverage.render()


def test_every_command_is_listed_once_with_its_kind() -> None:
    text = coverage.render()
    specs = coverage.declared(REGISTRY.values())
    assert _rows(text) == {s.name: s.kind.value for s in specs}
    assert f"**{len(specs)} commands**" in text
    for area in {coverage.area_of(s) for s in specs}:
        assert f"\n## {area}\n" in text


def test_cells_cannot_break_the_table() -> None:
    assert coverage.cell("a | b\nc") == "a \\| b c"
    assert coverage.cell(None) == ""


def test_doc_lists_what_the_server_offers_the_root_admin(cloud: Cloud) -> None:
    """listApis on the live server (root admin sees everything) names the same commands."""
    apis = cloud.call("listApis")["api"]
    rows = _rows(coverage.render())
    assert {a["name"] for a in apis} == set(rows)
    for api in apis:
        assert api["isasync"] == rows[api["name"]].startswith("async"), api["name"]
