"""Batch stress tests and price ticks of a book, sharded by account over Dask workers.

A scenario shocks prices: a uniform fractional move of every non-stable price (the crash
distance convention), explicit per-name multipliers, or a historical day's move. The book is
cut into account shards; each shard's :class:`RiskBook` is built once on a worker (from its
columns, sent there once, or from a recipe such as :func:`~crossmargin.lab.synthetic.
synthetic_book` run on the worker itself) and stays there: a stress sends each shard only the
scenario definitions, a tick only the prices, and what comes back is per shard (per-account
worst loss, per-scenario totals; the accounts whose status changed). The book kernels release
the GIL, so the shards of one process's threads run in parallel.

The joined stress table: per-account worst loss, and per scenario the accounts liquidated and
the shortfall (negative equity that insurance or socialised losses must cover).
"""

from __future__ import annotations

import importlib
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crossmargin.book.riskbook import BookColumns, BookParams, RiskBook
from crossmargin.maths.risk import COLLATERAL, CROSS_EQUITY, FIELDS, ISO_EQUITY
from crossmargin.maths.status import Status
from crossmargin.model import Account, CrossMarginError, Market
from crossmargin.model.extras import needs_extra

__all__ = [
    "HISTORICAL",
    "ChunkPool",
    "DistributedBook",
    "Scenario",
    "StressResult",
    "run_stress",
    "stress_book",
    "stress_columns",
]

Float = NDArray[np.float64]
LIQUIDATABLE = int(Status.LIQUIDATABLE)

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


def stress_book(book: RiskBook, scenarios: Sequence[Scenario]) -> StressResult:
    """Stress ``book`` under every scenario, leaving it unchanged: one re-margin each into the
    same scratch records (:meth:`RiskBook.remargin_at`), so a long run of scenarios allocates
    nothing per scenario (threads of one process would otherwise queue on its page faults)."""
    if not scenarios:
        raise CrossMarginError("scenarios", "need at least one scenario")
    params = book.current_params()
    n = book.accounts
    base = book.values().equity
    worst = np.full(n, -np.inf)
    which = np.zeros(n, dtype=np.intp)
    liquidated = np.zeros(len(scenarios), dtype=np.int64)
    shortfall = np.zeros(len(scenarios))
    records = np.empty((n, FIELDS))
    status = np.empty(n, dtype=np.int8)
    equity, loss = np.empty(n), np.empty(n)
    flag = np.empty(n, dtype=bool)
    for s, scenario in enumerate(scenarios):
        book.remargin_at(scenario.prices(params), records, status)
        np.add(records[:, COLLATERAL], records[:, CROSS_EQUITY], out=equity)
        equity += records[:, ISO_EQUITY]
        liquidated[s] = int(np.count_nonzero(np.greater_equal(status, LIQUIDATABLE, out=flag)))
        shortfall[s] = -float(np.minimum(equity, 0.0, out=loss).sum())
        np.subtract(base, equity, out=loss)
        np.greater(loss, worst, out=flag)
        np.copyto(worst, loss, where=flag)
        np.copyto(which, s, where=flag)
    names = tuple(x.name for x in scenarios)
    return StressResult(tuple(book.account_ids), names, worst, which, liquidated, shortfall)


def stress_columns(
    params: BookParams, columns: BookColumns, scenarios: Sequence[Scenario]
) -> StressResult:
    """Stress one shard in this process."""
    if not scenarios:
        raise CrossMarginError("scenarios", "need at least one scenario")
    return stress_book(RiskBook(params, columns), scenarios)


@dataclass(frozen=True)
class ShardTick:
    """What a tick did to one shard: the ids of the accounts whose status changed and the
    positions re-margined."""

    changed: tuple[str, ...]
    recomputed: int


def _build(params: BookParams, columns: BookColumns) -> RiskBook:
    return RiskBook(params, columns)


Recipe = Callable[[int, int], tuple[BookParams, BookColumns]]
"""Builds accounts ``lo`` to ``hi`` of a book (its params and columns), where it runs."""


def _build_from(recipe: Recipe, lo: int, hi: int) -> RiskBook:
    return RiskBook(*recipe(lo, hi))


def _account_ids(book: RiskBook) -> tuple[str, ...]:
    return tuple(book.account_ids)


def _stress_figures(book: RiskBook, scenarios: Sequence[Scenario]) -> StressResult:
    """:func:`stress_book` without the account ids (the client has them from the build)."""
    return replace(stress_book(book, scenarios), account_ids=())


def _tick(book: RiskBook, prices: Mapping[str, float]) -> ShardTick:
    result = book.apply_prices(prices)
    ids = book.account_ids
    return ShardTick(tuple(ids[k] for k in result.changed.tolist()), result.recomputed)


class DistributedBook:
    """A book sharded by account over Dask workers, each shard's :class:`RiskBook` built once on
    its worker and kept there.

    Without a ``scheduler`` address (``tcp://host:8786``) it starts an in-process
    ``LocalCluster`` of ``workers`` single-threaded workers (threads of this process, or
    worker processes with ``processes=True``); a remote cluster's workers need this package
    installed. Give the book as ``columns`` (each shard is sent to its worker once) or as a
    ``recipe(lo, hi)`` that builds accounts ``lo`` to ``hi`` on the worker. An unreachable
    scheduler is bad input. Use it as a context manager (it closes the client and cluster).
    The account ids come back once, after the build (``account_ids``); a stress returns only
    figures.
    """

    def __init__(
        self,
        params: BookParams,
        columns: BookColumns | None = None,
        *,
        recipe: Recipe | None = None,
        accounts: int | None = None,
        shards: int | None = None,
        scheduler: str | None = None,
        workers: int = 2,
        processes: bool = False,
        connect_timeout: float = 10.0,
    ) -> None:
        if (columns is None) == (recipe is None):
            raise CrossMarginError("columns", "give the book's columns or a recipe, not both")
        if workers < 1:
            raise CrossMarginError("workers", f"must be >= 1, got {workers}")
        with needs_extra("distributed", "crossmargin.lab.DistributedBook"):
            dist: Any = importlib.import_module("distributed")
        self.params = params
        n = len(columns.account_ids) if columns is not None else accounts
        if n is None or n < 1:
            raise CrossMarginError("accounts", "a recipe needs the number of accounts (>= 1)")
        self._cluster: Any = None
        if scheduler is None:
            self._cluster = dist.LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=processes,
                dashboard_address=":0",
            )
            self._client: Any = dist.Client(self._cluster)
        else:
            try:
                self._client = dist.Client(scheduler, timeout=connect_timeout)
            except OSError as error:
                raise CrossMarginError("scheduler", f"cannot reach {scheduler}: {error}") from None
        try:
            names = sorted(self._client.scheduler_info()["workers"])
            count = len(names) if shards is None else shards
            cuts = np.linspace(0, n, max(1, min(count, n)) + 1).astype(int).tolist()
            self.ranges = list(itertools.pairwise(cuts))
            self._where = [[names[k % len(names)]] for k in range(len(self.ranges))]
            self._books = []
            for (lo, hi), where in zip(self.ranges, self._where, strict=True):
                if columns is not None:
                    part = self._client.scatter(columns.shard(lo, hi), workers=where, hash=False)
                    book = self._client.submit(_build, params, part, workers=where, pure=False)
                else:
                    book = self._client.submit(
                        _build_from, recipe, lo, hi, workers=where, pure=False
                    )
                self._books.append(book)
            dist.wait(self._books)
            for book in self._books:
                if book.status == "error":
                    book.result()
            self.account_ids = tuple(i for part in self._each(_account_ids) for i in part)
        except BaseException:
            self.close()
            raise

    def _each(self, action: Callable[..., Any], *args: Any) -> list[Any]:
        futures = [
            self._client.submit(action, book, *args, workers=where, pure=False)
            for book, where in zip(self._books, self._where, strict=True)
        ]
        results: list[Any] = self._client.gather(futures)
        return results

    def stress(self, scenarios: Sequence[Scenario]) -> StressResult:
        """The joined stress table of every shard (the shards stay as they were)."""
        if not scenarios:
            raise CrossMarginError("scenarios", "need at least one scenario")
        joined = StressResult.join(self._each(_stress_figures, tuple(scenarios)))
        return replace(joined, account_ids=self.account_ids)

    def apply_prices(self, prices: Mapping[str, float]) -> ShardTick:
        """Tick every shard to ``prices``: the accounts whose status changed (ids, shard
        order) and the positions re-margined."""
        parts: list[ShardTick] = self._each(_tick, dict(prices))
        return ShardTick(
            tuple(i for p in parts for i in p.changed), sum(p.recomputed for p in parts)
        )

    def close(self) -> None:
        """Release the shards, the client and the local cluster."""
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()

    def __enter__(self) -> DistributedBook:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


def run_stress(
    book_accounts: Sequence[Account] | BookColumns,
    market: Market | BookParams,
    scenarios: Sequence[Scenario],
    scheduler: str | None = None,
    shards: int = 2,
    connect_timeout: float = 10.0,
    workers: int = 2,
    processes: bool = False,
) -> StressResult:
    """Stress accounts in ``shards`` shards on Dask (see :class:`DistributedBook`: a local
    cluster of ``workers`` workers unless a ``scheduler`` address is given)."""
    if not scenarios:
        raise CrossMarginError("scenarios", "need at least one scenario")
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
    with DistributedBook(
        params,
        columns,
        shards=shards,
        scheduler=scheduler,
        workers=workers,
        processes=processes,
        connect_timeout=connect_timeout,
    ) as book:
        return book.stress(scenarios)


def _run_chunk(job: Callable[[int], Any], chunk: int) -> Any:
    return job(chunk)


class ChunkPool:
    """Dask workers running the chunks of a Monte Carlo run (see
    :func:`crossmargin.lab.simulate.simulate`): a ``LocalCluster`` of ``workers``
    single-threaded workers, threads of this process (the book kernels release the GIL, the
    step loop around them holds it) or processes with ``processes=True``, unless a
    ``scheduler`` address is given. The job is sent to every worker once; each task is one
    chunk index. Use it as a context manager."""

    def __init__(
        self,
        scheduler: str | None = None,
        workers: int = 2,
        connect_timeout: float = 10.0,
        processes: bool = False,
    ) -> None:
        if workers < 1:
            raise CrossMarginError("workers", f"must be >= 1, got {workers}")
        with needs_extra("distributed", "crossmargin simulate --workers"):
            self._dist: Any = importlib.import_module("distributed")
        self._cluster: Any = None
        if scheduler is None:
            self._cluster = self._dist.LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=processes,
                dashboard_address=":0",
            )
            self._client: Any = self._dist.Client(self._cluster)
        else:
            try:
                self._client = self._dist.Client(scheduler, timeout=connect_timeout)
            except OSError as error:
                raise CrossMarginError("scheduler", f"cannot reach {scheduler}: {error}") from None

    def map(self, job: Callable[[int], Any], chunks: int, done: Callable[[int], None]) -> list[Any]:
        """``job(c)`` for every chunk on the workers, ``done(c)`` as each finishes; the
        results in chunk order."""
        remote = self._client.scatter(job, broadcast=True, hash=False)
        futures = [self._client.submit(_run_chunk, remote, c, pure=False) for c in range(chunks)]
        index = {f.key: c for c, f in enumerate(futures)}
        for future in self._dist.as_completed(futures):
            done(index[future.key])
        return [f.result() for f in futures]

    def close(self) -> None:
        """Close the client and any local cluster."""
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()

    def __enter__(self) -> ChunkPool:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()
