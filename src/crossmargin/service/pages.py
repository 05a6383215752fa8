"""The dashboard: one static page at ``/`` with its scripts and styles under ``/static/``.

The page is plain HTML and JavaScript without a build step; it routes in the browser on the
URL fragment (``/#/``, ``/#/accounts/{id}``, ``/#/venues``) so it never shadows the JSON paths
``/accounts/{id}`` and ``/venues``. Charts use the plotly.js bundle that ships inside the
installed ``plotly`` Python package, served from here: the page loads nothing from another
host. The book view follows ``/ws/book`` (:mod:`crossmargin.service.routes.risk_ws`).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

__all__ = ["PLOTLY_JS", "STATIC_DIR", "router"]

STATIC_DIR = Path(__file__).with_name("static")
PLOTLY_JS = Path(str(files("plotly") / "package_data" / "plotly.min.js"))

_MEDIA = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
}
_ASSETS = {p.name: p for p in STATIC_DIR.iterdir() if p.suffix in _MEDIA and p.name != "index.html"}
_ASSETS["plotly.min.js"] = PLOTLY_JS
_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; connect-src 'self'"
    ),
}

router = APIRouter(include_in_schema=False)


@router.get("/")
async def index() -> FileResponse:
    """The dashboard page (book, account and venue views are fragments of it)."""
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers=_HEADERS)


@router.get("/static/{name}")
async def asset(name: str) -> FileResponse:
    """A script, style sheet or image of the page; only the files shipped with it."""
    path = _ASSETS.get(name)
    if path is None:
        raise HTTPException(status_code=404, detail=f"no static file {name!r}")
    return FileResponse(path, media_type=_MEDIA[path.suffix], headers=_HEADERS)
