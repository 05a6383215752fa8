"""The book: price ingestion, portfolio documents (margined, or imported into the ledger), the
PM scenario grid and stress runs."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Body, Depends, Query, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

from crossmargin.app.portfolio import evaluate_portfolio, parse_portfolio
from crossmargin.app.scenarios import strategy_scenarios
from crossmargin.io.results import to_data
from crossmargin.lab.distributed import HISTORICAL, Scenario, stress_book
from crossmargin.ledger import Command, Deposit, Receipt, Trade, limits
from crossmargin.model import CrossMarginError
from crossmargin.service.security import Principal, require_operator
from crossmargin.service.state import ServiceState
from crossmargin.service.views import scenario_data

__all__ = ["router"]

router = APIRouter(tags=["book"])
Operator = Annotated[Principal, Depends(require_operator)]


class Prices(BaseModel):
    """A tick: marks by ledger instrument symbol, and their time (default: now)."""

    model_config = ConfigDict(extra="forbid")
    prices: dict[StrictStr, StrictFloat | StrictInt | StrictStr] = Field(
        description="Symbol to mark price (a number or decimal text).", min_length=1
    )
    at: AwareDatetime | None = Field(None, description="Time of the marks (ISO 8601 with zone).")


class Stress(BaseModel):
    """Scenarios to run over the whole book: uniform moves and historical days."""

    model_config = ConfigDict(extra="forbid")
    moves: list[StrictFloat | StrictInt] = Field(
        default_factory=list, max_length=100, description="Uniform price moves (fractions > -1)."
    )
    historical: list[StrictStr] = Field(
        default_factory=list, max_length=10, description=f"Historical days: {list(HISTORICAL)}."
    )
    top: int = Field(10, ge=0, le=1000, description="Accounts with the largest worst loss.")


def _state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


@router.post("/prices", summary="Ingest marks")
async def post_prices(body: Prices, request: Request, _: Operator) -> dict[str, Any]:
    """Apply marks: the ledger liquidates at them, changed account views are pushed on their
    risk channels and the tick on ``book``. ``changed``: how many accounts' figures moved."""
    arrived = time.perf_counter_ns()
    state = _state(request)
    at: datetime | None = body.at
    tick = await state.apply_prices(body.prices, at, arrived)
    return {
        "at": tick.at,
        "prices": dict(tick.prices),
        "changed": tick.moved,
        "accounts": state.accounts,
    }


@router.post("/portfolio", summary="Margin a portfolio document")
def post_portfolio(
    _: Operator,
    document: Annotated[dict[str, Any], Body(description="Portfolio document or ccxt structures.")],
    rulebook: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    """A portfolio document (positions in its own form or as ccxt ``fetch_positions``
    structures, balances as ccxt ``fetch_balance``) margined as ``crossmargin margin --json``
    reports it."""
    portfolio = parse_portfolio(document, rulebook)
    data: dict[str, Any] = to_data(evaluate_portfolio(portfolio))
    return data


@router.post("/portfolio/import", summary="Import a portfolio document into the ledger")
async def import_portfolio(
    request: Request,
    _: Operator,
    document: Annotated[dict[str, Any], Body(description="Portfolio document or ccxt structures.")],
) -> dict[str, Any]:
    """Open the document's accounts in the ledger: each deposits its balance in the ledger
    currency, then fills its positions at their entry prices (``price_source``: ``portfolio
    import``, paying the venue's taker fee as any fill does), under the ledger's own rulebook.
    The whole document is checked first (ledger instruments, the ledger currency only,
    accounts not yet in the ledger); an order the ledger refuses (beyond initial margin)
    leaves that account with its deposit and is reported. A retry of the same document is
    applied once."""
    state = _state(request)
    ledger = state.ledger
    portfolio = parse_portfolio(document, ledger.ctx.rules.margin_rulebook)
    digest = hashlib.sha256(
        json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()[:16]
    commands: list[tuple[str, Command]] = []
    for i, account in enumerate(portfolio.accounts):
        path = f"accounts[{i}]"
        limits.account_id(f"{path}.id", account.id)
        if state.known(account.id) and not _imported(state, digest, account.id):
            raise CrossMarginError(f"{path}.id", f"{account.id!r} is already in the ledger")
        for asset, amount in account.balances.items():
            if asset != ledger.ctx.currency and amount != 0:
                raise CrossMarginError(
                    f"{path}.balances.{asset}", f"the ledger holds {ledger.ctx.currency} only"
                )
        wallet = account.balances.get(ledger.ctx.currency, 0.0)
        if wallet <= 0:
            raise CrossMarginError(f"{path}.balances", f"needs a {ledger.ctx.currency} balance")
        key = f"import:{digest}:{account.id}"
        commands.append((path, Deposit(f"{key}:deposit", account.id, round(wallet, 8))))
        for j, p in enumerate(account.positions):
            where = f"{path}.positions[{j}]"
            instrument = ledger.ctx.instruments.get(p.symbol)
            if instrument is None or not instrument.is_derivative or instrument.inverse:
                raise CrossMarginError(f"{where}.symbol", f"not a ledger contract: {p.symbol!r}")
            trade = Trade(
                f"{key}:{p.symbol}",
                account.id,
                p.symbol,
                round(p.qty, 8),
                round(p.entry_price, 8),
                margin_mode=str(p.margin_mode),
                leverage=None if p.leverage is None else round(p.leverage, 4),
                price_source="portfolio import",
            )
            commands.append((where, trade))

    def work() -> list[Receipt | CrossMarginError]:
        results = ledger.execute([c for _, c in commands])
        state.after_command(
            [r for r in results if isinstance(r, Receipt)],
            [a.id for a in portfolio.accounts],
        )
        return results

    results = await state.run(work)
    refused = [
        {"field": f"{where}{'.' if e.path else ''}{e.path}", "reason": e.reason}
        for (where, _c), e in zip(commands, results, strict=True)
        if isinstance(e, CrossMarginError)
    ]
    return {
        "accounts": [state.view(a.id).to_data() for a in portfolio.accounts],
        "refused": refused,
    }


def _imported(state: ServiceState, digest: str, account_id: str) -> bool:
    """Whether this document's import already opened ``account_id`` (a retry)."""
    return state.ledger.store.command(f"import:{digest}:{account_id}:deposit") is not None


@router.get("/scenarios", summary="A PM rulebook's scenario grid")
def get_scenarios(
    _: Operator,
    rulebook: Annotated[str, Query(max_length=64)] = "deribit-pm",
    underlying: Annotated[str, Query(min_length=1, max_length=16)] = "BTC",
    leg: Annotated[list[str] | None, Query(max_length=20)] = None,
    spot: Annotated[float, Query(gt=0, le=1e9)] = 100_000.0,
) -> dict[str, Any]:
    """The grid of ``rulebook``, with the scenario P&L of a strategy given as legs
    (``QTY:perp`` or ``QTY:call|put:STRIKE:DAYS:VOL``)."""
    return scenario_data(strategy_scenarios(leg or [], underlying, spot, rulebook))


@router.post("/stress", summary="Stress the whole book")
def post_stress(body: Stress, request: Request, _: Operator) -> dict[str, Any]:
    """Every account re-margined under each scenario: accounts liquidated and shortfall per
    scenario, and the accounts with the largest worst loss."""
    scenarios = [Scenario.uniform(float(m)) for m in body.moves]
    scenarios += [Scenario.historical(day) for day in body.historical]
    if not scenarios:
        raise CrossMarginError("moves", "give at least one move or historical day")
    state = _state(request)
    with state.lock:
        book = state.ledger.risk_book()
    if book.accounts == 0:
        return {"scenarios": [], "accounts": 0, "worst": []}
    result = stress_book(book, scenarios)
    order = np.argsort(-result.worst_loss, kind="stable")[: body.top]
    return {
        "accounts": len(result.account_ids),
        "scenarios": [
            {
                "name": name,
                "liquidated": int(result.liquidated[s]),
                "shortfall": to_data(float(result.shortfall[s])),
            }
            for s, name in enumerate(result.scenarios)
        ],
        "worst": [
            {
                "account_id": result.account_ids[k],
                "worst_loss": to_data(float(result.worst_loss[k])),
                "worst_scenario": result.scenarios[int(result.worst_scenario[k])],
            }
            for k in order.tolist()
        ],
    }
