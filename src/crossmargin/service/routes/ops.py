"""Operations: Prometheus metrics, liveness and readiness (no key needed)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from crossmargin.model import CrossMarginError
from crossmargin.service.state import ServiceState

__all__ = ["router"]

router = APIRouter(tags=["operations"])


def _state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


@router.get("/metrics", response_class=Response, summary="Prometheus metrics")
def metrics(request: Request) -> Response:
    """The service's metrics in Prometheus' text format."""
    return Response(_state(request).metrics.render(), media_type=CONTENT_TYPE_LATEST)


@router.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    """The process answers (from its event loop, needing no worker thread)."""
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness", responses={503: {"description": "not ready"}})
def readyz(request: Request) -> Any:
    """Ready when the ledger database answers."""
    state = _state(request)
    try:
        state.ledger.store.last_seq()
    except CrossMarginError as error:
        return JSONResponse({"status": "unavailable", "reason": error.reason}, 503)
    return {"status": "ready", "accounts": state.accounts, "events": state.ledger.state.seq}
