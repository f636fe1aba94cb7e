"""Serves the web dashboard's build (src/coinwire/web/dist): `/`, its client routes under `/app/`, `/assets/`.

The dashboard is a single-page app: `/` and every `/app/...` path answer the same
`index.html` and the app's router draws the page, so a reload or a shared link of
`/app/runs/bt-1` works. Client routes live under `/app/` so they never shadow an API path
(`/runs` is the REST list of runs, `/app/runs` the page). `/assets/` holds the bundled
JavaScript and CSS; their names carry a content hash, so they are cached for a year, while
`index.html` is never cached (a new build is picked up at the next load).

The pages are public (they hold no data; everything they show comes from the API with the
user's token). When the build is missing (a checkout where `make web` has not run), these
routes answer 503 with how to build it.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, Response

__all__ = ["add_web_routes", "DIST"]

DIST = Path(__file__).resolve().parent.parent / "web" / "dist"

_NOT_BUILT = """<!doctype html><meta charset="utf-8"><title>coinwire</title>
<h1>coinwire</h1><p>The web dashboard is not built. Run <code>make web</code> (it runs
<code>npm ci &amp;&amp; npm run build</code> in src/coinwire/web), then reload.
The API is up: <a href="/openapi.json">/openapi.json</a>, <a href="/uri_map">/uri_map</a>.</p>"""


def _index(dist: Path) -> Response:
    index = dist / "index.html"
    if not index.is_file():
        return HTMLResponse(_NOT_BUILT, status_code=503)
    return FileResponse(index, media_type="text/html", headers={"Cache-Control": "no-cache"})


def add_web_routes(app: FastAPI, dist: Path = DIST) -> None:
    """Register `/`, `/app/{path}` and `/assets/{path}` (left out of the OpenAPI document)."""
    assets = (dist / "assets").resolve()

    async def index() -> Response:
        """The dashboard."""
        return _index(dist)

    async def client_route(path: str) -> Response:
        """A page of the dashboard: the same index.html, the client-side router picks the page."""
        return _index(dist)

    async def asset(path: str) -> Response:
        """A bundled file; only files inside dist/assets, never a path that climbs out."""
        target = (assets / path).resolve()
        if not target.is_relative_to(assets) or not target.is_file():
            return Response(status_code=404)
        media_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        return FileResponse(target, media_type=media_type, headers={"Cache-Control": "public, max-age=31536000, immutable"})

    app.add_api_route("/", index, methods=["GET"], include_in_schema=False)
    app.add_api_route("/app/{path:path}", client_route, methods=["GET"], include_in_schema=False)
    app.add_api_route("/assets/{path:path}", asset, methods=["GET"], include_in_schema=False)
