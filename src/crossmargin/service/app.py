"""The FastAPI application: :func:`create_app` wires the state, security, limits, error
answers and routers together.

Other modules of the service plug in here: a router goes into :data:`ROUTERS` (one line), work
to start with the app (subscribing a tick listener to ``app.state.service.tick_listeners``,
connecting a broker) into :data:`STARTUP` and its clean-up into :data:`SHUTDOWN`; a hook is an
``async def hook(app: FastAPI) -> None``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi import APIRouter, FastAPI
from fastapi.telemetry import TelemetryConfig
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crossmargin.service import alert_routes, demo, errors, pages, venue_routes
from crossmargin.service.collector import full_passes_between_ticks
from crossmargin.service.errors import error_body
from crossmargin.service.feeds import Feeds
from crossmargin.service.routes import accounts, book, feeds, keys, ops, risk_ws
from crossmargin.service.security import KeyRing, RateLimiter
from crossmargin.service.settings import Settings
from crossmargin.service.state import ServiceState

__all__ = ["ROUTERS", "SHUTDOWN", "STARTUP", "create_app"]

log = logging.getLogger("crossmargin.service")

Hook = Callable[[FastAPI], Awaitable[None]]

ROUTERS: list[APIRouter] = [
    ops.router,
    accounts.router,
    book.router,
    feeds.router,
    keys.router,
    risk_ws.router,
    alert_routes.router,
    venue_routes.router,
    pages.router,
]
"""Routers the app includes, in this order."""

STARTUP: list[Hook] = [alert_routes.start, venue_routes.start, demo.start]
"""Awaited, in order, when the app starts (after the state exists)."""

SHUTDOWN: list[Hook] = [feeds.stop, alert_routes.stop]
"""Awaited, in order, when the app stops (before the ledger closes)."""


NO_TELEMETRY: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
}
"""FastAPI's own OpenTelemetry spans, metrics and logs are off: the service's metrics are its
Prometheus ones (``/metrics``) and its logs its structured ones; left on, FastAPI looks for
OpenTelemetry providers on every request and connection."""


class BodyLimit:
    """ASGI middleware: a request body above ``limit`` bytes is answered 413 (by its declared
    length before it is read, else as soon as the streamed bytes pass the limit)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", ())).get(b"content-length")
        if declared is not None:
            try:
                too_large = int(declared) > self.limit
            except ValueError:
                too_large = False
            if too_large:
                await _send_413(send, self.limit)
                return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise StarletteHTTPException(413, f"body above {self.limit} bytes")
            return message

        await self.app(scope, counted, send)


async def _send_413(send: Send, limit: int) -> None:
    body = json.dumps(error_body("body", f"above {limit} bytes")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class AccessLog:
    """ASGI middleware: each request logged (method, route template, status, milliseconds,
    key prefix; never the key or the query string) and counted in the metrics."""

    def __init__(self, app: ASGIApp, state: ServiceState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.state.metrics.requests.labels(route=template, code=str(status)).inc()
            who = getattr(scope.get("state", {}).get("principal"), "prefix", None)
            log.info(
                "request",
                extra={
                    "method": scope.get("method", ""),
                    "route": template,
                    "status": status,
                    "ms": round((time.perf_counter() - start) * 1e3, 3),
                    "key": who or "-",
                },
            )


def create_app(settings: Settings | None = None, *, state: ServiceState | None = None) -> FastAPI:
    """The service over ``state`` (default: a new one over ``settings``'s ledger database).

    ``app.state.service`` is the :class:`ServiceState`, ``app.state.keys`` the
    :class:`KeyRing`, ``app.state.limiter`` the per-key :class:`RateLimiter`,
    ``app.state.feeds`` the running :class:`Feeds`.
    """
    if state is None:
        state = ServiceState(settings or Settings())
    chosen = state.settings

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for hook in STARTUP:
            await hook(app)
        try:
            async with full_passes_between_ticks(state):
                yield
        finally:
            for hook in SHUTDOWN:
                try:
                    await hook(app)
                except Exception:
                    log.exception("shutdown hook failed")

    app = FastAPI(
        title="crossmargin risk service",
        version="0.1.0",
        summary="Cross-margin accounts, margin, liquidation prices and live risk.",
        lifespan=lifespan,
        responses=errors.ERROR_RESPONSES,
        telemetry=NO_TELEMETRY,
    )
    app.state.service = state
    app.state.keys = KeyRing(state.records)
    app.state.limiter = RateLimiter(chosen.rate_per_second, chosen.rate_burst)
    app.state.feeds = Feeds(state)
    errors.install(app)
    for router in ROUTERS:
        app.include_router(router)
    app.add_middleware(BodyLimit, limit=chosen.max_body_bytes)
    app.add_middleware(AccessLog, state=state)
    return app
