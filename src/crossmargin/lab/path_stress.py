"""Stress a book along price paths: per account the worst equity, liquidated or not, shortfall.

Every step of every path is valued by the core engine at the step's prices
(:func:`~crossmargin.lab.shocks.shocked_market`): a book without portfolio margin through
:meth:`RiskBook.value_at <crossmargin.book.RiskBook.value_at>` (all accounts in one pass, the
kernel behind :func:`crossmargin.health.evaluate`), a portfolio-margin document (options
included) account by account through :func:`crossmargin.app.portfolio.evaluate_account`, which
margins it under its PM rulebook. Paths that share their steps (a stale oracle and its window)
are valued once.

Per account and path, in the account currency:

- ``worst_equity``: the lowest equity along the path (the account held through it);
- ``liquidated``: the engine's status reaches liquidatable (equity below maintenance) at some
  step as the engine sees it (``lag`` steps late on a stale-oracle path);
- ``shortfall``: the negative equity, as a positive amount, at the true prices of the step the
  liquidation executes: the first liquidatable step (``lag`` steps later on a stale oracle, at
  most the path's last step); 0 when not liquidated. It is the loss beyond the account's
  collateral that an insurance fund or socialised losses would cover.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from crossmargin.app.portfolio import Portfolio, evaluate_account
from crossmargin.book.riskbook import RiskBook
from crossmargin.lab.shocks import (
    ALT_BETA,
    DEFAULT_BETAS,
    Shock,
    StressPath,
    shocked_market,
    shocked_options,
)
from crossmargin.maths.status import Status
from crossmargin.model import CrossMarginError, Market

__all__ = [
    "AccountOutcome",
    "PathStressReport",
    "PathSummary",
    "StepValues",
    "book_evaluator",
    "portfolio_evaluator",
    "run_paths",
]

Float = NDArray[np.float64]
LIQUIDATABLE = int(Status.LIQUIDATABLE)


@dataclass(frozen=True)
class StepValues:
    """Every account at one step: equity, maintenance margin and status code
    (:class:`~crossmargin.maths.status.Status` values)."""

    equity: Float
    maintenance: Float
    status: NDArray[np.int8]


Evaluator = Callable[[Shock, tuple[str, ...]], StepValues]
"""Values every account of a book at a shock (with its depegged stablecoins)."""


def book_evaluator(
    book: RiskBook, market: Market, betas: Mapping[str, float] = DEFAULT_BETAS
) -> Evaluator:
    """Steps valued by ``book`` (its current prices are ``market``'s), all accounts at once;
    the book is given the prices of the names it knows."""
    params = book.current_params()
    known = {*params.symbols, *params.assets}

    def value(shock: Shock, depegged: tuple[str, ...]) -> StepValues:
        moved = shocked_market(market, shock, depegged, betas).prices
        figures = book.value_at({k: v for k, v in moved.items() if k in known})
        return StepValues(
            figures.equity.copy(), figures.maintenance_margin.copy(), figures.status_code.copy()
        )

    return value


def portfolio_evaluator(
    portfolio: Portfolio, betas: Mapping[str, float] = DEFAULT_BETAS
) -> Evaluator:
    """Steps valued account by account by :func:`evaluate_account` (portfolio margin and
    options included; option vols scaled by the shock)."""

    def value(shock: Shock, depegged: tuple[str, ...]) -> StepValues:
        moved = replace(
            portfolio,
            market=shocked_market(portfolio.market, shock, depegged, betas),
            options=shocked_options(portfolio.options, shock),
        )
        rows = [evaluate_account(moved, a).health for a in portfolio.accounts]
        return StepValues(
            np.array([h.equity for h in rows], dtype=np.float64),
            np.array([h.maintenance_margin for h in rows], dtype=np.float64),
            np.array([int(h.status) for h in rows], dtype=np.int8),
        )

    return value


@dataclass(frozen=True)
class AccountOutcome:
    """One account on one path (see the module docstring); steps count from 0; amounts in
    the account currency."""

    scenario: str
    account: str
    base_equity: float
    worst_equity: float
    worst_step: int
    maintenance_at_worst: float
    liquidated: bool
    liquidated_step: int | None
    shortfall: float


@dataclass(frozen=True)
class PathSummary:
    """One path: its steps, BTC's lowest and last move from the start, the accounts liquidated
    and the shortfall summed over accounts."""

    name: str
    kind: str
    description: str
    steps: int
    lag: int
    btc_low: float
    btc_end: float
    liquidated: int
    shortfall: float


@dataclass(frozen=True)
class PathStressReport:
    """The ``crossmargin stress --window/--grid`` result: how prices were moved (betas to BTC,
    ``alt_beta`` for coins not listed), every path and every account's outcome on it."""

    rulebook: str
    portfolio_margin: str | None
    currency: str
    accounts: int
    betas: Mapping[str, float]
    alt_beta: float
    scenarios: tuple[PathSummary, ...]
    outcomes: tuple[AccountOutcome, ...]


def _values(
    path: StressPath, evaluate: Evaluator, progress: Callable[[int], None] | None
) -> tuple[Float, Float, NDArray[np.int8]]:
    steps = []
    for shock in path.shocks:
        steps.append(evaluate(shock, path.depegged))
        if progress is not None:
            progress(1)
    return (
        np.stack([s.equity for s in steps]),
        np.stack([s.maintenance for s in steps]),
        np.stack([s.status for s in steps]),
    )


def run_paths(
    account_ids: Sequence[str],
    evaluate: Evaluator,
    paths: Sequence[StressPath],
    *,
    rulebook: str,
    currency: str,
    portfolio_margin: str | None = None,
    betas: Mapping[str, float] = DEFAULT_BETAS,
    progress: Callable[[int], None] | None = None,
) -> tuple[PathStressReport, dict[str, Float]]:
    """Every path valued step by step; returns the report and each path's equity
    (steps x accounts, the true path) for the report's charts."""
    if not paths:
        raise CrossMarginError("paths", "need at least one window or grid")
    names = [p.name for p in paths]
    if len(set(names)) != len(names):
        raise CrossMarginError("paths", f"repeated names: {names}")
    base = evaluate(Shock(), ()).equity
    cache: dict[tuple[tuple[Shock, ...], tuple[str, ...]], tuple[Float, Float, NDArray[np.int8]]]
    cache = {}
    summaries = []
    outcomes = []
    equity_paths: dict[str, Float] = {}
    for path in paths:
        key = (path.shocks, path.depegged)
        if key not in cache:
            cache[key] = _values(path, evaluate, progress)
        elif progress is not None:
            progress(path.steps)
        equity, maintenance, status = cache[key]
        equity_paths[path.name] = equity
        flagged: NDArray[np.bool_] = np.greater_equal(status, LIQUIDATABLE)
        liquidated = np.asarray(flagged.any(axis=0))
        first = flagged.argmax(axis=0)
        executed = np.where(first > 0, first + path.lag, 0).clip(max=path.steps - 1)
        at_close = equity[executed, np.arange(len(account_ids))]
        shortfall = np.where(liquidated, np.maximum(-at_close, 0.0), 0.0)
        worst_step = equity.argmin(axis=0)
        columns = np.arange(len(account_ids))
        worst = equity[worst_step, columns]
        worst_mm = maintenance[worst_step, columns]
        for j, account in enumerate(account_ids):
            outcomes.append(
                AccountOutcome(
                    path.name,
                    account,
                    float(base[j]),
                    float(worst[j]),
                    int(worst_step[j]),
                    float(worst_mm[j]),
                    bool(liquidated[j]),
                    int(executed[j]) if liquidated[j] else None,
                    float(shortfall[j]),
                )
            )
        drivers = [s.driver for s in path.shocks]
        summaries.append(
            PathSummary(
                path.name,
                path.kind,
                path.description,
                path.steps,
                path.lag,
                min(drivers) - 1.0,
                drivers[-1] - 1.0,
                int(liquidated.sum()),
                float(shortfall.sum()),
            )
        )
    report = PathStressReport(
        rulebook,
        portfolio_margin,
        currency,
        len(account_ids),
        dict(betas),
        ALT_BETA,
        tuple(summaries),
        tuple(outcomes),
    )
    return report, equity_paths
