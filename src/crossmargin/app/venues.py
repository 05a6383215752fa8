"""One trader's accounts on several venues, seen together.

Cross margin ends at a venue's edge: each venue margins its own accounts by its own rulebook,
against its own collateral, and a profit on one venue does not support a loss on another. This
module evaluates each venue's accounts with the engine (:func:`evaluate_portfolio`), then reads
across them:

- exposure per underlying in coins (signed: long > 0; ``qty x contract size`` for a linear
  contract, divided by the mark for an inverse one), per leg and per venue;
- a cross-venue hedge: an underlying held long on one venue and short on another; its hedged
  size is the smaller of the long and short coins;
- what a venue's liquidation of its leg does to the others: the underlying moves until that
  leg's liquidation price (every venue's marks of the underlying move by the same factor,
  their basis held), the venue closes the leg, and the legs left on the other venues are
  naked: the trader's exposure after, and each surviving account's equity, maintenance margin,
  status and liquidation prices at that price, evaluated by the engine.

Equities are in each venue's account currency; totals are given per currency.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crossmargin.app.portfolio import (
    AccountResult,
    Portfolio,
    RulebookRef,
    evaluate_account,
    evaluate_portfolio,
    resolve,
)
from crossmargin.health import AccountHealth
from crossmargin.io.results import INLINE
from crossmargin.io.venues import VenueDocument, parse_venue_document, read_venue_document
from crossmargin.maths.pnl import size_of
from crossmargin.maths.status import Status
from crossmargin.model import CrossMarginError, Kind

__all__ = [
    "CrossVenueHedge",
    "Leg",
    "MultiVenueResult",
    "NakedLeg",
    "Survivor",
    "VenueAccount",
    "VenueLiquidation",
    "evaluate_venues",
    "load_venues",
    "parse_venues",
]


@dataclass(frozen=True)
class VenueAccount:
    """One account on one venue, margined there: the venue, its rulebook and the engine's
    result (health figures at the top level)."""

    venue: str
    rulebook: RulebookRef
    result: AccountResult = field(metadata=INLINE)


@dataclass(frozen=True)
class Leg:
    """A position seen across venues: ``coins`` is its signed size in the underlying."""

    venue: str
    account_id: str
    symbol: str
    underlying: str
    qty: float
    coins: float
    mark_price: float
    liquidation_price: float | None


@dataclass(frozen=True)
class CrossVenueHedge:
    """An underlying held long on some venues and short on others. ``hedged_coins`` is
    ``min(long, |short|)``, ``net_coins`` the trader's exposure across every venue."""

    underlying: str
    long_venues: tuple[str, ...]
    short_venues: tuple[str, ...]
    long_coins: float
    short_coins: float
    hedged_coins: float
    net_coins: float
    legs: tuple[Leg, ...]


@dataclass(frozen=True)
class NakedLeg:
    """A surviving leg after another venue closed its side: its mark at the trigger price
    and its liquidation price there (engine)."""

    venue: str
    account_id: str
    symbol: str
    coins: float
    mark_price: float
    liquidation_price: float | None


@dataclass(frozen=True)
class Survivor:
    """An account on another venue at the trigger price: its own figures (engine), in its
    account currency."""

    venue: str
    account_id: str
    currency: str
    equity: float
    maintenance_margin: float
    margin_ratio: float
    status: Status
    crash_distance: float | None


@dataclass(frozen=True)
class VenueLiquidation:
    """``venue`` liquidates ``account_id``'s ``symbol`` leg: the underlying's move to its
    liquidation price (``move``: fraction, up > 0), the trader's exposure in the underlying
    before and after, the legs left naked and every other venue's account holding the
    underlying, at that price."""

    venue: str
    account_id: str
    symbol: str
    underlying: str
    trigger_price: float
    move: float
    net_coins_before: float
    net_coins_after: float
    naked_legs: tuple[NakedLeg, ...]
    survivors: tuple[Survivor, ...]


@dataclass(frozen=True)
class MultiVenueResult:
    """The combined view: every account, equity totals per currency, cross-venue hedges and,
    for each leg of a cross-venue hedge that can be liquidated, what that does to the others."""

    trader: str | None
    accounts: tuple[VenueAccount, ...]
    equity_by_currency: Mapping[str, float]
    worst_status: Status
    hedges: tuple[CrossVenueHedge, ...]
    liquidations: tuple[VenueLiquidation, ...]


@dataclass(frozen=True)
class _Venue:
    name: str
    portfolio: Portfolio
    rulebook: RulebookRef
    results: tuple[AccountResult, ...]


def _coins(portfolio: Portfolio, symbol: str, qty: float, mark: float) -> float:
    instrument = portfolio.market.instruments[symbol]
    units = float(size_of(qty, instrument.contract_size, mark, instrument.inverse))
    return math.copysign(units, qty)


def _legs(venue: _Venue) -> list[Leg]:
    out = []
    for result in venue.results:
        for row in result.health.positions:
            instrument = venue.portfolio.market.instruments[row.symbol]
            if instrument.is_option or instrument.kind == Kind.SPOT:
                continue
            out.append(
                Leg(
                    venue.name,
                    result.health.id,
                    row.symbol,
                    instrument.underlying,
                    row.qty,
                    _coins(venue.portfolio, row.symbol, row.qty, row.mark_price),
                    row.mark_price,
                    row.liquidation_price,
                )
            )
    return out


def _hedges(legs: list[Leg]) -> list[CrossVenueHedge]:
    out = []
    for underlying in dict.fromkeys(leg.underlying for leg in legs):
        mine = [leg for leg in legs if leg.underlying == underlying]
        by_venue: dict[str, float] = {}
        for leg in mine:
            by_venue[leg.venue] = by_venue.get(leg.venue, 0.0) + leg.coins
        longs = tuple(v for v, c in by_venue.items() if c > 0)
        shorts = tuple(v for v, c in by_venue.items() if c < 0)
        if not longs or not shorts:
            continue
        long_coins = sum(by_venue[v] for v in longs)
        short_coins = sum(by_venue[v] for v in shorts)
        out.append(
            CrossVenueHedge(
                underlying,
                longs,
                shorts,
                long_coins,
                short_coins,
                min(long_coins, -short_coins),
                sum(by_venue.values()),
                tuple(mine),
            )
        )
    return out


def _moved(portfolio: Portfolio, underlying: str, factor: float) -> Portfolio:
    """The portfolio with every mark of ``underlying``'s contracts times ``factor``."""
    market = portfolio.market
    moved = {
        symbol: price * factor
        for symbol, price in market.prices.items()
        if symbol in market.instruments and market.instruments[symbol].underlying == underlying
    }
    p = portfolio
    return Portfolio(p.rulebook, market.with_prices(moved), p.accounts, p.pm, p.options)


def _survivor(venue: str, health: AccountHealth) -> Survivor:
    return Survivor(
        venue,
        health.id,
        health.currency,
        health.equity,
        health.maintenance_margin,
        health.margin_ratio,
        health.status,
        health.crash_distance,
    )


def _liquidation(leg: Leg, hedge: CrossVenueHedge, venues: list[_Venue]) -> VenueLiquidation | None:
    """What the liquidation of ``leg`` at its liquidation price does to the other venues."""
    if leg.liquidation_price is None:
        return None
    factor = leg.liquidation_price / leg.mark_price
    holders = {(other.venue, other.account_id) for other in hedge.legs if other.venue != leg.venue}
    naked = []
    survivors = []
    for venue in venues:
        if venue.name == leg.venue:
            continue
        moved = _moved(venue.portfolio, leg.underlying, factor)
        for account in moved.accounts:
            if (venue.name, account.id) not in holders:
                continue
            health = evaluate_account(moved, account).health
            survivors.append(_survivor(venue.name, health))
            for row in health.positions:
                instrument = moved.market.instruments[row.symbol]
                if instrument.underlying != leg.underlying or instrument.is_option:
                    continue
                naked.append(
                    NakedLeg(
                        venue.name,
                        account.id,
                        row.symbol,
                        _coins(moved, row.symbol, row.qty, row.mark_price),
                        row.mark_price,
                        row.liquidation_price,
                    )
                )
    closed = sum(
        other.coins
        for other in hedge.legs
        if (other.venue, other.account_id) == (leg.venue, leg.account_id)
    )
    return VenueLiquidation(
        leg.venue,
        leg.account_id,
        leg.symbol,
        leg.underlying,
        leg.liquidation_price,
        factor - 1.0,
        hedge.net_coins,
        hedge.net_coins - closed,
        tuple(naked),
        tuple(survivors),
    )


def _resolved(document: VenueDocument) -> list[tuple[str, Portfolio]]:
    out = []
    for name, doc in document.venues:
        try:
            out.append((name, resolve(doc)))
        except CrossMarginError as error:
            raise _located(error, document, name) from None
    return out


def _located(error: CrossMarginError, document: VenueDocument, venue: str) -> CrossMarginError:
    """An error of one venue's document, at its place in the multi-venue document."""
    found = re.match(r"accounts\[(\d+)\]", error.path)
    if found is None:
        return error.at(f"venues.{venue}")
    place = document.indices[venue][int(found.group(1))]
    return CrossMarginError(f"accounts[{place}]{error.path[found.end() :]}", error.reason)


def _marked(portfolios: list[tuple[str, Portfolio]], marks: Mapping[str, float]) -> list[_Venue]:
    """Each venue at ``marks``: a symbol's mark replaces its price, and every other contract of
    the same underlying moves by the same factor (the basis between venues held)."""
    factors: dict[str, float] = {}
    for _, portfolio in portfolios:
        market = portfolio.market
        for symbol, mark in marks.items():
            if symbol in market.instruments and market.prices.get(symbol, 0.0) > 0.0:
                underlying = market.instruments[symbol].underlying
                factors.setdefault(underlying, mark / market.prices[symbol])
    venues = []
    for name, portfolio in portfolios:
        for underlying, factor in factors.items():
            portfolio = _moved(portfolio, underlying, factor)
        exact = {s: m for s, m in marks.items() if s in portfolio.market.instruments}
        if exact:
            p = portfolio
            portfolio = Portfolio(
                p.rulebook, p.market.with_prices(exact), p.accounts, p.pm, p.options
            )
        venues.append(_Venue(name, portfolio, _ref(portfolio), ()))
    return venues


def _ref(portfolio: Portfolio) -> RulebookRef:
    r = portfolio.rulebook
    return RulebookRef(r.name, r.title or r.name, r.source, r.as_of)


def evaluate_venues(
    document: VenueDocument, marks: Mapping[str, float] | None = None
) -> MultiVenueResult:
    """The combined view of a multi-venue document (see the module docstring), at the
    document's prices or at ``marks`` (symbol to mark on any venue; see :func:`_marked`)."""
    venues = []
    for venue in _marked(_resolved(document), marks or {}):
        try:
            results = evaluate_portfolio(venue.portfolio).accounts
        except CrossMarginError as error:
            raise _located(error, document, venue.name) from None
        venues.append(_Venue(venue.name, venue.portfolio, venue.rulebook, results))
    accounts = tuple(VenueAccount(v.name, v.rulebook, r) for v in venues for r in v.results)
    totals: dict[str, float] = {}
    for account in accounts:
        health = account.result.health
        totals[health.currency] = totals.get(health.currency, 0.0) + health.equity
    legs = [leg for venue in venues for leg in _legs(venue)]
    hedges = _hedges(legs)
    liquidations = []
    for hedge in hedges:
        for leg in hedge.legs:
            outcome = _liquidation(leg, hedge, venues)
            if outcome is not None:
                liquidations.append(outcome)
    worst = max((a.result.health.status for a in accounts), default=Status.HEALTHY)
    return MultiVenueResult(
        document.trader,
        accounts,
        totals,
        Status(worst),
        tuple(hedges),
        tuple(liquidations),
    )


def parse_venues(data: Any, marks: Mapping[str, float] | None = None) -> MultiVenueResult:
    """A multi-venue document already decoded from JSON, validated and evaluated."""
    return evaluate_venues(parse_venue_document(data), marks)


def load_venues(path: str | Path) -> MultiVenueResult:
    """A multi-venue document file, read, validated and evaluated."""
    return evaluate_venues(read_venue_document(path))
