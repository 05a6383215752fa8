"""Multi-venue accounts over HTTP: evaluate a multi-venue document, or keep one per trader and
see it at the service's live marks.

``POST /venues/evaluate`` answers the combined view of a document
(:mod:`crossmargin.app.venues`) at its own prices. ``PUT /traders/{trader}/venues`` keeps a
document (in the process) and ``GET /traders/{trader}/venues`` evaluates it at the ledger's
current marks: a marked symbol takes its mark and the other venues' contracts of the same
underlying move by the same factor. ``GET /traders`` lists the traders kept. With ``--demo``
the bundled ``demo-venues.json`` (a BTC hedge across Binance and Hyperliquid) is kept as trader
``demo-trader``. Operator keys only: a multi-venue document spans accounts.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, FastAPI, Request, Response

from crossmargin.app.venues import evaluate_venues
from crossmargin.io.results import to_data
from crossmargin.io.venues import VenueDocument, parse_venue_document
from crossmargin.service.errors import ApiError
from crossmargin.service.security import Principal, require_operator
from crossmargin.service.state import ServiceState

__all__ = ["DEMO_TRADER", "router", "start"]

router = APIRouter(tags=["venues"])
Operator = Annotated[Principal, Depends(require_operator)]
Document = Annotated[dict[str, Any], Body(description="A multi-venue document.")]

DEMO_TRADER = "demo-trader"


def _kept(request: Request) -> dict[str, VenueDocument]:
    kept: dict[str, VenueDocument] = request.app.state.venue_documents
    return kept


def _marks(state: ServiceState) -> dict[str, float]:
    return {symbol: float(price) for symbol, price in dict(state.ledger.state.prices).items()}


@router.post("/venues/evaluate", summary="Evaluate a multi-venue document")
def evaluate_document(body: Document, _: Operator) -> dict[str, Any]:
    """Every account margined on its venue, the cross-venue hedges and what each venue's
    liquidation of its leg leaves on the others."""
    data: dict[str, Any] = to_data(evaluate_venues(parse_venue_document(body)))
    return data


@router.put("/traders/{trader}/venues", status_code=204)
def keep_document(trader: str, body: Document, request: Request, _: Operator) -> Response:
    """Keep the trader's multi-venue document (replacing the one kept)."""
    document = parse_venue_document(body)
    evaluate_venues(document)
    _kept(request)[trader] = document
    return Response(status_code=204)


@router.get("/traders")
def list_traders(request: Request, _: Operator) -> list[str]:
    """The traders with a kept multi-venue document."""
    return sorted(_kept(request))


@router.get("/traders/{trader}/venues")
def trader_venues(trader: str, request: Request, _: Operator) -> dict[str, Any]:
    """The trader's combined view at the service's current marks."""
    document = _kept(request).get(trader)
    if document is None:
        raise ApiError(404, "trader", f"no multi-venue document for {trader!r}")
    data: dict[str, Any] = to_data(evaluate_venues(document, _marks(request.app.state.service)))
    return data


async def start(app: FastAPI) -> None:
    """An empty store of documents; the demo's document under ``--demo``."""
    app.state.venue_documents = {}
    state: ServiceState = app.state.service
    if state.settings.demo:
        text = resources.files("crossmargin.io").joinpath("examples/demo-venues.json").read_text()
        app.state.venue_documents[DEMO_TRADER] = parse_venue_document(json.loads(text))
