"""Monte Carlo of a trader's accounts under cross, isolated, portfolio and as-given margin.

The trader is one or more venue accounts (each account of each document is its own cross
account; a hedge split over venues breaks when one leg is liquidated). For a chunk of paths,
each venue account becomes one :class:`~crossmargin.book.RiskBook` whose accounts are the
paths and whose instruments are per-path copies of the account's instruments, so one
re-margin (:meth:`RiskBook.set_marks`) values every path at its own prices; every figure comes
from the book.

Two passes per chunk and mode, over the same paths:

* liquidation: at each step, what the venue's liquidation rulebook liquidates
  (:meth:`RiskBook.liquidatable` at its trigger) is liquidated as
  :mod:`crossmargin.ledger.liquidation` does it, at the mark: an isolated position under the
  trigger closes whole; a cross account under ``target`` x maintenance closes its position
  with the largest maintenance margin, one at a time (everything, the rest to the fund, under
  the backstop ratio); each close pays the liquidation penalty (rate x notional, capped at the
  equity left) and a wallet left negative with no cross position is covered by the fund (the
  trader's loss stops at the account). Gives the liquidation and ruin probabilities, the loss
  distribution and the time to the first liquidation.
* survival: no liquidation applied; each path's largest shortfall of cross equity under
  ``trigger`` x cross maintenance and of each isolated position's equity under its own. A
  path survives added collateral ``a`` (per cross pool and isolated position) exactly when
  ``a`` covers each shortfall (before a first liquidation the path does not depend on the
  collateral), so survival at any allocation and the capital for 99% survival are read off
  these shortfalls over the same paths with no further simulation.

Portfolio margin (``pm``): the cross account under the document's portfolio-margin rulebook,
else the bundled one built on its rulebook (as ``crossmargin compare --modes`` picks it). At
each step every path's PM maintenance margin is the rulebook's at that path's prices
(:mod:`crossmargin.pm.linear`: the risk array built once, scaled by the price relatives), its
equity the book's cross equity; under ``trigger`` x PM maintenance the whole account closes at
the mark (:class:`PmPathBook` says why), and the survival shortfalls are ``trigger`` x PM
maintenance less equity. A venue account without a PM rulebook the simulation covers leaves the
mode out, and :attr:`SimulationResult.portfolio_margin` says why.

Limits: linear futures and perpetuals; collateral in stable assets (the book holds asset prices
fixed along a path); options are not simulated; portfolio margin under ``okx-pm`` (other PM
models are reported as not available), dated futures not ageing along a path.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from crossmargin.app.portfolio import Portfolio
from crossmargin.book.riskbook import BookColumns, BookParams, RiskBook
from crossmargin.health import evaluate
from crossmargin.io.results import to_data
from crossmargin.lab.paths import CHUNK, YEAR_SECONDS, PathModel, chunk_count, growth_chunk
from crossmargin.lab.report import (
    Report,
    Section,
    equity_fan,
    liquidation_probability,
    loss_histogram,
)
from crossmargin.model import Account, CrossMarginError, MarginMode, Market, OptionData
from crossmargin.pm.linear import linear_pm, unsupported
from crossmargin.rules import PmRulebook, bundled_pm_rulebooks, load_pm_rulebook
from crossmargin.rules.venue import bundled_venues, load_venue

__all__ = [
    "MODES",
    "ChunkParts",
    "ChunkRunner",
    "LiquidationTerms",
    "ModeResult",
    "PathBook",
    "PmPathBook",
    "Shortfalls",
    "SimulationResult",
    "SimulationRun",
    "VenueAccount",
    "chunk_pass",
    "in_mode",
    "simulate",
    "survival",
    "trader_accounts",
    "underlyings",
]

Float = NDArray[np.float64]
Progress = Callable[[int, int], None]

MODES = ("given", "cross", "isolated", "pm")
"""``given``: the document's modes and margins; ``cross``: every position cross, isolated
margins added to the wallet; ``isolated``: every position isolated, the wallet split over the
positions without a margin of their own in proportion to their initial margin; ``pm``: the
cross account under its portfolio-margin rulebook (where the venue account has one)."""

SURVIVAL = 0.99
RUIN = 0.01
"""A path is ruined when its equity at the horizon is at most this share of the start."""

FAN = (0.05, 0.25, 0.5, 0.75, 0.95)
SAMPLES = 50
"""Steps sampled for the equity fan and the liquidation curve."""


@dataclass(frozen=True)
class LiquidationTerms:
    """How a venue liquidates (from its liquidation rulebook; see the ledger): trigger and
    target multiples of maintenance margin, backstop ratio (None: no backstop), penalty rate."""

    venue: str
    trigger: float = 1.0
    target: float = 1.0
    backstop: float | None = None
    penalty_rate: float = 0.0


@dataclass(frozen=True)
class VenueAccount:
    """One cross account of the trader on one venue, with its market and liquidation terms."""

    name: str
    account: Account
    market: Market
    terms: LiquidationTerms
    pm: PmRulebook | None = None
    """The portfolio-margin rulebook of the ``pm`` mode (None: ``pm_reason`` says why)."""
    options: OptionData | None = None
    pm_reason: str = ""


def _terms(rulebook: str) -> LiquidationTerms:
    """The bundled liquidation rulebook whose margin rulebook is ``rulebook`` (else trigger
    and target at maintenance, no penalty)."""
    for name in bundled_venues():
        rules = load_venue(name)
        if rules.margin_rulebook == rulebook:
            backstop = None if rules.backstop_ratio is None else float(rules.backstop_ratio)
            return LiquidationTerms(
                rules.name,
                float(rules.trigger),
                float(rules.target),
                backstop,
                float(rules.penalty_rate),
            )
    return LiquidationTerms(rulebook)


def _pm_rulebook(portfolio: Portfolio) -> tuple[PmRulebook | None, str]:
    """The document's portfolio-margin rulebook, else the first bundled one built on its
    rulebook (as ``crossmargin compare --modes`` picks it), or why there is none to simulate."""
    name = portfolio.rulebook.name
    if portfolio.pm is not None:
        chosen = portfolio.pm
    else:
        built = [load_pm_rulebook(n) for n in bundled_pm_rulebooks()]
        on = [b for b in built if b.standard_rulebook == name]
        if not on:
            return None, f"no bundled portfolio-margin rulebook is built on {name}"
        chosen = on[0]
    reason = unsupported(chosen)
    return (None, reason) if reason is not None else (chosen, "")


def trader_accounts(portfolios: Sequence[Portfolio]) -> tuple[VenueAccount, ...]:
    """Every account of every portfolio, checked for what the simulation covers."""
    out = []
    for d, portfolio in enumerate(portfolios):
        terms = _terms(portfolio.rulebook.name)
        pm, reason = _pm_rulebook(portfolio)
        options = portfolio.options or OptionData(datetime.now(UTC))
        market = portfolio.market
        for a, account in enumerate(portfolio.accounts):
            where = f"documents[{d}].accounts[{a}]"
            if not account.positions:
                raise CrossMarginError(f"{where}.positions", "nothing to simulate")
            for p, position in enumerate(account.positions):
                instrument = market.instruments[position.symbol]
                if not instrument.is_derivative or instrument.is_option:
                    raise CrossMarginError(
                        f"{where}.positions[{p}]", "only futures and perpetuals are simulated"
                    )
                if instrument.inverse:
                    raise CrossMarginError(
                        f"{where}.positions[{p}]", "inverse contracts are not simulated"
                    )
            for asset in account.balances:
                if asset != market.currency and not market.collateral_rule(asset).stable:
                    raise CrossMarginError(
                        f"{where}.balances.{asset}", "only stable collateral is simulated"
                    )
            name = account.id if len(portfolios) == 1 else f"{portfolio.rulebook.name}:{account.id}"
            out.append(VenueAccount(name, account, market, terms, pm, options, reason))
    if not out:
        raise CrossMarginError("accounts", "no account to simulate")
    return tuple(out)


def underlyings(vas: Sequence[VenueAccount]) -> tuple[str, ...]:
    """The underlyings the venue accounts' positions follow, sorted."""
    return tuple(
        sorted(
            {va.market.instruments[p.symbol].underlying for va in vas for p in va.account.positions}
        )
    )


def _wallet(account: Account) -> float:
    """Cash collateral in the account currency (stable assets at face value)."""
    return sum(account.balances.values())


def in_mode(va: VenueAccount, mode: str) -> VenueAccount:
    """``va`` with its positions in ``mode`` (see :data:`MODES`)."""
    account, market = va.account, va.market
    currency = market.currency
    positions = account.positions
    if mode == "given":
        return va
    if mode in ("cross", "pm"):
        moved = sum(p.isolated_margin or 0.0 for p in positions)
        cross = [replace(p, margin_mode=MarginMode.CROSS, isolated_margin=None) for p in positions]
        balances = {**account.balances, currency: account.balances.get(currency, 0.0) + moved}
        return replace(va, account=Account(account.id, balances, cross))
    if mode == "isolated":
        health = evaluate(Account(account.id, {}, list(positions)), market)
        im = np.array([h.initial_margin for h in health.positions])
        free = [k for k, p in enumerate(positions) if not p.is_isolated]
        wallet = _wallet(account)
        total = float(im[free].sum()) if free else 0.0
        out = []
        for k, p in enumerate(positions):
            share = wallet * float(im[k]) / total if total > 0 else wallet / max(len(free), 1)
            margin = p.isolated_margin if p.is_isolated else share
            out.append(replace(p, margin_mode=MarginMode.ISOLATED, isolated_margin=margin))
        return replace(va, account=Account(account.id, {} if free else account.balances, out))
    raise CrossMarginError("mode", f"one of {MODES}, got {mode!r}")


def _params(va: VenueAccount, n: int) -> tuple[BookParams, BookParams, bool]:
    """The account's market compiled (its held instruments only), and the parameters of the
    path book: the same when every instrument can be moved by rescaling (linear, no
    size-scaled rate), else ``n`` copies of the instruments (path ``p`` holds copies
    ``p * k`` to ``p * k + k - 1``); and whether it rescales."""
    held = {p.symbol: va.market.instruments[p.symbol] for p in va.account.positions}
    m = va.market
    market = Market(held, m.prices, m.currency, m.collateral, m.margin_call_ratio)
    base = BookParams.from_market(market, va.account.balances)
    schedule = base.schedule
    rescale = not (schedule.initial_rate_per_size.any() or schedule.maintenance_rate_per_size.any())
    if rescale:
        return base, base, True
    k = len(base.symbols)
    rows = np.tile(np.arange(k), n)
    params = replace(
        base,
        symbols=tuple(f"{s}#{p}" for p in range(n) for s in base.symbols),
        contract_size=base.contract_size[rows],
        inverse=base.inverse[rows],
        settle=base.settle[rows],
        schedule=schedule.take(rows),
        mark=base.mark[rows],
    )
    return base, params, False


class PathBook:
    """One venue account on each of ``n`` paths: a risk book whose accounts are the paths.

    A path's prices move its positions where that is exact (:meth:`RiskBook.set_sizes`: one
    book on the account's own instruments, marks fixed, each position ``g`` times its size
    entered at its entry over ``g`` for a price relative ``g``); otherwise each path holds its
    own copies of the instruments and its marks move (:meth:`RiskBook.set_marks`)."""

    def __init__(self, va: VenueAccount, n: int, column: Mapping[str, int]) -> None:
        self.va = va
        self.n = n
        base, params, self.rescale = _params(va, n)
        self.k = len(base.symbols)
        self.mark0 = base.mark
        instruments = va.market.instruments
        self.asset = np.array(
            [column[instruments[s].underlying] for s in base.symbols], dtype=np.intp
        )
        order = {s: j for j, s in enumerate(base.symbols)}
        positions = va.account.positions
        slot = np.array([order[p.symbol] for p in positions], dtype=np.int32)
        currency = params.assets.index(va.market.currency)
        balances = np.zeros((n, len(params.assets)))
        for asset, amount in va.account.balances.items():
            balances[:, params.assets.index(asset)] = amount
        iso = np.array([p.is_isolated for p in positions])
        margin = np.array([p.isolated_margin or 0.0 for p in positions])
        self.qty0 = np.zeros(self.k)
        self.entry0 = np.ones(self.k)
        self.qty0[slot] = [p.qty for p in positions]
        self.entry0[slot] = [p.entry_price for p in positions]
        q = len(positions)
        self.ids = tuple(f"p{p}" for p in range(n))
        copies = 0 if self.rescale else self.k
        columns = BookColumns(
            self.ids,
            balances,
            np.repeat(np.arange(n, dtype=np.int32), q),
            (np.arange(n, dtype=np.int32)[:, None] * copies + slot).reshape(-1),
            np.tile(self.qty0[slot], n),
            np.tile(self.entry0[slot], n),
            np.tile(iso, n),
            np.tile(margin, n),
            np.tile([math.nan if p.leverage is None else p.leverage for p in positions], n),
        )
        self.book = RiskBook(params, columns)
        self.isolated = bool(iso.any())
        self.currency = va.market.currency
        self.wallet = balances[:, currency].copy()
        self.symbols = params.symbols
        self._layout()

    def _layout(self) -> None:
        """Each open position's path and base instrument, in the book's order."""
        columns = self.book.columns()
        self.owner = columns.account.astype(np.intp)
        self.base = columns.instrument.astype(np.intp) % self.k

    def move(self, growth: Float) -> None:
        """Every path at price relatives ``growth`` (n, assets) of the underlyings."""
        if self.rescale:
            g = growth[self.owner, self.asset[self.base]]
            self.book.set_sizes(self.qty0[self.base] * g, self.entry0[self.base] / g)
        else:
            self.book.set_marks((self.mark0 * growth[:, self.asset]).reshape(-1))

    def _credit(self, rows: NDArray[np.intp], amounts: Float) -> None:
        self.wallet[rows] += amounts
        self.book.set_balances(
            [self.ids[r] for r in rows.tolist()], self.currency, self.wallet[rows]
        )

    def liquidate(self) -> NDArray[np.intp]:
        """Liquidate what the venue would at the current marks; returns the paths hit."""
        terms = self.va.terms
        hit = self.book.liquidatable(terms.trigger)
        if not hit.size:
            return hit
        risk = self.book.position_risk(hit)
        bad = np.flatnonzero(
            risk.isolated & (risk.equity < terms.trigger * risk.maintenance_margin)
        )
        if bad.size:
            owner = risk.account[bad].astype(np.intp)
            proceeds = np.maximum(risk.equity[bad] - terms.penalty_rate * risk.notional[bad], 0.0)
            for a, i in zip(owner.tolist(), risk.instrument[bad].tolist(), strict=True):
                self.book.remove_position(self.ids[a], self.symbols[i])
            rows, at = np.unique(owner, return_inverse=True)
            self._credit(rows, np.bincount(at, proceeds).astype(np.float64))
            self._layout()
        live = hit
        while live.size:
            live = self._cross_round(live)
        return hit

    def _cross_round(self, rows: NDArray[np.intp]) -> NDArray[np.intp]:
        """One close per account of ``rows`` still under the target; returns those closed."""
        terms = self.va.terms
        risk = self.book.position_risk(rows)
        cross = ~risk.isolated
        local = np.searchsorted(rows, risk.account)
        mm = np.bincount(local[cross], risk.maintenance_margin[cross], minlength=len(rows))
        has = np.bincount(local[cross], minlength=len(rows)) > 0
        equity = self.book.values().cross_equity[rows]
        under = has & (equity < terms.target * mm)
        if not under.any():
            return rows[:0]
        backstop = under & (
            (equity < terms.backstop * mm) if terms.backstop is not None else np.zeros_like(under)
        )
        closes: list[tuple[int, int]] = []
        credit = np.zeros(len(rows))
        for j in np.flatnonzero(cross).tolist():
            a = int(local[j])
            if backstop[a]:
                closes.append((a, j))
        mine = np.flatnonzero(cross & under[local] & ~backstop[local])
        if mine.size:
            order = np.lexsort((-risk.maintenance_margin[mine], local[mine]))
            picked = mine[order]
            first = np.flatnonzero(np.diff(local[picked], prepend=-1) != 0)
            for j in picked[first].tolist():
                a = int(local[j])
                penalty = terms.penalty_rate * float(risk.notional[j])
                credit[a] += float(risk.unrealized_pnl[j]) - min(penalty, max(equity[a], 0.0))
                closes.append((a, j))
        for a, j in closes:
            self.book.remove_position(self.ids[int(rows[a])], self.symbols[int(risk.instrument[j])])
        self._layout()
        credit[backstop] = -self.wallet[rows[backstop]]
        left = np.bincount(local[cross], minlength=len(rows)) - np.bincount(
            [a for a, _ in closes], minlength=len(rows)
        )
        after = self.wallet[rows] + credit
        credit = np.where((left == 0) & (after < 0.0), -self.wallet[rows], credit)
        touched = np.flatnonzero(under)
        self._credit(rows[touched], credit[touched])
        out: NDArray[np.intp] = rows[under & (left > 0)]
        return out

    def shortfalls(self) -> tuple[Float, Float]:
        """At the current marks, with nothing liquidated: the cross shortfall per path
        (``trigger`` x cross MM less cross equity; -inf without cross positions) and each
        isolated position's (n, k) (-inf where none)."""
        trigger = self.va.terms.trigger
        if not self.isolated:
            values = self.book.values()
            dc = trigger * values.maintenance_margin - values.cross_equity
            return dc, np.full((self.n, self.k), -np.inf)
        risk = self.book.position_risk()
        cross = ~risk.isolated
        owner = risk.account.astype(np.intp)
        mm = np.bincount(owner[cross], risk.maintenance_margin[cross], minlength=self.n)
        has = np.bincount(owner[cross], minlength=self.n) > 0
        equity = self.book.values().cross_equity
        dc = np.where(has, trigger * mm - equity, -np.inf)
        di = np.full((self.n, self.k), -np.inf)
        iso = np.flatnonzero(risk.isolated)
        di[owner[iso], risk.instrument[iso] % self.k] = (
            trigger * risk.maintenance_margin[iso] - risk.equity[iso]
        )
        return dc, di

    def equity(self) -> Float:
        """Every path's equity (account currency)."""
        out: Float = self.book.values().equity
        return out


class PmPathBook(PathBook):
    """One cross venue account on each of ``n`` paths under its portfolio-margin rulebook.

    Equity is the book's cross equity at the path's prices (collateral plus P&L); the PM
    maintenance margin is the rulebook's at the same prices (:mod:`crossmargin.pm.linear`).
    Under ``trigger`` x PM maintenance the whole account is closed at the mark, paying the
    liquidation penalty on its notional (capped at the equity left), the fund covering a
    negative wallet. Venues reduce a PM account step by step (Deribit until equity is above
    maintenance again, OKX and Bybit by tier); which legs a PM venue closes first, and what
    each close does to the requirement, is not published, so the account is closed whole: the
    loss on a liquidated path is an upper bound of an incremental one, and the liquidation
    probability, the time to the first liquidation and the survival figures do not depend on
    it."""

    def __init__(self, va: VenueAccount, n: int, column: Mapping[str, int]) -> None:
        if va.pm is None or va.options is None:
            raise CrossMarginError("portfolio_margin", va.pm_reason)
        super().__init__(va, n, column)
        self.pm = linear_pm(va.account, va.market, va.pm, va.options)
        self.pm_asset = np.array([column.get(u, -1) for u in self.pm.underlyings], dtype=np.intp)
        self.moves = self.pm_asset >= 0
        self.growth = np.ones((n, len(self.pm_asset)))
        self.open = np.ones(n, dtype=bool)

    def move(self, growth: Float) -> None:
        super().move(growth)
        self.growth[:, self.moves] = growth[:, self.pm_asset[self.moves]]

    def maintenance(self) -> Float:
        """Every path's PM maintenance margin (0 once liquidated)."""
        out = np.zeros(self.n)
        live = np.flatnonzero(self.open)
        if live.size:
            out[live] = self.pm.maintenance(self.growth[live])
        return out

    def liquidate(self) -> NDArray[np.intp]:
        terms = self.va.terms
        equity = self.book.values().cross_equity
        hit = np.flatnonzero(self.open & (equity < terms.trigger * self.maintenance()))
        if not hit.size:
            return hit
        risk = self.book.position_risk(hit)
        local = np.searchsorted(hit, risk.account)
        pnl = np.bincount(local, risk.unrealized_pnl, minlength=len(hit))
        notional = np.bincount(local, risk.notional, minlength=len(hit))
        penalty = np.minimum(terms.penalty_rate * notional, np.maximum(equity[hit], 0.0))
        for a, i in zip(risk.account.tolist(), risk.instrument.tolist(), strict=True):
            self.book.remove_position(self.ids[a], self.symbols[i])
        self._layout()
        wallet = self.wallet[hit]
        self._credit(hit, np.maximum(wallet + pnl - penalty, 0.0) - wallet)
        self.open[hit] = False
        return hit

    def shortfalls(self) -> tuple[Float, Float]:
        """``trigger`` x PM maintenance less cross equity per path, and no isolated bucket."""
        equity = self.book.values().cross_equity
        dc = self.va.terms.trigger * self.maintenance() - equity
        return dc, np.full((self.n, self.k), -np.inf)


ChunkParts = dict[str, tuple[Float, NDArray[np.intp], Float]]
"""Per mode, one chunk's equity samples, first liquidation steps and shortfalls."""


@dataclass(frozen=True)
class _Job:
    """Everything one chunk of a run needs, sent once to each worker of a cluster."""

    variants: Mapping[str, tuple[VenueAccount, ...]]
    model: PathModel
    paths: int
    steps: int
    horizon: float
    seed: int
    column: Mapping[str, int]
    sample: NDArray[np.intp]

    def size(self, chunk: int) -> int:
        return min(CHUNK, self.paths - chunk * CHUNK)

    def run(self, chunk: int, tick: Callable[[int], None] | None = None) -> ChunkParts:
        """Both passes of every mode over chunk ``chunk``'s paths."""
        growth = growth_chunk(self.model, self.paths, self.steps, self.horizon, self.seed, chunk)
        step = tick or (lambda n: None)
        out: ChunkParts = {}
        for mode, vas in self.variants.items():
            pm = mode == "pm"
            fan, _, first = chunk_pass(vas, growth, self.column, self.sample, True, step, pm)
            _, need, _ = chunk_pass(vas, growth, self.column, self.sample, False, step, pm)
            out[mode] = (fan, first, need)
        return out

    def __call__(self, chunk: int) -> ChunkParts:
        return self.run(chunk)


class ChunkRunner(Protocol):
    """Runs ``job(c)`` for chunks ``0..chunks-1`` (anywhere), calling ``done(c)`` as each
    finishes, and returns the parts in chunk order."""

    def map(
        self, job: Callable[[int], ChunkParts], chunks: int, done: Callable[[int], None]
    ) -> list[ChunkParts]: ...


@dataclass(frozen=True)
class Shortfalls:
    """Per path, the collateral each bucket must get for the path to see no liquidation
    (paths, buckets): bucket order is, per venue account, its cross pool then one per base
    instrument (isolated positions; -inf where a bucket needs nothing); ``labels`` names them,
    ``current`` is the collateral each bucket has now."""

    labels: tuple[str, ...]
    current: Float
    need: Float


def survival(shortfalls: Shortfalls, added: Float) -> float:
    """Share of paths with no liquidation when bucket ``b`` gets ``added[b]`` more collateral
    (the added amounts may be negative: less collateral)."""
    ok = (shortfalls.need <= shortfalls.current + np.asarray(added)).all(axis=1)
    return float(ok.mean())


@dataclass(frozen=True)
class ModeResult:
    """One margin mode over the paths (amounts in the account currency, times in days).

    ``liquidation_probability``: any liquidation within the horizon, with its 95% interval;
    ``ruin_probability``: equity at the horizon at most 1% of the start; ``loss_*`` of start
    less end equity (positive: a loss), expected shortfalls the mean of the worst 2.5% and 1%;
    ``first_liquidation_days``: quantiles 10, 50, 90% of the time to the first liquidation of
    the liquidated paths; ``capital_for_survival``: the least collateral to add (split like the
    current collateral) for 99% of paths to see no liquidation (None: not reachable that way);
    ``liquidated_by``: share liquidated by each sampled time; ``equity_fan``: equity quantiles
    (5, 25, 50, 75, 95%) at each sampled time."""

    mode: str
    initial_equity: float
    liquidation_probability: float
    liquidation_interval: tuple[float, float]
    ruin_probability: float
    loss_mean: float
    loss_var_99: float
    expected_shortfall_975: float
    expected_shortfall_99: float
    first_liquidation_days: tuple[float, float, float] | None
    capital_for_survival: float | None
    liquidated_by: tuple[float, ...]
    equity_fan: tuple[tuple[float, ...], ...]

    def row(self) -> dict[str, Any]:
        """The scalar figures as one flat row (tables, CSV)."""
        first = self.first_liquidation_days
        return {
            "mode": self.mode,
            "initial_equity": self.initial_equity,
            "liquidation_probability": self.liquidation_probability,
            "ruin_probability": self.ruin_probability,
            "loss_mean": self.loss_mean,
            "loss_var_99": self.loss_var_99,
            "expected_shortfall_975": self.expected_shortfall_975,
            "expected_shortfall_99": self.expected_shortfall_99,
            "first_liquidation_median_days": None if first is None else first[1],
            "capital_for_99_survival": self.capital_for_survival,
        }


@dataclass(frozen=True)
class SimulationResult:
    """``crossmargin simulate``: the run's settings, the model, and one result per mode;
    ``times_days`` are the sampled times of the curves; ``portfolio_margin`` gives the rulebook
    of the ``pm`` mode, or why it is not among the modes."""

    model: str
    paths: int
    steps: int
    horizon_days: float
    seed: int
    underlyings: tuple[str, ...]
    history: dict[str, str]
    accounts: tuple[str, ...]
    times_days: tuple[float, ...]
    modes: tuple[ModeResult, ...]
    portfolio_margin: str = field(default="not requested")

    def rows(self) -> list[dict[str, Any]]:
        """One flat row per mode."""
        return [m.row() for m in self.modes]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (the one serialiser)."""
        out: dict[str, Any] = to_data(self)
        return out


@dataclass(frozen=True)
class SimulationRun:
    """A run: its ``result`` and, per mode, the shortfalls (for :func:`survival` and the
    allocation), each path's loss and its equity at the sampled times (paths, samples), for
    reports."""

    result: SimulationResult
    shortfalls: Mapping[str, Shortfalls]
    losses: Mapping[str, Float]
    equity: Mapping[str, Float]

    def report(self) -> Report:
        """The HTML report: the table, the equity fan of each mode, the probability of a
        liquidation by each time and the loss histogram."""
        r = self.result
        times = r.times_days
        sections = [
            Section(
                "Margin modes",
                rows=tuple(
                    {k: v for k, v in row.items() if not isinstance(v, tuple)} for row in r.rows()
                ),
                text=(
                    f"{r.paths:,} paths of {r.steps} steps over {r.horizon_days:g} days, "
                    f"{r.model} model, seed {r.seed}; amounts in the account currency; "
                    f"portfolio margin {r.portfolio_margin}."
                ),
            ),
            Section(
                "Liquidation over time",
                chart=liquidation_probability(
                    times, {m.mode: m.liquidated_by for m in r.modes}, x_label="days"
                ),
            ),
            Section(
                "Losses",
                chart=loss_histogram(self.losses, x_label="loss (start less end equity)"),
            ),
        ]
        for mode, equity in self.equity.items():
            chart = equity_fan(
                times, equity, title=f"Equity: {mode}", x_label="days", slug=f"equity-{mode}"
            )
            sections.append(Section(f"Equity fan: {mode}", chart=chart))
        accounts = ", ".join(r.accounts)
        return Report(f"Monte Carlo: {accounts}", tuple(sections), f"seed {r.seed}")


def _tail_mean(losses: Float, level: float) -> float:
    """Mean of the worst ``1 - level`` share of ``losses`` (at least one path)."""
    worst = np.sort(losses)[::-1][: max(1, math.ceil((1.0 - level) * len(losses)))]
    return float(worst.mean())


def _interval(p: float, n: int) -> tuple[float, float]:
    """Wilson 95% interval of a proportion ``p`` of ``n``."""
    z = 1.959963984540054
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def _needed(shortfalls: Shortfalls, level: float) -> float | None:
    """The least total collateral to add, split like the current one (evenly where there is
    none), for ``level`` of the paths to survive: each path's own need is the largest ratio of
    a bucket's missing collateral to its weight; the answer is their ``level`` quantile."""
    current = shortfalls.current
    weight = (
        current / current.sum() if current.sum() > 0 else np.full(len(current), 1 / len(current))
    )
    missing = shortfalls.need - current
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(missing <= 0.0, 0.0, np.where(weight > 0, missing / weight, np.inf))
    per_path = np.sort(ratio.max(axis=1))
    value = float(per_path[max(math.ceil(level * len(per_path) - 1e-9) - 1, 0)])
    return value if math.isfinite(value) else None


def _buckets(vas: Sequence[VenueAccount]) -> tuple[tuple[str, ...], Float]:
    labels: list[str] = []
    current: list[float] = []
    for va in vas:
        labels.append(f"{va.name}:cross")
        current.append(evaluate(va.account, va.market).collateral_value)
        for p in va.account.positions:
            labels.append(f"{va.name}:{p.symbol}")
            current.append(p.isolated_margin or 0.0)
    return tuple(labels), np.array(current)


def chunk_pass(
    vas: Sequence[VenueAccount],
    growth: Float,
    column: Mapping[str, int],
    sample: NDArray[np.intp],
    liquidate: bool,
    tick: Callable[[int], None],
    pm: bool = False,
) -> tuple[Float, Float, NDArray[np.intp]]:
    """One pass of a chunk: equity (paths, samples) summed over venue accounts, then either
    the first liquidation step per path (-1: none) or the shortfalls (paths, buckets);
    ``pm``: under portfolio margin (:class:`PmPathBook`)."""
    n, steps = growth.shape[0], growth.shape[1]
    book = PmPathBook if pm else PathBook
    books = [book(va, n, column) for va in vas]
    first = np.full(n, -1, dtype=np.intp)
    parts = [(pb, np.full(n, -np.inf), np.full((n, pb.k), -np.inf)) for pb in books]
    fan = np.zeros((n, len(sample)))
    at = {int(s): c for c, s in enumerate(sample.tolist())}
    for t in range(steps):
        for pb, dc, di in parts:
            pb.move(growth[:, t])
            if liquidate:
                hit = pb.liquidate()
                fresh = hit[first[hit] < 0]
                first[fresh] = t
            else:
                c, i = pb.shortfalls()
                np.maximum(dc, c, out=dc)
                np.maximum(di, i, out=di)
        if t in at:
            fan[:, at[t]] = sum(pb.equity() for pb in books)
        tick(n)
    need = np.hstack([np.column_stack([dc, di]) for _, dc, di in parts])
    return fan, need, first


def simulate(
    base: Sequence[VenueAccount],
    model: PathModel,
    model_name: str,
    paths: int,
    steps: int,
    horizon: float,
    seed: int,
    history: Mapping[str, str] | None = None,
    modes: Sequence[str] = MODES,
    progress: Progress | None = None,
    cluster: ChunkRunner | None = None,
) -> SimulationRun:
    """Simulate the trader of venue accounts ``base`` in each of ``modes`` over ``paths`` paths of
    ``steps`` steps spanning ``horizon`` years (``history``: the model asset each underlying
    follows, where not itself). Chunks of paths run in turn, or as tasks of ``cluster``
    (:class:`crossmargin.lab.distributed.ChunkPool`: Dask workers), with the same result."""
    follows = dict(history or {})
    assets = model.assets
    for va in base:
        for p in va.account.positions:
            u = va.market.instruments[p.symbol].underlying
            if follows.setdefault(u, u) not in assets:
                raise CrossMarginError(f"positions.{p.symbol}", f"no paths for underlying {u}")
    for mode in modes:
        if mode not in MODES:
            raise CrossMarginError("mode", f"one of {', '.join(MODES)}, got {mode!r}")
    pm_state = _pm_state(base, "pm" in modes)
    if not pm_state.startswith("simulated"):
        modes = [m for m in modes if m != "pm"]
    column = {u: assets.index(s) for u, s in follows.items()}
    sample = np.unique(np.linspace(0, steps - 1, min(SAMPLES, steps)).round().astype(np.intp))
    variants = {mode: tuple(in_mode(va, mode) for va in base) for mode in modes}
    total = 2 * paths * steps * len(variants)
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    job = _Job(variants, model, paths, steps, horizon, seed, column, sample)
    chunks = chunk_count(paths, steps)
    if cluster is None:
        parts = [job.run(c, tick) for c in range(chunks)]
    else:
        parts = cluster.map(job, chunks, lambda c: tick(2 * len(variants) * steps * job.size(c)))
    fans = {m: [p[m][0] for p in parts] for m in variants}
    firsts = {m: [p[m][1] for p in parts] for m in variants}
    needs = {m: [p[m][2] for p in parts] for m in variants}
    dt_days = horizon * YEAR_SECONDS / 86400.0 / steps
    results = []
    shortfalls = {}
    losses = {}
    equity = {}
    for mode, vas in variants.items():
        labels, current = _buckets(vas)
        sf = Shortfalls(labels, current, np.vstack(needs[mode]) + current)
        shortfalls[mode] = sf
        equity[mode] = np.vstack(fans[mode])
        losses[mode] = (
            sum(evaluate(va.account, va.market).equity for va in vas) - equity[mode][:, -1]
        )
        results.append(
            _mode_result(
                mode, vas, np.vstack(fans[mode]), np.concatenate(firsts[mode]), sf, dt_days, sample
            )
        )
    accounts = tuple(va.name for va in base)
    result = SimulationResult(
        model_name,
        paths,
        steps,
        horizon * YEAR_SECONDS / 86400.0,
        seed,
        tuple(sorted(follows)),
        follows,
        accounts,
        tuple(float((s + 1) * dt_days) for s in sample.tolist()),
        tuple(results),
        pm_state,
    )
    return SimulationRun(result, shortfalls, losses, equity)


def _pm_state(vas: Sequence[VenueAccount], wanted: bool) -> str:
    """What the run does with portfolio margin: ``simulated under`` its rulebooks, or why not."""
    if not wanted:
        return "not requested"
    missing = [f"{va.name}: {va.pm_reason}" for va in vas if va.pm is None]
    if missing:
        return "not available (" + "; ".join(missing) + ")"
    names = sorted({va.pm.name for va in vas if va.pm is not None})
    return "simulated under " + ", ".join(names)


def _mode_result(
    mode: str,
    vas: Sequence[VenueAccount],
    fan: Float,
    first: NDArray[np.intp],
    sf: Shortfalls,
    dt_days: float,
    sample: NDArray[np.intp],
) -> ModeResult:
    start = sum(evaluate(va.account, va.market).equity for va in vas)
    end = fan[:, -1]
    losses = start - end
    n = len(end)
    liquidated = first >= 0
    p = float(liquidated.mean())
    days = (first[liquidated] + 1) * dt_days
    quantiles = (
        None if not days.size else tuple(float(q) for q in np.quantile(days, (0.1, 0.5, 0.9)))
    )
    by = tuple(float(((first >= 0) & (first <= s)).mean()) for s in sample.tolist())
    fan_q = np.quantile(fan, FAN, axis=0)
    return ModeResult(
        mode,
        float(start),
        p,
        _interval(p, n),
        float((end <= RUIN * start).mean()),
        float(losses.mean()),
        float(np.quantile(losses, SURVIVAL)),
        _tail_mean(losses, 0.975),
        _tail_mean(losses, 0.99),
        (quantiles[0], quantiles[1], quantiles[2]) if quantiles is not None else None,
        _needed(sf, SURVIVAL),
        by,
        tuple(tuple(float(v) for v in row) for row in fan_q),
    )
