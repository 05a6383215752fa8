"""Liquidation cascades: forced orders move prices, which force more orders, across venues.

A population of accounts (synthetic, or a given book) sits on one or several venues, each a
:class:`~crossmargin.book.RiskBook` under its margin rulebook and liquidated by its liquidation
rulebook (``rules/liquidation/*.toml``). Prices are per underlying (BTC, ETH, ...). Each step:

1. every venue's mark is the cross-venue index of ``lag`` steps ago (the index averages the
   venues' traded prices weighted by their open interest; before the start it is the
   reference price);
2. each venue re-margins its book at those marks (``apply_prices``) and liquidates what breaches
   maintenance as its rulebook says (the ledger's sequence, :mod:`crossmargin.ledger.
   liquidation`, in vector form): an isolated position under its trigger closes whole; a cross
   account closes its largest-maintenance position (in chunks above the venue's notional) until
   its equity is back at ``target`` x maintenance, or everything below the backstop multiple,
   whose remaining wallet goes to the fund; the penalty (capped at the equity left) goes to the
   insurance fund. Accounts are taken worst margin first while their gross notional fits the
   venue's throughput cap for the step; the rest wait;
3. an account left negative with nothing open (or an isolated position closed below zero) is
   bankrupt: the fund pays, then ADL closes profitable opposite positions at the bankruptcy price
   (:func:`crossmargin.maths.adl.bankruptcy_price_of`) in queue order
   (:func:`crossmargin.maths.adl.adl_rank`) or pro rata by size, as the venue's rule says; the
   rest is bad debt, account by account in id order as the ledger's pass goes (one step
   without impact gives the ledger's liquidations, fund, ADL and bad debt: tested). The ADL
   overshoot is the notional a production queue that closes whole
   positions would close beyond what the deficit needs (methodology 3.1: Hyperliquid's greedy
   queue);
4. the forced flow is one metaorder per venue and underlying, executed step by step: its
   traded price is the shocked price moved by the square-root impact
   (:func:`crossmargin.maths.impact.sqrt_impact`) of the net forced notional so far, against a
   daily volume of ``turnover`` x the venue's open interest x ``depth`` (impact of the executed
   part of a metaorder grows as the square root of it, Donier and Bonart 2015; it is not let
   decay within the run); then every venue's price moves ``arbitrage`` of the way (in log) to
   the index, and keeps that offset.

The run stops at a fixed point (no account breaches and no price moves) or at the horizon.
Money is float64 in each venue's account currency (USDT and USDC count 1:1 in the totals);
risk figures come from the book, never from formulas here.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crossmargin.book.riskbook import (
    BookColumns,
    BookParams,
    PositionRisk,
    RiskBook,
    Valuation,
)
from crossmargin.lab.synthetic import REFERENCE_PRICES, synthetic_book
from crossmargin.maths.adl import adl_rank, bankruptcy_price_of
from crossmargin.maths.impact import sqrt_impact
from crossmargin.model import Account, CrossMarginError, Instrument, MarginMode, Market, Position
from crossmargin.model.instruments import Kind
from crossmargin.rules import load_rulebook
from crossmargin.rules.venue import VenueRules, load_venue

__all__ = [
    "REFERENCE_CASE",
    "CascadeConfig",
    "CascadeResult",
    "VenueCascade",
    "VenueSpec",
    "load_config",
    "run_cascade",
]

Float = NDArray[np.float64]
Int = NDArray[np.intp]

REFERENCE_CASE = "oct-2025"
"""The bundled reference case (``lab/cascades/oct-2025.toml``): 10 October 2025."""

_FLOOR = 0.01
"""Impact never takes a price below this fraction of the shocked price."""
_TOL = 1e-12
_EPS = 1e-9
"""Money (account currency) below which a margin or a deficit is rounding: a book that closed
every position keeps a few ulps of maintenance margin from its incremental sums."""


@dataclass(frozen=True)
class VenueSpec:
    """One venue of a cascade: its liquidation rulebook (name or TOML path), its share of the
    synthetic accounts and its own depth multiple (on top of the cascade's ``depth``)."""

    rules: str
    share: float = 1.0
    depth: float = 1.0


@dataclass(frozen=True)
class CascadeConfig:
    """A cascade: population, shock and market.

    ``shock``: relative move of each underlying's traded price at step 0 (missing: 0).
    ``depth``: multiple of normal depth (0.02: a book 50 times thinner). ``throughput``: most
    gross notional a venue liquidates in a step, as a fraction of its open interest (inf: no
    cap). ``lag``: steps the marks trail the index. ``leverage``: every position's size times
    this (same collateral). ``turnover``: daily volume over open interest; ``sigma_daily``: daily
    volatility of each underlying; ``impact_y``: the square-root law's Y. ``arbitrage``: share
    of a venue's gap to the index closed each step. ``insurance``: each venue's starting fund as
    a fraction of its open interest. Synthetic accounts that breach maintenance before the shock
    (at ``leverage`` 1) are left out, as a venue's book holds none.
    """

    venues: tuple[VenueSpec, ...] = (VenueSpec("binance"),)
    accounts: int = 1000
    underlyings: tuple[str, ...] = ("BTC", "ETH", "SOL")
    shock: Mapping[str, float] = field(default_factory=lambda: {"BTC": -0.05})
    depth: float = 1.0
    throughput: float = math.inf
    lag: int = 0
    steps: int = 900
    seed: int = 0
    leverage: float = 1.0
    mean_positions: float = 2.0
    turnover: float = 1.0
    sigma_daily: Mapping[str, float] = field(
        default_factory=lambda: {"BTC": 0.0153, "ETH": 0.0354, "SOL": 0.045}
    )
    impact_y: float = 1.0
    arbitrage: float = 0.5
    insurance: float = 0.005

    def __post_init__(self) -> None:
        checks: dict[str, bool] = {
            "accounts": self.accounts >= 1,
            "steps": self.steps >= 1,
            "lag": self.lag >= 0,
            "depth": math.isfinite(self.depth) and self.depth > 0,
            "throughput": self.throughput > 0,
            "leverage": math.isfinite(self.leverage) and self.leverage > 0,
            "mean_positions": math.isfinite(self.mean_positions) and self.mean_positions >= 1,
            "turnover": math.isfinite(self.turnover) and self.turnover > 0,
            "impact_y": math.isfinite(self.impact_y) and self.impact_y >= 0,
            "arbitrage": 0 <= self.arbitrage <= 1,
            "insurance": math.isfinite(self.insurance) and self.insurance >= 0,
            "venues": bool(self.venues),
            "underlyings": bool(self.underlyings),
        }
        for name, ok in checks.items():
            if not ok:
                raise CrossMarginError(name, f"out of range: {getattr(self, name)!r}")
        for name, move in self.shock.items():
            if name not in self.underlyings:
                raise CrossMarginError(f"shock.{name}", "not an underlying of the cascade")
            if not (math.isfinite(move) and move > -1):
                raise CrossMarginError(f"shock.{name}", f"must be a move above -100%, got {move}")
        for name in self.underlyings:
            sigma = self.sigma_daily.get(name)
            if sigma is None or not (math.isfinite(sigma) and sigma > 0):
                raise CrossMarginError(f"sigma_daily.{name}", "need a positive daily volatility")
        for k, venue in enumerate(self.venues):
            if not (math.isfinite(venue.share) and venue.share > 0):
                raise CrossMarginError(f"venues[{k}].share", "must be positive")
            if not (math.isfinite(venue.depth) and venue.depth > 0):
                raise CrossMarginError(f"venues[{k}].depth", "must be positive")


@dataclass(frozen=True)
class VenueCascade:
    """What a cascade did on one venue (money in ``currency``; per-step series over the steps
    run, prices per underlying).

    ``breached_accounts``: accounts ever under the trigger; ``liquidated_accounts``: those the
    engine closed something of; ``liquidations``: close orders. ``long_notional`` and
    ``short_notional`` split the liquidated notional by the side of the position closed.
    ``deficits`` (losses beyond the accounts' collateral) = ``fund_paid`` + ``adl_amount`` +
    ``bad_debt``; ``insurance_end`` = ``insurance_start`` + ``penalties`` + ``backstop`` -
    ``fund_paid``. ``adl_notional`` is what ADL closed, ``adl_overshoot`` the notional a
    whole-position queue would close beyond that, ``adl_counterparties`` the accounts hit.
    ``liquidated`` lists the ids of the accounts liquidated (sorted).
    """

    venue: str
    title: str
    currency: str
    accounts: int
    open_interest: float
    breached_accounts: int
    liquidated_accounts: int
    liquidations: int
    liquidated_notional: float
    long_notional: float
    short_notional: float
    penalties: float
    backstop: float
    deficits: float
    fund_paid: float
    adl_amount: float
    adl_notional: float
    adl_overshoot: float
    adl_counterparties: int
    bad_debt: float
    insurance_start: float
    insurance_end: float
    liquidated_per_step: tuple[float, ...]
    insurance_path: tuple[float, ...]
    prices: Mapping[str, tuple[float, ...]]
    marks: Mapping[str, tuple[float, ...]]
    liquidated: tuple[str, ...]


@dataclass(frozen=True)
class CascadeResult:
    """A cascade's outcome: ``steps`` run, ``rounds`` (steps that liquidated anything),
    whether it ended at a ``fixed_point``, the index path and its lowest point relative to the
    reference price (``drawdown``, < 0 for a fall) per underlying, totals over the venues
    (``liquidated_share`` of the starting open interest, ``long_share`` of the liquidated
    notional, the largest notional liquidated in one step) and each venue's figures."""

    config: CascadeConfig
    steps: int
    rounds: int
    fixed_point: bool
    reference_prices: Mapping[str, float]
    index: Mapping[str, tuple[float, ...]]
    drawdown: Mapping[str, float]
    open_interest: float
    liquidated_notional: float
    liquidated_share: float
    long_share: float
    peak_step_notional: float
    adl_overshoot: float
    bad_debt: float
    venues: tuple[VenueCascade, ...]


@dataclass
class _Tally:
    """A venue's running sums (money in its currency)."""

    breached: set[int] = field(default_factory=set)
    liquidated: set[int] = field(default_factory=set)
    counterparties: set[int] = field(default_factory=set)
    liquidations: int = 0
    long: float = 0.0
    short: float = 0.0
    penalties: float = 0.0
    backstop: float = 0.0
    deficits: float = 0.0
    fund_paid: float = 0.0
    adl_amount: float = 0.0
    adl_notional: float = 0.0
    adl_overshoot: float = 0.0
    bad_debt: float = 0.0
    per_step: list[float] = field(default_factory=list)
    fund_path: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class _Floats:
    """A venue's liquidation rules as floats."""

    trigger: float
    target: float
    penalty: float
    backstop: float | None
    chunk: float | None
    chunk_above: float
    max_steps: int
    covers: bool
    pro_rata: bool

    @classmethod
    def of(cls, rules: VenueRules) -> _Floats:
        return cls(
            float(rules.trigger),
            float(rules.target),
            float(rules.penalty_rate),
            None if rules.backstop_ratio is None else float(rules.backstop_ratio),
            None if rules.chunk_fraction is None else float(rules.chunk_fraction),
            float(rules.chunk_above),
            rules.max_liquidation_steps,
            rules.insurance_covers,
            rules.adl == "pro_rata",
        )


class _Queue:
    """The ADL queue of one step: profitable positions, best rank first (ties by account),
    with the contracts each still holds and, for isolated ones, their margin."""

    def __init__(self, book: RiskBook, gone: set[int]) -> None:
        risk = book.position_risk()
        size = book.params.contract_size[risk.instrument]
        cross = book.values().cross_equity
        rank = adl_rank(
            risk.unrealized_pnl, risk.qty * size * risk.entry, risk.notional, cross[risk.account]
        )
        keep = np.flatnonzero(risk.unrealized_pnl > 0)
        order = keep[np.lexsort((risk.account[keep], -rank[keep]))]
        self.account = risk.account[order].astype(np.intp)
        self.instrument = risk.instrument[order].astype(np.intp)
        self.qty = risk.qty[order].copy()
        self.entry = risk.entry[order]
        self.pnl = risk.unrealized_pnl[order]
        self.isolated = risk.isolated[order]
        self.margin = np.where(self.isolated, risk.equity[order] - self.pnl, 0.0)
        self.left = np.abs(self.qty)
        self.key = self.account * len(book.params.symbols) + self.instrument
        self.gone = gone
        self.whole = np.where(np.isin(self.key, list(gone)), 0.0, np.abs(self.qty))

    def overshoot(self, rows: Int, need: float) -> float:
        """Contracts a queue that closes whole positions (in ``rows`` order; ``gone`` holds
        the positions it has closed so far in the run) closes beyond ``need``."""
        open_rows = rows[self.whole[rows] > 0]
        sizes = self.whole[open_rows]
        reach = np.cumsum(sizes)
        last = (
            len(sizes) - 1
            if not sizes.size or reach[-1] < need
            else int(np.searchsorted(reach, need))
        )
        closed = open_rows[: last + 1]
        self.whole[closed] = 0.0
        self.gone.update(self.key[closed].tolist())
        return float(reach[last] - need) if sizes.size and reach[-1] >= need else 0.0

    def against(self, instrument: int, sign: float, bankrupt: int) -> Int:
        """Rows holding ``instrument`` opposite to ``sign`` with contracts left, in order."""
        hit: Int = np.flatnonzero(
            (self.instrument == instrument)
            & (np.sign(self.qty) == -sign)
            & (self.account != bankrupt)
            & (self.left > 0)
        )
        return hit


class _Venue:
    """One venue's book, rules, fund and tallies during a run."""

    def __init__(
        self,
        rules: VenueRules,
        params: BookParams,
        columns: BookColumns,
        underlying: Int,
        insurance: float,
        n_under: int,
    ) -> None:
        self.rules = rules
        self.r = _Floats.of(rules)
        self.book = RiskBook(params, columns)
        self.ids = self.book.account_ids
        self.currency = params.assets[params.currency]
        self.underlying = underlying
        self.wallet = columns.balances[:, params.currency].copy()
        n_inst = len(params.symbols)
        self.n_inst = n_inst
        self.leverage = dict(
            zip(
                (columns.account.astype(np.int64) * n_inst + columns.instrument).tolist(),
                columns.leverage.tolist(),
                strict=True,
            )
        )
        self.symbol_rank = np.argsort(np.argsort(np.array(params.symbols))).astype(np.float64)
        risk = self.book.position_risk()
        self.open_interest = float(risk.notional.sum())
        self.oi_by_underlying = np.bincount(
            underlying[risk.instrument], weights=risk.notional, minlength=n_under
        )[:n_under]
        btc = params.assets.index("BTC") if "BTC" in params.assets else -1
        self.btc_asset = btc >= 0 and bool(columns.balances[:, btc].any())
        self.fund = insurance * self.open_interest
        self.fund_start = self.fund
        self.marks = params.mark.copy()
        self.tally = _Tally()
        self.waiting = 0
        self.gone: set[int] = set()

    def set_marks(self, prices: Float, btc: int | None) -> None:
        """Mark every instrument at its underlying's price (and BTC collateral at BTC's)."""
        marks = np.where(self.underlying >= 0, prices[self.underlying], self.marks)
        moved = np.flatnonzero((marks != self.marks) & (self.underlying >= 0))
        update: dict[str, float] = {
            self.book.params.symbols[i]: float(marks[i]) for i in moved.tolist()
        }
        if self.btc_asset and btc is not None and moved.size:
            update["BTC"] = float(prices[btc])
        if update:
            self.book.apply_prices(update)
            self.marks = marks

    def step(self, cap: float, flow: Float) -> float:
        """Liquidate what breaches now (within ``cap`` gross notional); add the signed forced
        notional per underlying to ``flow``; return the notional closed."""
        book, r = self.book, self.r
        listed = book.liquidatable(r.trigger)
        values = book.values()
        risk = book.position_risk(listed)
        hit = self._breaching(listed, risk, values)
        self.tally.breached.update(hit.tolist())
        self.waiting = int(hit.size)
        if not hit.size:
            return 0.0
        risk = _only(risk, hit)
        with np.errstate(divide="ignore", invalid="ignore"):
            cover = values.equity[hit] / values.maintenance_margin[hit]
        hit = hit[np.argsort(np.nan_to_num(cover, nan=-np.inf), kind="stable")]
        if math.isfinite(cap):
            ordered = np.sort(hit)
            gross = np.bincount(
                np.searchsorted(ordered, risk.account), risk.notional, minlength=len(hit)
            )[np.searchsorted(ordered, hit)]
            hit = hit[np.cumsum(gross) - gross < cap]
        closed = 0.0
        fills: dict[int, list[tuple[int, float]]] = {}
        deficits: list[tuple[int, float, list[tuple[int, float]] | None]] = []
        active = np.sort(hit)
        risk = _only(risk, active)
        substep = 0
        while active.size:
            substep += 1
            closed += self._round(active, risk, values, substep, flow, fills, deficits)
            values = book.values()
            risk = book.position_risk(active)
            cross_mm, has_cross = self._cross(active, risk)
            cross_eq = values.cross_equity[active]
            bankrupt = ~has_cross & (cross_eq < -_EPS)
            for a, d in zip(active[bankrupt].tolist(), (-cross_eq[bankrupt]).tolist(), strict=True):
                deficits.append((a, d, None))
            active = active[has_cross & (cross_eq < r.target * cross_mm)]
            risk = _only(risk, active)
        self.tally.liquidated.update(hit.tolist())
        queue: _Queue | None = None
        deficits.sort(key=lambda d: (self.ids[d[0]], d[2] is None))
        for a, deficit, isolated in deficits:
            if queue is None and deficit > self.fund * r.covers:
                queue = _Queue(book, self.gone)
            self._bankrupt(a, deficit, isolated is None, isolated or fills.get(a, []), queue)
        return closed

    def _breaching(self, hit: Int, risk: PositionRisk, values: Valuation) -> Int:
        """``hit`` (with its positions' ``risk``) less the accounts whose cross maintenance
        margin is rounding left by closed positions (not a breach)."""
        if not hit.size:
            return hit
        cross_mm, _ = self._cross(hit, risk)
        cross_eq = values.cross_equity[hit]
        local = np.searchsorted(hit, risk.account)
        under = risk.isolated & (risk.equity < self.r.trigger * risk.maintenance_margin)
        isolated = np.bincount(local[under], minlength=len(hit)) > 0
        real = (cross_eq < self.r.trigger * cross_mm) & (cross_mm > _EPS)
        kept: Int = hit[real | (cross_eq < -_EPS) | isolated]
        return kept

    def _cross(self, rows: Int, risk: PositionRisk) -> tuple[Float, NDArray[np.bool_]]:
        """Cross maintenance margin and whether any cross position is open, per account."""
        local = np.searchsorted(rows, risk.account)
        cross = ~risk.isolated
        mm: Float = np.bincount(
            local[cross], risk.maintenance_margin[cross], minlength=len(rows)
        ).astype(np.float64)
        count = np.bincount(local[cross], minlength=len(rows))
        return mm, count > 0

    def _round(
        self,
        rows: Int,
        risk: PositionRisk,
        values: Valuation,
        substep: int,
        flow: Float,
        fills: dict[int, list[tuple[int, float]]],
        deficits: list[tuple[int, float, list[tuple[int, float]] | None]],
    ) -> float:
        """One close per account of ``rows`` (all cross positions below the backstop), and
        every isolated position under its trigger; ``risk`` and ``values`` are their figures
        now."""
        book, r = self.book, self.r
        cross_mm, has_cross = self._cross(rows, risk)
        cross_eq = values.cross_equity[rows]
        local = np.searchsorted(rows, risk.account)
        closes: list[tuple[int, float, float]] = []
        iso = np.flatnonzero(risk.isolated & (risk.equity < r.trigger * risk.maintenance_margin))
        closes.extend((k, 1.0, max(float(risk.equity[k]), 0.0)) for k in iso.tolist())
        bad = has_cross & (cross_eq < r.target * cross_mm)
        backstop = (
            bad & (cross_eq < r.backstop * cross_mm)
            if r.backstop is not None
            else np.zeros(len(rows), dtype=bool)
        )
        cross = np.flatnonzero(~risk.isolated)
        everything = cross[backstop[local[cross]]]
        closes.extend((k, 1.0, 0.0) for k in everything.tolist())
        partial = cross[(bad & ~backstop)[local[cross]]]
        if partial.size:
            order = np.lexsort(
                (
                    -self.symbol_rank[risk.instrument[partial]],
                    -risk.maintenance_margin[partial],
                    local[partial],
                )
            )
            ranked = partial[order]
            first = ranked[np.r_[True, local[ranked][1:] != local[ranked][:-1]]]
            for k in first.tolist():
                chunked = (
                    r.chunk is not None
                    and float(risk.notional[k]) > r.chunk_above
                    and substep < r.max_steps
                )
                equity = max(float(cross_eq[local[k]]), 0.0)
                closes.append((k, r.chunk if chunked and r.chunk is not None else 1.0, equity))
        closed = 0.0
        touched: set[int] = set()
        for k, fraction, room in closes:
            a = int(risk.account[k])
            i = int(risk.instrument[k])
            qty = float(risk.qty[k])
            notional = float(risk.notional[k]) * fraction
            pnl = float(risk.unrealized_pnl[k]) * fraction
            penalty = 0.0 if backstop[local[k]] else min(r.penalty * notional, room)
            flow[self.underlying[i]] -= math.copysign(notional, qty)
            if qty > 0:
                self.tally.long += notional
            else:
                self.tally.short += notional
            self.tally.liquidations += 1
            self.tally.penalties += penalty
            self.fund += penalty
            closed += notional
            if risk.isolated[k]:
                left = float(risk.equity[k]) - penalty
                self.wallet[a] += max(left, 0.0)
                if left < 0:
                    deficits.append((a, -left, [(i, qty)]))
            else:
                fills.setdefault(a, []).append((i, qty * fraction))
                self.wallet[a] += pnl - penalty
            self._resize(a, i, qty * (1.0 - fraction), float(risk.entry[k]))
            touched.add(a)
        for a in sorted(set(rows[backstop].tolist())):
            rest = max(float(self.wallet[a]), 0.0)
            self.wallet[a] -= rest
            self.fund += rest
            self.tally.backstop += rest
        if touched:
            names = sorted(touched)
            book.set_balances([self.ids[a] for a in names], self.currency, self.wallet[names])
        return closed

    def _resize(
        self, a: int, i: int, qty: float, entry: float, isolated: float | None = None
    ) -> None:
        """Leave account ``a`` holding ``qty`` contracts of instrument ``i`` (0: none), cross
        or with ``isolated`` margin."""
        symbol = self.book.params.symbols[i]
        if qty == 0.0:
            self.book.remove_position(self.ids[a], symbol)
            return
        lev = self.leverage.get(a * self.n_inst + i, math.nan)
        mode = MarginMode.CROSS if isolated is None else MarginMode.ISOLATED
        position = Position(symbol, qty, entry, mode, isolated, None if math.isnan(lev) else lev)
        self.book.set_position(self.ids[a], position)

    def _bankrupt(
        self,
        a: int,
        deficit: float,
        cross: bool,
        fills: list[tuple[int, float]],
        queue: _Queue | None,
    ) -> None:
        """Fund, then ADL, then bad debt for ``deficit`` of account ``a``."""
        t, r = self.tally, self.r
        t.deficits += deficit
        cover = min(deficit, max(self.fund, 0.0)) if r.covers else 0.0
        self.fund -= cover
        t.fund_paid += cover
        rest = deficit - cover
        if rest > 0 and queue is not None:
            rest = self._deleverage(a, rest, fills, queue)
        t.bad_debt += rest if rest > _EPS else 0.0
        if cross:
            self.wallet[a] += deficit
            self.book.set_balances([self.ids[a]], self.currency, self.wallet[[a]])

    def _deleverage(
        self, a: int, rest: float, fills: list[tuple[int, float]], queue: _Queue
    ) -> float:
        """Cover ``rest`` by closing opposite profitable positions at the bankruptcy price of
        each of ``a``'s fills (largest first); return what is left."""
        t, params = self.tally, self.book.params
        touched: set[int] = set()
        for i, qa in sorted(fills, key=lambda f: -abs(f[1])):
            if rest <= 0:
                break
            mark = float(self.marks[i])
            cs = float(params.contract_size[i])
            price = bankruptcy_price_of(mark, rest, qa, cs, bool(params.inverse[i]))
            unit = abs(price - mark) * cs
            rows = queue.against(i, math.copysign(1.0, qa), a)
            if unit == 0 or not rows.size:
                continue
            need = min(abs(qa), rest / unit)
            sizes = queue.left[rows]
            if self.r.pro_rata:
                takes = np.minimum(sizes, need * sizes / sizes.sum())
            else:
                before = np.cumsum(sizes) - sizes
                takes = np.clip(need - before, 0.0, sizes)
                t.adl_overshoot += queue.overshoot(rows, need) * cs * mark
            for row, take in zip(rows.tolist(), takes.tolist(), strict=True):
                if take <= 0 or rest <= 0:
                    continue
                haircut = min(take * unit, rest)
                other = int(queue.account[row])
                held = abs(float(queue.qty[row]))
                gain = float(queue.pnl[row]) * take / held - haircut
                queue.left[row] -= take
                left = math.copysign(float(queue.left[row]), float(queue.qty[row]))
                if queue.isolated[row]:
                    queue.margin[row] += gain
                    margin = float(queue.margin[row])
                    self._resize(other, i, left, float(queue.entry[row]), margin)
                    if left == 0.0:
                        self.wallet[other] += margin
                else:
                    self.wallet[other] += gain
                    self._resize(other, i, left, float(queue.entry[row]))
                rest -= haircut
                t.adl_amount += haircut
                t.adl_notional += take * cs * mark
                t.counterparties.add(other)
                touched.add(other)
        if touched:
            names = sorted(touched)
            self.book.set_balances([self.ids[o] for o in names], self.currency, self.wallet[names])
        return max(rest, 0.0)

    def result(
        self, prices: Sequence[Float], marks: Sequence[Float], names: Sequence[str]
    ) -> VenueCascade:
        """The venue's figures after the run."""
        t = self.tally
        return VenueCascade(
            venue=self.rules.name,
            title=self.rules.title,
            currency=self.currency,
            accounts=self.book.accounts,
            open_interest=self.open_interest,
            breached_accounts=len(t.breached),
            liquidated_accounts=len(t.liquidated),
            liquidations=t.liquidations,
            liquidated_notional=t.long + t.short,
            long_notional=t.long,
            short_notional=t.short,
            penalties=t.penalties,
            backstop=t.backstop,
            deficits=t.deficits,
            fund_paid=t.fund_paid,
            adl_amount=t.adl_amount,
            adl_notional=t.adl_notional,
            adl_overshoot=t.adl_overshoot,
            adl_counterparties=len(t.counterparties),
            bad_debt=t.bad_debt,
            insurance_start=self.fund_start,
            insurance_end=self.fund,
            liquidated_per_step=tuple(t.per_step),
            insurance_path=tuple(t.fund_path),
            prices=_paths(prices, names),
            marks=_paths(marks, names),
            liquidated=tuple(sorted(self.ids[a] for a in t.liquidated)),
        )


def _only(risk: PositionRisk, rows: Int) -> PositionRisk:
    """The positions of ``risk`` held by accounts ``rows`` (sorted)."""
    keep = np.isin(risk.account, rows)
    return PositionRisk(*(getattr(risk, f.name)[keep] for f in fields(risk)))


def _paths(rows: Sequence[Float], names: Sequence[str]) -> dict[str, tuple[float, ...]]:
    table = np.array(rows).reshape(len(rows), len(names))
    return {name: tuple(table[:, u].tolist()) for u, name in enumerate(names)}


def _reference_price(underlying: str) -> float:
    price = REFERENCE_PRICES.get(underlying, REFERENCE_PRICES.get(f"{underlying}USDT"))
    if price is None:
        raise CrossMarginError("underlyings", f"no reference price for {underlying!r}")
    return price


def venue_market(rules: VenueRules, underlyings: Sequence[str]) -> Market:
    """The venue's margin rulebook restricted to one linear perpetual per underlying, at the
    synthetic reference prices (and BTC, for BTC collateral)."""
    rulebook = load_rulebook(rules.margin_rulebook)
    chosen: dict[str, Instrument] = {}
    for name in underlyings:
        found = [
            i
            for i in rulebook.instruments.values()
            if i.kind == Kind.PERPETUAL and not i.inverse and i.underlying == name
        ]
        if not found:
            raise CrossMarginError(
                "underlyings", f"{rules.name} ({rules.margin_rulebook}) lists no {name} perpetual"
            )
        chosen[found[0].symbol] = found[0]
    prices = {s: _reference_price(i.underlying) for s, i in chosen.items()}
    prices["BTC"] = _reference_price("BTC")
    full = rulebook.market(prices)
    return Market(chosen, prices, full.currency, full.collateral, full.margin_call_ratio)


def _subset(columns: BookColumns, keep: Int) -> BookColumns:
    """Accounts ``keep`` (sorted indices) with their positions, re-indexed from 0."""
    mask = np.isin(columns.account, keep)
    return BookColumns(
        tuple(columns.account_ids[k] for k in keep.tolist()),
        columns.balances[keep],
        np.searchsorted(keep, columns.account[mask]).astype(np.int32),
        columns.instrument[mask],
        columns.qty[mask],
        columns.entry[mask],
        columns.isolated[mask],
        columns.isolated_margin[mask],
        columns.leverage[mask],
    )


def synthetic_population(
    rules: VenueRules, config: CascadeConfig, accounts: int, seed: int
) -> tuple[Market, BookParams, BookColumns]:
    """A venue's synthetic accounts (:func:`crossmargin.lab.synthetic.synthetic_book` on
    :func:`venue_market`), less those under the trigger before the shock; BTC collateral
    counts as cash where the venue takes none. Sizes are not yet scaled by ``leverage``."""
    market = venue_market(rules, config.underlyings)
    params, columns = synthetic_book(market, accounts, seed, config.mean_positions)
    btc = params.assets.index("BTC")
    if market.collateral and "BTC" not in market.collateral:
        balances = columns.balances.copy()
        balances[:, params.currency] += balances[:, btc] * _reference_price("BTC")
        balances[:, btc] = 0.0
        columns = replace(columns, balances=balances)
    healthy = np.setdiff1d(
        np.arange(accounts), RiskBook(params, columns).liquidatable(float(rules.trigger))
    )
    return market, params, _subset(columns, healthy.astype(np.intp))


def _levered(columns: BookColumns, leverage: float) -> BookColumns:
    return columns if leverage == 1.0 else replace(columns, qty=columns.qty * leverage)


def run_cascade(
    config: CascadeConfig,
    book: tuple[Market, Sequence[Account]] | None = None,
    progress: Callable[[int], None] | None = None,
) -> CascadeResult:
    """Run ``config`` to a fixed point or its horizon. ``book`` (a market and its accounts)
    replaces the synthetic population of the first venue (then the only one); ``progress``
    is called with the number of steps done."""
    names = config.underlyings
    venues: list[_Venue] = []
    if book is not None:
        market, accounts = book
        if len(config.venues) != 1:
            raise CrossMarginError("venues", "a given book sits on one venue")
        rules = load_venue(config.venues[0].rules)
        params = BookParams.from_market(market, [a for acc in accounts for a in acc.balances])
        columns = BookColumns.from_accounts(accounts, params)
        reference = {n: _market_price(market, params, n) for n in names}
        venues.append(_venue(config, rules, market, params, columns))
    else:
        reference = {n: _reference_price(n) for n in names}
        total = sum(v.share for v in config.venues)
        for k, spec in enumerate(config.venues):
            rules = load_venue(spec.rules)
            n = max(1, round(config.accounts * spec.share / total))
            market, params, columns = synthetic_population(rules, config, n, config.seed * 1000 + k)
            venues.append(_venue(config, rules, market, params, columns))
    return _run(config, venues, reference, progress)


def _market_price(market: Market, params: BookParams, name: str) -> float:
    """The book's mark of its first instrument on underlying ``name``."""
    for symbol in params.symbols:
        if market.instruments[symbol].underlying == name and symbol in market.prices:
            return float(market.prices[symbol])
    raise CrossMarginError("underlyings", f"the book holds no {name} contract")


def _venue(
    config: CascadeConfig,
    rules: VenueRules,
    market: Market,
    params: BookParams,
    columns: BookColumns,
) -> _Venue:
    """A venue of ``config`` holding ``columns`` (sizes times ``config.leverage``)."""
    names = config.underlyings
    index = {n: k for k, n in enumerate(names)}
    under = np.empty(len(params.symbols), dtype=np.intp)
    for k, symbol in enumerate(params.symbols):
        name = market.instruments[symbol].underlying
        if name in index:
            under[k] = index[name]
        elif symbol in market.prices:
            raise CrossMarginError(f"prices.{symbol}", f"underlying {name!r} not in the cascade")
        else:
            under[k] = -1
    levered = _levered(columns, config.leverage)
    return _Venue(rules, params, levered, under, config.insurance, len(names))


def _run(
    config: CascadeConfig,
    venues: list[_Venue],
    reference: Mapping[str, float],
    progress: Callable[[int], None] | None,
) -> CascadeResult:
    names = config.underlyings
    n_u, n_v = len(names), len(venues)
    p0 = np.array([reference[n] for n in names])
    shock = np.array([config.shock.get(n, 0.0) for n in names])
    btc = names.index("BTC") if "BTC" in names else None
    oi = np.zeros((n_v, n_u))
    for v, venue in enumerate(venues):
        got = venue.oi_by_underlying
        oi[v, : len(got)] = got
    weight = oi / np.where(oi.sum(axis=0) > 0, oi.sum(axis=0), 1.0)
    weight[:, oi.sum(axis=0) == 0] = 1.0 / n_v
    sigma = np.array([config.sigma_daily[n] for n in names])
    depth = np.array([spec.depth for spec in config.venues])[:n_v, None] * config.depth
    volume = np.maximum(config.turnover * oi * depth, 1e-300)
    shocked = np.tile(p0 * (1.0 + shock), (n_v, 1))
    forced = np.zeros((n_v, n_u))
    offset = np.zeros((n_v, n_u))
    traded = shocked.copy()
    index_path: list[Float] = []
    prices: list[list[Float]] = [[] for _ in venues]
    marks: list[list[Float]] = [[] for _ in venues]
    rounds = 0
    fixed = False
    steps = 0
    for t in range(config.steps):
        index_path.append((weight * traded).sum(axis=0))
        mark = index_path[t - config.lag] if t >= config.lag else p0
        flows = np.zeros((n_v, n_u))
        liquidated = 0.0
        waiting = 0
        for v, venue in enumerate(venues):
            venue.set_marks(mark, btc)
            cap = config.throughput * venue.open_interest
            done = venue.step(cap, flows[v])
            waiting += venue.waiting
            venue.tally.per_step.append(done)
            venue.tally.fund_path.append(venue.fund)
            liquidated += done
            prices[v].append(traded[v].copy())
            marks[v].append(mark.copy())
        rounds += liquidated > 0
        before = traded.copy()
        forced += flows
        move = sqrt_impact(forced, volume, sigma, config.impact_y)
        traded = shocked * np.maximum(1.0 + move, _FLOOR) * np.exp(offset)
        gap = np.log((weight * traded).sum(axis=0)) - np.log(traded)
        offset += config.arbitrage * gap
        traded *= np.exp(config.arbitrage * gap)
        steps = t + 1
        if progress is not None:
            progress(steps)
        settled = np.abs(traded / before - 1).max() < _TOL
        marked = np.abs(mark / index_path[t] - 1).max() < _TOL
        if waiting == 0 and settled and marked:
            fixed = True
            break
    results = tuple(v.result(prices[k], marks[k], names) for k, v in enumerate(venues))
    total_oi = sum(v.open_interest for v in results)
    liquidated_total = sum(v.liquidated_notional for v in results)
    longs = sum(v.long_notional for v in results)
    per_step = np.sum([v.liquidated_per_step for v in results], axis=0)
    index_table = np.array(index_path)
    return CascadeResult(
        config=config,
        steps=steps,
        rounds=rounds,
        fixed_point=fixed,
        reference_prices=dict(reference),
        index={n: tuple(index_table[:, u].tolist()) for u, n in enumerate(names)},
        drawdown={n: float(index_table[:, u].min() / p0[u] - 1) for u, n in enumerate(names)},
        open_interest=total_oi,
        liquidated_notional=liquidated_total,
        liquidated_share=liquidated_total / total_oi if total_oi else 0.0,
        long_share=longs / liquidated_total if liquidated_total else 0.0,
        peak_step_notional=float(per_step.max()) if per_step.size else 0.0,
        adl_overshoot=sum(v.adl_overshoot for v in results),
        bad_debt=sum(v.bad_debt for v in results),
        venues=results,
    )


def _cascades() -> Any:
    return resources.files("crossmargin.lab").joinpath("cascades")


def load_config(name_or_path: str | Path, **overrides: Any) -> tuple[CascadeConfig, dict[str, Any]]:
    """A cascade TOML (a bundled name such as ``oct-2025`` or a path): its config, with
    ``overrides`` (config fields) applied, and its ``[reference]`` table (published figures
    and their sources)."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        bundled = _cascades().joinpath(f"{name_or_path}.toml")
        if not bundled.is_file():
            raise CrossMarginError("config", f"no bundled cascade {name_or_path!r}")
        text = bundled.read_text(encoding="utf-8")
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise CrossMarginError("config", f"cannot read {path}: {error.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise CrossMarginError("config", f"not TOML: {error}") from None
    known = {f for f in CascadeConfig.__dataclass_fields__}
    table = dict(data.get("cascade", {}))
    unknown = sorted(set(table) - known)
    if unknown:
        raise CrossMarginError(f"cascade.{unknown[0]}", "unknown key")
    if "venues" in table:
        table["venues"] = tuple(VenueSpec(**dict(v)) for v in table["venues"])
    if "underlyings" in table:
        table["underlyings"] = tuple(table["underlyings"])
    for key in ("throughput",):
        if table.get(key) == "inf":
            table[key] = math.inf
    table.update({k: v for k, v in overrides.items() if v is not None})
    try:
        config = CascadeConfig(**table)
    except TypeError as error:
        raise CrossMarginError("cascade", str(error)) from None
    return config, dict(data.get("reference", {}))
