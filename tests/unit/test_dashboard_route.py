"""The dashboard's static route, in-process: SPA fallback, no escape from the build, and an
honest 503 when the build is missing."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from cumulo.api.dashboard import NOT_BUILT, Dashboard


def _client(dist: Path) -> TestClient:
    ui = Dashboard(cast(Any, None), dist)
    app = Starlette(routes=[Route("/client/{path:path}", ui.asset)])
    return TestClient(app)


def test_missing_build_says_how_to_build(tmp_path: Path) -> None:
    resp = _client(tmp_path / "nothing").get("/client/")
    assert resp.status_code == 503 and resp.text == NOT_BUILT


def test_assets_fallback_and_no_escape(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<html>app</html>")
    (dist / "assets" / "app-1.js").write_text("console.log(1)")
    (tmp_path / "secret.txt").write_text("not for you")
    client = _client(dist)
    asset = client.get("/client/assets/app-1.js")
    assert asset.text == "console.log(1)" and "immutable" in asset.headers["cache-control"]
    # client-side routes get the app's page
    assert client.get("/client/instances/new").text == "<html>app</html>"
    escaped = client.get("/client/..%2fsecret.txt")
    assert "not for you" not in escaped.text
    assert client.get("/client/").headers["x-frame-options"] == "DENY"
