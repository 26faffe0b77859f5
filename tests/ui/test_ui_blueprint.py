"""The UI blueprint: static files, the client-side router's fallback to index.html, the / redirect,
and that no path leads outside falconet/http/static/ui."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit
from typing import Any

import pytest

quart = pytest.importorskip("quart")

from falconet.http.ui import STATIC_UI_DIR, ui_blueprint  # noqa: E402


def _get(path: str) -> tuple[int, Any, bytes]:
    async def go() -> tuple[int, Any, bytes]:
        app = quart.Quart("ui-test")
        app.register_blueprint(ui_blueprint)
        client = app.test_client()
        resp: Any = await client.get(path)
        return resp.status_code, resp.headers, await resp.get_data()

    return asyncio.run(go())


INDEX = (STATIC_UI_DIR / "index.html").read_bytes()


def test_root_redirects_to_ui() -> None:
    status, headers, _ = _get("/")
    assert status == 302
    assert headers["Location"].endswith("/ui/")


@pytest.mark.parametrize("path", ["/ui/", "/ui/flows", "/ui/flows/edit/company.team/hello_world",
                                  "/ui/executions", "/ui/executions/company.team/hello_world/4wjtkzwVGBM9yKnjm3yv8r/logs"])
def test_ui_routes_answer_index(path: str) -> None:
    status, headers, body = _get(path)
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert body == INDEX


def test_assets_are_served_with_their_type() -> None:
    status, headers, body = _get("/ui/assets/js/main.js")
    assert status == 200
    assert "javascript" in headers["Content-Type"]
    assert body == (STATIC_UI_DIR / "assets" / "js" / "main.js").read_bytes()
    status, headers, _ = _get("/ui/assets/app.css")
    assert status == 200 and headers["Content-Type"].startswith("text/css")


def test_missing_asset_is_404_not_index() -> None:
    status, _, body = _get("/ui/assets/js/nope.js")
    assert status == 404
    assert body != INDEX


@pytest.mark.parametrize("path", ["/ui/../ui.py", "/ui/..%2fui.py", "/ui/%2e%2e/%2e%2e/http/ui.py", "/ui/assets/..%2f..%2f..%2fui.py",
                                  "/ui//etc/passwd", "/ui/%2fetc%2fpasswd"])
def test_no_path_escapes_the_static_folder(path: str) -> None:
    status, headers, body = _get(path)
    assert b"ui_blueprint" not in body and b"root:" not in body
    assert status in (200, 404, 308)  # 308: werkzeug merges "//" and redirects
    if status == 308:
        assert urlsplit(headers["Location"]).path.startswith("/ui/")
    if status == 200:
        assert body == INDEX
