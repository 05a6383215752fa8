"""Monte Carlo of liquidation: the GBM check against the closed-form first passage, the
liquidation step against the engine's liquidation price, survival read from the shortfalls
against the liquidation pass, collateral monotonicity, reproducibility and the allocation."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from crossmargin.app.portfolio import Portfolio, parse_portfolio
from crossmargin.book.riskbook import RiskBook
from crossmargin.health import evaluate
from crossmargin.lab.allocate import allocate, frontier
from crossmargin.lab.paths import YEAR_SECONDS, JumpModel, bundled_model
from crossmargin.lab.simulate import (
    PathBook,
    Shortfalls,
    in_mode,
    simulate,
    survival,
    trader_accounts,
    underlyings,
)
from crossmargin.maths.first_passage import hit_probability
from crossmargin.model import CrossMarginError, Market

BGK = 0.5826
"""Broadie, Glasserman and Kou (1997), "A continuity correction for discrete barrier options",
Math. Finance 7(4): a barrier watched every dt is crossed like a continuously watched one
moved away from the spot by exp(beta sigma sqrt(dt)), beta = -zeta(1/2)/sqrt(2 pi)."""


def _document(positions: list[dict[str, Any]], usdc: float = 10_000.0) -> Portfolio:
    return parse_portfolio(
        {
            "rulebook": "hyperliquid",
            "prices": {"BTC-PERP": 60_000.0, "ETH-PERP": 2_500.0, "USDC": 1.0},
            "accounts": [{"id": "a", "balances": {"USDC": usdc}, "positions": positions}],
        }
    )


LONG = [{"symbol": "BTC-PERP", "qty": 1.0, "entry_price": 60_000.0}]
HEDGED = [
    {"symbol": "BTC-PERP", "qty": 0.5, "entry_price": 60_000.0},
    {
        "symbol": "ETH-PERP",
        "qty": -8.0,
        "entry_price": 2_400.0,
        "margin_mode": "isolated",
        "isolated_margin": 1_500.0,
        "leverage": 20,
    },
]


def test_gbm_liquidation_matches_first_passage() -> None:
    """One long BTC-PERP under GBM: the share of paths liquidated within 30 days equals the
    reflection-principle probability of touching the engine's liquidation price, with the
    barrier moved by the BGK continuity correction for monitoring at 500 steps, within 3
    standard errors."""
    portfolio = _document(LONG)
    vas = trader_accounts([portfolio])
    liquidation = evaluate(vas[0].account, vas[0].market).positions[0].liquidation_price
    assert liquidation is not None
    sigma, horizon, steps, paths = 0.8, 30 / 365, 500, 4096
    run = simulate(
        vas, JumpModel.gbm("BTC", sigma), "gbm", paths, steps, horizon, 7, modes=["given"]
    )
    result = run.result
    p = result.modes[0].liquidation_probability
    moved = liquidation * math.exp(-BGK * sigma * math.sqrt(horizon / steps))
    expected = float(hit_probability(60_000.0, moved, sigma, horizon))
    error = math.sqrt(expected * (1 - expected) / paths)
    assert 0.1 < expected < 0.9
    assert abs(p - expected) < 3 * error
    lo, hi = result.modes[0].liquidation_interval
    assert lo <= p <= hi


@dataclass(frozen=True)
class _Fixed:
    """A path model that replays one sequence of log returns on every path."""

    returns: np.ndarray

    @property
    def assets(self) -> tuple[str, ...]:
        return ("BTC",)

    def log_returns(self, rng: np.random.Generator, paths: int, steps: int, dt: float) -> Any:
        return np.broadcast_to(self.returns[:steps, None], (paths, steps, 1)).copy()


def test_first_liquidation_at_the_engines_liquidation_price() -> None:
    """A path falling 1% a step is first liquidated at the first step whose price is at or
    under the liquidation price ``evaluate`` gives; a cross account with one position then
    holds nothing and keeps its wallet less the loss (no penalty on this venue)."""
    vas = trader_accounts([_document(LONG, usdc=8_000.0)])
    health = evaluate(vas[0].account, vas[0].market)
    liquidation = health.positions[0].liquidation_price
    assert liquidation is not None
    steps = 40
    returns = np.full(steps, math.log(0.99))
    run = simulate(vas, _Fixed(returns), "fixed", 3, steps, 10 / 365, 0, modes=["given"])
    result = run.result
    prices = 60_000.0 * 0.99 ** np.arange(1, steps + 1)
    step = int(np.argmax(prices <= liquidation))
    mode = result.modes[0]
    assert mode.liquidation_probability == 1.0
    first = mode.first_liquidation_days
    assert first is not None
    assert first[1] == pytest.approx((step + 1) * 10 / steps)
    assert mode.equity_fan[2][-1] == pytest.approx(8_000.0 + prices[step] - 60_000.0)


@pytest.fixture(scope="module")
def hedged() -> tuple[Any, Any, dict[str, Shortfalls]]:
    vas = trader_accounts([_document(HEDGED, usdc=4_000.0)])
    model, _ = bundled_model("jump", underlyings(vas))
    run = simulate(vas, model, "jump", 600, 120, 30 / 365, 3)
    result = run.result
    shortfalls = run.shortfalls
    return vas, result, shortfalls


def test_survival_from_shortfalls_is_the_liquidation_pass(hedged: Any) -> None:
    """With nothing added, the share of paths the shortfalls say survive is the share the
    liquidation pass never liquidates, in every mode."""
    _, result, shortfalls = hedged
    for mode in result.modes:
        sf = shortfalls[mode.mode]
        alive = survival(sf, np.zeros(len(sf.current)))
        assert alive == pytest.approx(1.0 - mode.liquidation_probability)
    assert {m.mode for m in result.modes} == {"given", "cross", "isolated"}


def test_more_wallet_never_liquidates_more_on_the_same_paths() -> None:
    """The liquidation pass on the same seed: a larger wallet liquidates no more paths and
    the shortfalls' survival with the difference added agrees."""
    model = JumpModel.gbm("BTC", 0.9)
    low = trader_accounts([_document(LONG, usdc=6_000.0)])
    high = trader_accounts([_document(LONG, usdc=9_000.0)])
    run = simulate(low, model, "gbm", 500, 100, 30 / 365, 11, modes=["given"])
    a = run.result
    sf = run.shortfalls
    run = simulate(high, model, "gbm", 500, 100, 30 / 365, 11, modes=["given"])
    b = run.result
    pa, pb = a.modes[0].liquidation_probability, b.modes[0].liquidation_probability
    assert pb <= pa
    assert 1 - pb == pytest.approx(survival(sf["given"], np.array([3_000.0, 0.0])))
    need = a.modes[0].capital_for_survival
    assert need is not None and need > 0
    weights = np.array([1.0, 0.0])
    assert survival(sf["given"], need * weights) >= 0.99
    assert survival(sf["given"], (need - 1e-6) * weights) < 0.99


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(-5_000, 5_000), min_size=3, max_size=3),
    st.lists(st.floats(0, 5_000), min_size=3, max_size=3),
)
def test_survival_is_monotone_in_collateral(
    hedged: Any, base: list[float], more: list[float]
) -> None:
    """Adding collateral to any bucket never lowers survival over the same paths."""
    _, _, shortfalls = hedged
    sf = shortfalls["given"]
    lo = np.array(base)
    assert survival(sf, lo + np.array(more)) >= survival(sf, lo)


def test_same_seed_same_result() -> None:
    """Two runs with one seed agree exactly; another seed gives other paths."""
    vas = trader_accounts([_document(HEDGED, usdc=4_000.0)])
    model, _ = bundled_model("bootstrap", underlyings(vas))
    run = simulate(vas, model, "bootstrap", 300, 36, 3 / 365, 5, modes=["given"])
    one = run.result
    run = simulate(vas, model, "bootstrap", 300, 36, 3 / 365, 5, modes=["given"])
    two = run.result
    run = simulate(vas, model, "bootstrap", 300, 36, 3 / 365, 6, modes=["given"])
    other = run.result
    assert one.to_dict() == two.to_dict()
    assert one.modes[0].equity_fan != other.modes[0].equity_fan
    assert one.rows()[0]["mode"] == "given"


def test_modes_move_the_collateral() -> None:
    """Cross moves isolated margins into the wallet; isolated splits the wallet over the
    cross positions; the equity at the start is the same."""
    va = trader_accounts([_document(HEDGED, usdc=4_000.0)])[0]
    cross = in_mode(va, "cross").account
    assert cross.balances["USDC"] == 5_500.0
    assert not any(p.is_isolated for p in cross.positions)
    isolated = in_mode(va, "isolated").account
    assert [p.isolated_margin for p in isolated.positions] == [4_000.0, 1_500.0]
    start = [evaluate(in_mode(va, m).account, va.market).equity for m in ("given", "cross")]
    assert start[0] == pytest.approx(start[1])
    with pytest.raises(CrossMarginError):
        in_mode(va, "portfolio")


def test_allocation_beats_or_equals_the_documents_split(hedged: Any) -> None:
    """The split spends the capital, covers at least as many paths as the documents' split
    and its frontier never loses survival as capital grows."""
    vas, _, shortfalls = hedged
    result = allocate(list(vas), shortfalls["given"], 5_500.0)
    assert sum(b.amount for b in result.allocation) == pytest.approx(5_500.0)
    assert result.survival >= result.proportional_survival
    survivals = [p.survival for p in result.grid]
    assert survivals == sorted(survivals)
    capitals, alive, _ = frontier(np.array([[1.0, 2.0], [3.0, 0.0], [2.0, 2.0]]))
    assert list(alive) == pytest.approx([0.0, 1 / 3, 2 / 3, 1.0])
    assert capitals[-1] == pytest.approx(5.0)
    with pytest.raises(CrossMarginError, match="capital"):
        allocate(list(vas), shortfalls["given"], -1.0)


def test_set_marks_equals_apply_prices() -> None:
    """The array form of a price tick gives the figures of the mapping form; bad marks are
    refused with the book unchanged."""
    portfolio = _document(HEDGED)
    one = RiskBook.from_accounts(list(portfolio.accounts), portfolio.market)
    two = RiskBook.from_accounts(list(portfolio.accounts), portfolio.market)
    symbols = one.params.symbols
    marks = {"BTC-PERP": 55_000.0, "ETH-PERP": 2_700.0}
    one.apply_prices(marks)
    two.set_marks([marks.get(s, 1.0) for s in symbols])
    assert one.values().equity == pytest.approx(two.values().equity)
    with pytest.raises(CrossMarginError, match="marks"):
        two.set_marks([math.nan] * len(symbols))
    with pytest.raises(CrossMarginError, match="marks"):
        two.set_marks([1.0])
    assert one.values().equity == pytest.approx(two.values().equity)


def test_horizon_in_years() -> None:
    from crossmargin.lab.paths import parse_horizon

    assert parse_horizon("12h") == pytest.approx(12 * 3600 / YEAR_SECONDS)
    assert parse_horizon("2w") == parse_horizon("14d") == parse_horizon("14")
    for bad in ("", "0d", "-1h", "xd", "nan"):
        with pytest.raises(CrossMarginError, match="horizon"):
            parse_horizon(bad)


def _moved_engine(va: Any, prices: dict[str, float]) -> Any:
    """The engine's own figures of ``va``'s account at ``prices``: a one-account book ticked
    there."""
    book = RiskBook.from_accounts([va.account], va.market)
    book.apply_prices(prices)
    return book.values()


@pytest.mark.parametrize("per_size", [0.0, 5e-5])
def test_path_book_values_each_path_at_its_own_prices(per_size: float) -> None:
    """Each path of a path book has the equity, IM and MM the engine gives the account at that
    path's prices, whether the book rescales positions (plain linear terms) or holds per-path
    instrument copies (size-scaled rates)."""
    va = trader_accounts([_document(HEDGED, usdc=4_000.0)])[0]
    if per_size:
        instruments = {
            s: replace(
                i,
                margin=replace(
                    i.margin, initial_rate_per_size=per_size, maintenance_rate_per_size=per_size
                ),
            )
            for s, i in va.market.instruments.items()
            if i.margin is not None
        }
        m = va.market
        va = replace(
            va, market=Market(instruments, m.prices, m.currency, m.collateral, m.margin_call_ratio)
        )
    book = PathBook(va, 3, {"BTC": 0, "ETH": 1})
    assert book.rescale == (per_size == 0.0)
    growth = np.array([[1.0, 1.0], [0.8, 1.1], [1.25, 0.7]])
    book.move(growth)
    values = book.book.values()
    for p, (gb, ge) in enumerate(growth.tolist()):
        engine = _moved_engine(va, {"BTC-PERP": 60_000.0 * gb, "ETH-PERP": 2_500.0 * ge})
        assert values.equity[p] == pytest.approx(engine.equity[0], rel=1e-12)
        assert values.initial_margin[p] == pytest.approx(engine.initial_margin[0], rel=1e-12)
        assert values.maintenance_margin[p] == pytest.approx(
            engine.maintenance_margin[0], rel=1e-12
        )
    with pytest.raises(CrossMarginError, match="qty"):
        RiskBook.from_accounts([va.account], va.market).set_sizes([1.0], [1.0])


def test_trader_accounts_refuse_what_is_not_simulated() -> None:
    """Non-stable collateral and empty accounts are refused, naming the field."""
    document = parse_portfolio(
        {
            "rulebook": "binance-usdm",
            "account_mode": "multi_assets",
            "prices": {"BTCUSDT": 60_000.0, "BTC": 60_000.0},
            "accounts": [
                {"id": "a", "balances": {"USDT": 1_000.0, "BTC": 0.1}, "positions": LONG_BINANCE}
            ],
        }
    )
    with pytest.raises(CrossMarginError, match=r"balances\.BTC"):
        trader_accounts([document])
    with pytest.raises(CrossMarginError, match="positions"):
        trader_accounts([_document([])])


LONG_BINANCE = [{"symbol": "BTCUSDT", "qty": 0.1, "entry_price": 60_000.0}]


def test_two_venues_are_two_accounts() -> None:
    """A hedge split over two venues: each venue's account is liquidated on its own (the
    long leg alone), so the pair is liquidated where one account would never be."""
    long_leg = _document(LONG, usdc=4_000.0)
    short_leg = parse_portfolio(
        {
            "rulebook": "binance-usdm",
            "prices": {"BTCUSDT": 60_000.0},
            "accounts": [
                {
                    "id": "b",
                    "balances": {"USDT": 4_000.0},
                    "positions": [{"symbol": "BTCUSDT", "qty": -1.0, "entry_price": 60_000.0}],
                }
            ],
        }
    )
    vas = trader_accounts([long_leg, short_leg])
    assert [va.name for va in vas] == ["hyperliquid:a", "binance-usdm:b"]
    assert vas[1].terms.penalty_rate > 0
    model = JumpModel.gbm("BTC", 0.8)
    run = simulate(vas, model, "gbm", 400, 60, 30 / 365, 2, modes=["given"])
    result = run.result
    shortfalls = run.shortfalls
    mode = result.modes[0]
    assert mode.liquidation_probability > 0.5
    assert shortfalls["given"].labels == (
        "hyperliquid:a:cross",
        "hyperliquid:a:BTC-PERP",
        "binance-usdm:b:cross",
        "binance-usdm:b:BTCUSDT",
    )
    split = allocate(list(vas), shortfalls["given"], 16_000.0)
    assert split.survival > 1.0 - mode.liquidation_probability


def test_dask_workers_give_the_same_run() -> None:
    """Chunks run as Dask tasks (two local workers) give the run of the chunks in turn; an
    unreachable scheduler is bad input."""
    from crossmargin.lab.distributed import ChunkPool

    vas = trader_accounts([_document(HEDGED, usdc=4_000.0)])
    model = JumpModel.gbm("BTC", 0.8)
    sources = {"ETH": "BTC"}
    alone = simulate(vas, model, "gbm", 1_500, 30, 10 / 365, 8, sources, ["given"])
    seen: list[int] = []
    with ChunkPool(workers=2) as pool:
        spread = simulate(
            vas,
            model,
            "gbm",
            1_500,
            30,
            10 / 365,
            8,
            sources,
            ["given"],
            lambda done, total: seen.append(done),
            pool,
        )
    assert spread.result.to_dict() == alone.result.to_dict()
    assert np.array_equal(spread.shortfalls["given"].need, alone.shortfalls["given"].need)
    assert seen[-1] == 2 * 1_500 * 30
    with pytest.raises(CrossMarginError, match="scheduler"):
        ChunkPool("tcp://127.0.0.1:9", connect_timeout=0.5)
