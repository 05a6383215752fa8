"""Batch stress tests of a book, sharded by account and run on Dask distributed.

A scenario shocks prices: a uniform fractional move of every non-stable price (the crash
distance convention), explicit per-name multipliers, or a historical day's move. Each shard
builds its own :class:`RiskBook` and values it under every scenario; the shards' results join
into one table: per-account worst loss, and per scenario the accounts liquidated and the
shortfall (negative equity that insurance or socialised losses must cover).
"""

from __future__ import annotations

import importlib
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crossmargin.book.riskbook import BookColumns, BookParams, RiskBook
from crossmargin.maths.status import Status
from crossmargin.model import Account, CrossMarginError, Market
from crossmargin.model.extras import needs_extra

__all__ = ["HISTORICAL", "Scenario", "StressResult", "run_stress", "stress_columns"]

Float = NDArray[np.float64]

HISTORICAL: Mapping[str, tuple[float, float]] = {
    "2020-03-12": (7945.36, 4736.21),
    "2021-05-19": (42886.02, 29925.20),
    "2022-11-09": (20593.73, 15546.97),
    "2024-08-05": (58135.89, 49202.81),
}
"""BTC/USD previous close and the day's low (daily candles, UTC). Source: BTC/USD daily
candle file of the project's market-data set (exchange public APIs); 2022-11-09 is measured
from the 11-07 close, as the FTX collapse spread over two days."""


@dataclass(frozen=True)
class Scenario:
    """A price shock: every non-stable price times ``1 + move``, then ``multipliers`` (by
    instrument symbol or asset) replacing the factor for the names they list."""

    name: str
    move: float = 0.0
    multipliers: tuple[tuple[str, float], ...] = field(default=())

    def __post_init__(self) -> None:
        if not (math.isfinite(self.move) and self.move > -1.0):
            raise CrossMarginError(f"scenarios.{self.name}.move", "must be a finite move > -1")
        for name, factor in self.multipliers:
            if not (math.isfinite(factor) and factor > 0.0):
                raise CrossMarginError(
                    f"scenarios.{self.name}.{name}", "multiplier must be a positive number"
                )

    @classmethod
    def uniform(cls, move: float) -> Scenario:
        """All non-stable prices move by ``move`` (e.g. -0.2)."""
        return cls(f"{100 * move:+g}%", move)

    @classmethod
    def explicit(cls, name: str, multipliers: Mapping[str, float]) -> Scenario:
        """Only the listed names move, each by its multiplier."""
        return cls(name, 0.0, tuple(multipliers.items()))

    @classmethod
    def historical(cls, day: str) -> Scenario:
        """The BTC move from the previous close to the day's low, applied to every price."""
        if day not in HISTORICAL:
            raise CrossMarginError(
                "scenario", f"no historical day {day!r}; have {list(HISTORICAL)}"
            )
        close, low = HISTORICAL[day]
        return cls(day, low / close - 1.0)

    def prices(self, params: BookParams) -> dict[str, float]:
        """Shocked prices for a book with ``params``."""
        out: dict[str, float] = {}
        factor = 1.0 + self.move
        for s, mark in zip(params.symbols, params.mark.tolist(), strict=True):
            if math.isfinite(mark):
                out[s] = mark * factor
        for a, px, stable in zip(
            params.assets, params.asset_price.tolist(), params.stable.tolist(), strict=True
        ):
            if math.isfinite(px) and not stable:
                out[a] = px * factor
        base = {**dict(zip(params.symbols, params.mark.tolist(), strict=True))}
        base.update(zip(params.assets, params.asset_price.tolist(), strict=True))
        for name, multiplier in self.multipliers:
            if name not in base or not math.isfinite(base[name]):
                raise CrossMarginError(f"scenarios.{self.name}.{name}", "unknown or unpriced")
            out[name] = base[name] * multiplier
        return out


@dataclass(frozen=True)
class StressResult:
    """Joined stress table. Per account: ``worst_loss`` (base equity minus the lowest scenario
    equity, account currency) and ``worst_scenario``; per scenario: accounts ``liquidated``
    (liquidatable or bankrupt) and ``shortfall`` (sum of negative equity, as a positive amount)."""

    account_ids: tuple[str, ...]
    scenarios: tuple[str, ...]
    worst_loss: Float
    worst_scenario: NDArray[np.intp]
    liquidated: NDArray[np.int64]
    shortfall: Float

    @staticmethod
    def join(parts: Sequence[StressResult]) -> StressResult:
        """Concatenate shard results (accounts in shard order; scenario totals summed)."""
        return StressResult(
            tuple(i for p in parts for i in p.account_ids),
            parts[0].scenarios,
            np.concatenate([p.worst_loss for p in parts]),
            np.concatenate([p.worst_scenario for p in parts]),
            np.sum([p.liquidated for p in parts], axis=0),
            np.sum([p.shortfall for p in parts], axis=0),
        )


def stress_columns(
    params: BookParams, columns: BookColumns, scenarios: Sequence[Scenario]
) -> StressResult:
    """Stress one shard in this process."""
    if not scenarios:
        raise CrossMarginError("scenarios", "need at least one scenario")
    book = RiskBook(params, columns)
    base = book.values().equity.copy()
    worst = np.full(book.accounts, -np.inf)
    which = np.zeros(book.accounts, dtype=np.intp)
    liquidated = np.zeros(len(scenarios), dtype=np.int64)
    shortfall = np.zeros(len(scenarios))
    for s, scenario in enumerate(scenarios):
        values = book.value_at(scenario.prices(params))
        loss = base - values.equity
        better = loss > worst
        worst = np.where(better, loss, worst)
        which = np.where(better, s, which)
        liquidated[s] = int((values.status_code >= Status.LIQUIDATABLE).sum())
        shortfall[s] = float(-np.minimum(values.equity, 0.0).sum())
    return StressResult(
        columns.account_ids, tuple(x.name for x in scenarios), worst, which, liquidated, shortfall
    )


def run_stress(
    book_accounts: Sequence[Account] | BookColumns,
    market: Market | BookParams,
    scenarios: Sequence[Scenario],
    scheduler: str | None = None,
    shards: int = 2,
    connect_timeout: float = 10.0,
) -> StressResult:
    """Stress accounts in ``shards`` shards on Dask: a small in-process ``LocalCluster`` (two
    single-threaded workers) unless a ``scheduler`` address (``tcp://host:8786``) is given;
    its workers need this package installed. An unreachable scheduler is bad input."""
    with needs_extra("distributed", "crossmargin.lab.run_stress"):
        dist: Any = importlib.import_module("distributed")
    if isinstance(market, Market):
        assets = (
            []
            if isinstance(book_accounts, BookColumns)
            else [a for account in book_accounts for a in account.balances]
        )
        params = BookParams.from_market(market, assets)
    else:
        params = market
    columns = (
        book_accounts
        if isinstance(book_accounts, BookColumns)
        else BookColumns.from_accounts(book_accounts, params)
    )
    n = len(columns.account_ids)
    cuts = np.linspace(0, n, max(1, min(shards, n)) + 1).astype(int).tolist()
    parts = [columns.shard(lo, hi) for lo, hi in itertools.pairwise(cuts)]
    cluster = None
    if scheduler is None:
        cluster = dist.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
        )
        client = dist.Client(cluster)
    else:
        try:
            client = dist.Client(scheduler, timeout=connect_timeout)
        except OSError as error:
            raise CrossMarginError("scheduler", f"cannot reach {scheduler}: {error}") from None
    try:
        futures = [client.submit(stress_columns, params, p, scenarios, pure=False) for p in parts]
        results: list[StressResult] = client.gather(futures)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return StressResult.join(results)
