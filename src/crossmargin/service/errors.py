"""Errors as HTTP answers: every refusal is a 4xx JSON body naming the field and the reason.

Body: ``{"error": "<field>: <reason>", "field": "<field>", "reason": "<reason>"}`` (``field``
empty when the problem is the whole request). :class:`ApiError` is raised by routes and
dependencies; :func:`install` maps it, FastAPI's validation errors and
:class:`~crossmargin.model.CrossMarginError` (422, or 404 for an unknown account or id) onto
that body, and turns any unexpected error into a 500 with the same shape and no detail.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from crossmargin.model import CrossMarginError

__all__ = ["ERROR_RESPONSES", "ApiError", "error_body", "install"]

log = logging.getLogger("crossmargin.service")


class ApiError(Exception):
    """A request refused with ``status`` (4xx) because of ``field``: ``reason``."""

    def __init__(
        self,
        status: int,
        field: str,
        reason: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.status = status
        self.field = field
        self.reason = reason
        self.headers = dict(headers or {})

    @classmethod
    def of(cls, error: CrossMarginError, status: int = 422) -> ApiError:
        """The answer to bad input the engine or the ledger refused."""
        return cls(status, error.path, error.reason)


def error_body(field: str, reason: str) -> dict[str, Any]:
    """The JSON body of every error answer."""
    return {"error": f"{field}: {reason}" if field else reason, "field": field, "reason": reason}


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"description": text, "content": {"application/json": {}}}
    for code, text in (
        (401, "missing or unknown API key"),
        (403, "the key may not see this account"),
        (404, "unknown account or id"),
        (413, "request body too large"),
        (422, "bad input: the field and the reason"),
        (429, "rate limit exceeded"),
    )
}
"""Error answers every route may give, for the OpenAPI document."""


_UNION_TAGS = frozenset({"float", "int", "str", "bool", "none", "list", "dict"})
"""Names pydantic puts in an error's location for the member of a union that failed."""


def _location(loc: Sequence[Any]) -> str:
    """A pydantic error location as a field path (``prices.BTCUSDT``, ``moves[0]``)."""
    parts = [
        str(p)
        for p in loc
        if p not in ("body", "query", "path", "header")
        and not (isinstance(p, str) and (p in _UNION_TAGS or "[" in p))
    ]
    out = ""
    for part in parts:
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out or "body"


def install(app: FastAPI) -> None:
    """Install the error handlers on ``app``."""

    async def api_error(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, ApiError)
        return JSONResponse(
            error_body(error.field, error.reason), error.status, headers=error.headers
        )

    async def crossmargin_error(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, CrossMarginError)
        return JSONResponse(error_body(error.path, error.reason), 422)

    async def validation(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        problems = error.errors()
        first = problems[0] if problems else {}
        field = _location(first.get("loc", ()))
        reason = str(first.get("msg", "invalid request"))
        if first.get("type") == "json_invalid":
            field, reason = "body", "malformed JSON"
        body = error_body(field, reason)
        body["problems"] = [
            {"field": _location(p.get("loc", ())), "reason": str(p.get("msg", ""))}
            for p in problems[:20]
        ]
        return JSONResponse(body, 422)

    async def http_error(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, StarletteHTTPException)
        field = "body" if error.status_code in (400, 413) else ""
        return JSONResponse(
            error_body(field, str(error.detail)), error.status_code, headers=error.headers
        )

    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.error(
            "unexpected error",
            exc_info=error,
            extra={"path": request.url.path, "method": request.method},
        )
        return JSONResponse(error_body("", "internal error"), 500)

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(CrossMarginError, crossmargin_error)
    app.add_exception_handler(RequestValidationError, validation)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
