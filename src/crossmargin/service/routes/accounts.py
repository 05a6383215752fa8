"""Accounts: views, health, margin report, liquidation and bankruptcy prices, crash distance,
money in and out, fills, what-if orders, the equity curve and the PM scenario heat map.

An account key reaches only its own account's routes (403 elsewhere); the operator every
account. Commands carry an optional idempotency ``key`` (a retry with the same key and body is
applied once); bad input answers 422 naming the field and changes nothing.
"""

from __future__ import annotations

import functools
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from crossmargin.app.curve import equity_curve, moves
from crossmargin.app.portfolio import Portfolio, RulebookRef, evaluate_account
from crossmargin.app.whatif import check_order
from crossmargin.health import evaluate
from crossmargin.io.results import to_data
from crossmargin.ledger import Deposit, Receipt, Trade, Withdraw
from crossmargin.model import Account, CrossMarginError, MarginMode, Market, Order
from crossmargin.service.security import Principal, principal, require_account
from crossmargin.service.state import ServiceState
from crossmargin.service.views import pm_heatmap

__all__ = ["router"]

router = APIRouter(tags=["accounts"])

Number = StrictFloat | StrictInt | StrictStr
"""An exact amount: a JSON number or decimal text (``"100.5"``)."""
Caller = Annotated[Principal, Depends(require_account)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Money(_Body):
    """A deposit or withdrawal in the ledger currency."""

    amount: Number = Field(description="Amount (> 0) in the ledger currency.")
    key: StrictStr | None = Field(None, description="Idempotency key (default: a new one).")


class Fill(_Body):
    """A trade into the ledger (``Ledger.trade``)."""

    symbol: StrictStr
    qty: Number = Field(description="Signed contracts (> 0 buys).")
    price: Number | None = Field(None, description="Fill price (default: the mark).")
    maker: StrictBool = False
    margin_mode: Literal["cross", "isolated"] = "cross"
    leverage: Number | None = None
    price_source: StrictStr | None = None
    key: StrictStr | None = None


class WhatIfOrder(_Body):
    """A hypothetical order checked against the account (nothing is written)."""

    symbol: StrictStr
    qty: StrictFloat | StrictInt
    price: StrictFloat | StrictInt | None = None
    margin_mode: Literal["cross", "isolated"] = "cross"
    leverage: StrictFloat | StrictInt | None = None
    isolated_margin: StrictFloat | StrictInt | None = None
    fee_rate: StrictFloat | StrictInt = 0.0


def _state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


def _receipt(state: ServiceState, receipt: Receipt, account_id: str) -> dict[str, Any]:
    return {
        "key": receipt.key,
        "first_seq": receipt.first_seq,
        "duplicate": receipt.duplicate,
        "events": [{"kind": str(e.kind), **dict(e.body)} for e in receipt.events],
        "account": state.view(account_id).to_data(),
    }


async def _command(state: ServiceState, command: Any, account_id: str) -> dict[str, Any]:
    def work() -> Receipt:
        (result,) = state.ledger.execute([command])
        if isinstance(result, CrossMarginError):
            raise result
        state.after_command([result], [account_id])
        return result

    receipt = await state.run(work)
    return _receipt(state, receipt, account_id)


def _key(given: str | None, kind: str) -> str:
    """The command's idempotency key: the one given, else a new one."""
    return f"{kind}:{uuid.uuid4().hex}" if given is None else given


async def _priced(state: ServiceState, account_id: str) -> tuple[Account, Market]:
    """The account's model and market: as kept (no lock, no thread), else built on a worker
    thread."""
    found = state.kept(account_id)
    if found is None:
        found = await state.run(functools.partial(state.priced, account_id))
    return found


async def _portfolio(state: ServiceState, account_id: str) -> Portfolio:
    account, market = await _priced(state, account_id)
    return Portfolio(state.rulebook, market, (account,))


@router.get("/accounts", summary="Every account, riskiest first")
def list_accounts(
    request: Request, who: Annotated[Principal, Depends(principal)]
) -> list[dict[str, Any]]:
    """The views of every account (an account key: its own only), riskiest first."""
    views = _state(request).views()
    return [v.to_data() for v in views if who.may_see(v.account_id)]


@router.get("/accounts/{account_id}", summary="An account's view and health")
def get_account(account_id: str, request: Request, _: Caller) -> dict[str, Any]:
    """The account's view with the engine's full health (``health``)."""
    state = _state(request)
    state.require(account_id)
    with state.lock:
        health = evaluate(*state.priced(account_id))
        view = state.view(account_id)
    return {**view.to_data(), "health": to_data(health)}


@router.get("/accounts/{account_id}/margin", summary="Margin report")
async def margin_report(account_id: str, request: Request, _: Caller) -> dict[str, Any]:
    """The account as ``crossmargin margin --json`` reports it: the rulebook and the account's
    health, withdrawable amounts and positions (computed on the event loop: no thread hop, no
    lock)."""
    state = _state(request)
    state.require(account_id)
    portfolio = await _portfolio(state, account_id)
    result = evaluate_account(portfolio, portfolio.accounts[0])
    ref = portfolio.rulebook
    rulebook = RulebookRef(ref.name, ref.title or ref.name, ref.source, ref.as_of)
    return {"rulebook": to_data(rulebook), "accounts": [to_data(result)]}


@router.get("/accounts/{account_id}/liquidation", summary="Liquidation and bankruptcy prices")
def liquidation(account_id: str, request: Request, _: Caller) -> dict[str, Any]:
    """Each position's mark, liquidation and bankruptcy prices and distance to liquidation."""
    state = _state(request)
    state.require(account_id)
    view = state.view(account_id)
    return {"account_id": account_id, "positions": to_data(view.positions)}


@router.get("/accounts/{account_id}/crash", summary="Crash distance")
async def crash(account_id: str, request: Request, _: Caller) -> dict[str, Any]:
    """The smallest uniform move of every price that makes the account liquidatable, and the
    signed moves down and up (fractions; ``null``: none in range)."""
    state = _state(request)
    state.require(account_id)
    h = evaluate(*await _priced(state, account_id))
    return {
        "account_id": account_id,
        "crash_distance": to_data(h.crash_distance),
        "crash_move_down": to_data(h.crash_move_down),
        "crash_move_up": to_data(h.crash_move_up),
    }


@router.post("/accounts/{account_id}/deposits", summary="Deposit", status_code=201)
async def deposit(account_id: str, body: Money, request: Request, _: Caller) -> dict[str, Any]:
    """Credit the account (opened on its first deposit)."""
    key = _key(body.key, "deposit")
    return await _command(_state(request), Deposit(key, account_id, body.amount), account_id)


@router.post("/accounts/{account_id}/withdrawals", summary="Withdraw", status_code=201)
async def withdraw(account_id: str, body: Money, request: Request, _: Caller) -> dict[str, Any]:
    """Pay out of the account, at most what keeps its initial margin covered."""
    state = _state(request)
    state.require(account_id)
    key = _key(body.key, "withdraw")
    return await _command(state, Withdraw(key, account_id, body.amount), account_id)


@router.post("/accounts/{account_id}/fills", summary="Trade", status_code=201)
async def fill(account_id: str, body: Fill, request: Request, _: Caller) -> dict[str, Any]:
    """Fill a trade into the ledger (refused when it adds risk beyond initial margin)."""
    state = _state(request)
    state.require(account_id)
    command = Trade(
        _key(body.key, "fill"),
        account_id,
        body.symbol,
        body.qty,
        body.price,
        body.maker,
        body.margin_mode,
        body.leverage,
        body.price_source,
    )
    return await _command(state, command, account_id)


@router.post("/accounts/{account_id}/what-if", summary="Check an order")
async def what_if(
    account_id: str, body: WhatIfOrder, request: Request, _: Caller
) -> dict[str, Any]:
    """The verdict on a hypothetical order and the account's health before and after it."""
    state = _state(request)
    state.require(account_id)
    mode = MarginMode(body.margin_mode)
    order = Order(
        body.symbol,
        float(body.qty),
        None if body.price is None else float(body.price),
        mode,
        None if body.leverage is None else float(body.leverage),
        None if body.isolated_margin is None else float(body.isolated_margin),
        float(body.fee_rate),
    )
    portfolio = await _portfolio(state, account_id)
    if order.symbol not in portfolio.market.instruments:
        raise CrossMarginError("symbol", f"unknown instrument {order.symbol!r}")
    result = check_order(portfolio, account_id, order)
    data: dict[str, Any] = to_data(result)
    return data


@router.get("/accounts/{account_id}/curve", summary="Equity against price, cross and isolated")
def curve(
    account_id: str,
    request: Request,
    _: Caller,
    symbol: Annotated[str | None, Query(max_length=64)] = None,
    span: Annotated[float, Query(gt=0, lt=1)] = 0.5,
    points: Annotated[int, Query(ge=3, le=401)] = 61,
) -> dict[str, Any]:
    """The account's equity and maintenance margin at every mark moved by the same fraction
    (from ``-span`` to ``+span``), with all positions cross and with each isolated."""
    state = _state(request)
    state.require(account_id)
    account, market = state.priced(account_id)
    data: dict[str, Any] = to_data(equity_curve(account, market, symbol, moves(span, points)))
    return data


@router.get("/accounts/{account_id}/pm-heatmap", summary="PM scenario P&L heat map")
def heatmap(
    account_id: str,
    request: Request,
    _: Caller,
    rulebook: Annotated[str, Query(max_length=64)] = "deribit-pm",
) -> dict[str, Any]:
    """The account's P&L in each scenario of a portfolio-margin rulebook's grid (price moves
    by vol moves), as the PM model revalues and counts it."""
    state = _state(request)
    state.require(account_id)
    account, market = state.priced(account_id)
    return pm_heatmap(account, market, rulebook)
