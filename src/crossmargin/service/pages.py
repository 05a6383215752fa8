"""The dashboard: one static page at ``/`` with its scripts and styles under ``/static/``.

The page is plain HTML and JavaScript without a build step; it routes in the browser on the
URL fragment (``/#/``, ``/#/accounts/{id}``, ``/#/venues``) so it never shadows the JSON paths
``/accounts/{id}`` and ``/venues``. Charts use the plotly.js bundle that ships inside the
installed ``plotly`` Python package, served from here: the page loads nothing from another
host. ``/ws/book`` pushes the ``book`` channel (after each tick: the marks, the accounts per
status and the ids that changed) to the book view.
"""

from __future__ import annotations

import asyncio
import contextlib
from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, HTTPException, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse

from crossmargin.service.errors import ApiError
from crossmargin.service.security import websocket_principal
from crossmargin.service.state import ServiceState

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


@router.websocket("/ws/book")
async def book_channel(websocket: WebSocket) -> None:
    """Push each tick's book summary (operator keys only: it names every changed account)."""
    state: ServiceState = websocket.app.state.service
    try:
        who = websocket_principal(websocket)
    except ApiError as error:
        await websocket.close(code=4000 + error.status, reason=error.reason)
        return
    if not who.is_operator:
        await websocket.close(code=4403, reason="needs an operator key")
        return
    await websocket.accept()
    sub = state.hub.subscribe("book")
    reader = asyncio.ensure_future(_drain(websocket))
    try:
        while True:
            message = asyncio.ensure_future(sub.__anext__())
            done, _ = await asyncio.wait({message, reader}, return_when=asyncio.FIRST_COMPLETED)
            if message not in done:
                message.cancel()
                return
            try:
                await websocket.send_json(message.result())
            except StopAsyncIteration:
                return
    except WebSocketDisconnect:
        pass
    finally:
        reader.cancel()
        sub.close()


async def _drain(websocket: WebSocket) -> None:
    """Returns when the client goes away (what it sends is ignored)."""
    with contextlib.suppress(WebSocketDisconnect):
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass
