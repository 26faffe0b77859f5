"""The web UI's server side: static files under ``static/ui`` and the client-side router's fallback.

The UI is plain static files (ES modules, CSS; no build step). Every ``/ui/...`` path that is not a
static file answers ``index.html`` so the browser-side router (History API) can draw Kestra's UI URLs
(``/ui/flows/edit/{namespace}/{id}``, ``/ui/executions/{namespace}/{flowId}/{id}``…) on a reload or a
shared link. ``/ui/assets/...`` never falls back: a missing asset is a 404, not a page of HTML served
as JavaScript. The UI talks to the server only through ``/api/v1`` and its websockets.
"""

from __future__ import annotations

from pathlib import Path

from quart import Blueprint, Response, redirect, send_file
from werkzeug.exceptions import NotFound
from werkzeug.security import safe_join
from werkzeug.wrappers import Response as WerkzeugResponse

STATIC_UI_DIR = Path(__file__).resolve().parent / "static" / "ui"

ui_blueprint = Blueprint("falconet_ui", __name__)

# Assets are small and named without content hashes: the browser revalidates them on every load
# (ETag / Last-Modified), so an upgraded package never mixes old and new modules.
_CACHE_CONTROL = "no-cache"


async def _send(path: Path) -> Response:
    response = await send_file(path, conditional=True)
    response.headers["Cache-Control"] = _CACHE_CONTROL
    if path.name == "index.html":
        response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _static_file(subpath: str) -> Path | None:
    """The file under STATIC_UI_DIR named by ``subpath``, or None (missing, a folder, or outside)."""
    joined = safe_join(str(STATIC_UI_DIR), subpath)  # None for "..", absolute paths, NUL, backslashes
    if joined is None:
        return None
    candidate = Path(joined)
    try:
        candidate.resolve().relative_to(STATIC_UI_DIR)  # symlinks must not lead out either
        return candidate if candidate.is_file() else None
    except (ValueError, OSError):  # OSError: a name too long for the file system
        return None


@ui_blueprint.route("/")
async def root() -> WerkzeugResponse:
    return redirect("/ui/", code=302)


@ui_blueprint.route("/ui")
async def ui_no_slash() -> WerkzeugResponse:
    return redirect("/ui/", code=302)


@ui_blueprint.route("/ui/")
async def ui_index() -> Response:
    return await _send(STATIC_UI_DIR / "index.html")


@ui_blueprint.route("/ui/<path:subpath>")
async def ui_path(subpath: str) -> Response:
    found = _static_file(subpath)
    if found is not None:
        return await _send(found)
    if subpath == "assets" or subpath.startswith("assets/"):
        raise NotFound()
    return await _send(STATIC_UI_DIR / "index.html")
