"""Stress along real windows and grids: the windows match the bundled candles, prices move as
documented, and every figure equals the core engine evaluated directly at the same prices."""

from __future__ import annotations

import csv
import gzip
from dataclasses import replace
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from crossmargin.app.portfolio import Portfolio, evaluate_portfolio, load_portfolio
from crossmargin.book.riskbook import RiskBook
from crossmargin.health import evaluate
from crossmargin.lab.path_stress import book_evaluator, portfolio_evaluator, run_paths
from crossmargin.lab.shocks import (
    DEFAULT_BETAS,
    GRIDS,
    Shock,
    StressPath,
    grid_paths,
    shocked_market,
    shocked_options,
    window_stress_path,
)
from crossmargin.lab.windows import WINDOWS, window_path
from crossmargin.maths.status import Status
from crossmargin.model import CrossMarginError

EXAMPLES = Path(__file__).parents[2] / "src" / "crossmargin" / "io" / "examples"
BINANCE = EXAMPLES / "demo-binance.json"
HYPERLIQUID = EXAMPLES / "demo-hyperliquid.json"
DERIBIT_PM = EXAMPLES / "demo-deribit-pm.json"


def _two_hour() -> list[list[str]]:
    data = resources.files("crossmargin.data").joinpath("btc_usdt_2h_2017-2025.csv.gz")
    return list(csv.reader(gzip.decompress(data.read_bytes()).decode().splitlines()))[1:]


def test_black_thursday_low_matches_the_candles() -> None:
    """2020-03-12: the lowest 2-hour low over the day's first open, read plainly from the
    bundled Binance file, is the window's low (-44%); the BTC/USD daily file says -40% from
    the 03-11 close (7,945.36) to the 03-12 low (4,736.21)."""
    day = [r for r in _two_hour() if r[0].startswith("2020-03-12")]
    expected = min(float(r[3]) for r in day) / float(day[0][1]) - 1.0
    path = window_path("2020-03-12")
    assert path.low == pytest.approx(expected, abs=1e-12)
    assert -0.47 < path.low < -0.40
    assert path.low == pytest.approx(4736.21 / 7945.36 - 1.0, abs=0.05)
    assert len(path.prices) == 3 * len(day)


def test_windows_walk_each_candle_as_the_replay_does() -> None:
    """Three points per candle: a down candle's high first, then its low, then its close."""
    path = window_path("2021-05-19")
    first = next(r for r in _two_hour() if r[0].startswith("2021-05-19"))
    o, h, lo, c = (float(x) for x in first[1:5])
    assert path.prices[:3] == ((h, lo, c) if c < o else (lo, h, c))
    assert path.start == o
    daily = window_path("2025-10-10")
    assert daily.low == pytest.approx(105833.75 / 121713.94 - 1.0)
    for name in WINDOWS:
        assert window_path(name).low < -0.1


def test_eth_beta_is_the_regression_on_the_bundled_candles() -> None:
    """DEFAULT_BETAS["ETH"]: slope of ETH/USDT on BTC/USDT 2-hour log-returns, 2025-05 to 07."""
    btc = {r[0]: float(r[4]) for r in _two_hour()}
    eth_file = resources.files("crossmargin.data").joinpath("eth_usdt_2h_2025-05.csv")
    rows = list(csv.reader(eth_file.read_text().splitlines()))[1:]
    pairs = np.log(np.array([(float(r[4]), btc[r[0]]) for r in rows if r[0] in btc]))
    eth, ref = np.diff(pairs[:, 0]), np.diff(pairs[:, 1])
    slope = float(np.cov(eth, ref)[0, 1] / np.var(ref, ddof=1))
    assert DEFAULT_BETAS["ETH"] == pytest.approx(slope, abs=0.05)


def test_shocked_prices_follow_beta_and_depeg() -> None:
    """BTC halves: BTCUSDT halves, ETH moves by 0.5 ** 1.5, USDT stays; USDT at 0.9: BTC's USD
    price stays and BTCUSDT (quoted in USDT) is 1/0.9 higher."""
    market = load_portfolio(BINANCE).market
    crash = shocked_market(market, Shock(0.5))
    assert crash.prices["BTCUSDT"] == pytest.approx(61500.0 * 0.5)
    assert crash.prices["ETH"] == pytest.approx(2450.0 * 0.5**1.5)
    assert crash.prices["SOLUSDT"] == pytest.approx(142.0 * 0.5**1.5)
    assert crash.prices["USDT"] == 1.0
    apart = shocked_market(market, Shock(1.2, 0.7))
    assert apart.prices["ETHUSDT"] == pytest.approx(2450.0 * 0.7)
    depeg = shocked_market(market, Shock(stable=0.9), ("USDT",))
    assert depeg.prices["BTC"] == 61500.0
    assert depeg.prices["USDT"] == pytest.approx(0.9)
    assert depeg.prices["BTCUSDT"] == pytest.approx(61500.0 / 0.9)


def test_coin_margined_accounts_move_their_coin() -> None:
    """A BTC-margined (Deribit) book: BTC is the account currency yet not cash."""
    market = load_portfolio(DERIBIT_PM).market
    moved = shocked_market(market, Shock(0.7))
    assert moved.prices["BTC"] == pytest.approx(60000.0 * 0.7)
    assert moved.prices["USDC"] == 1.0


def _all_paths(portfolio: Portfolio) -> list[StressPath]:
    options = any(i.is_option for i in portfolio.market.instruments.values())
    paths = [window_stress_path(w) for w in WINDOWS]
    for grid in GRIDS:
        paths.extend(grid_paths(grid, portfolio.market, options))
    return paths


def _path_by_name(paths: list[StressPath]) -> dict[str, StressPath]:
    return {p.name: p for p in paths}


@pytest.mark.parametrize("document", [BINANCE, HYPERLIQUID], ids=["binance", "hyperliquid"])
def test_book_stress_equals_evaluate_at_the_same_prices(document: Path) -> None:
    """Worst equity, its maintenance, the liquidation flag and the shortfall of every account
    on every path, recomputed with health.evaluate at the step's prices, step by step."""
    portfolio = load_portfolio(document)
    market = portfolio.market
    paths = _all_paths(portfolio)
    book = RiskBook.from_accounts(portfolio.accounts, market)
    report, _ = run_paths(
        [a.id for a in portfolio.accounts],
        book_evaluator(book, market),
        paths,
        rulebook=portfolio.rulebook.name,
        currency=market.currency,
    )
    by_name = _path_by_name(paths)
    accounts = {a.id: a for a in portfolio.accounts}
    assert len(report.outcomes) == len(paths) * len(accounts)
    for outcome in report.outcomes:
        path = by_name[outcome.scenario]
        account = accounts[outcome.account]
        steps = [evaluate(account, shocked_market(market, s, path.depegged)) for s in path.shocks]
        equities = [h.equity for h in steps]
        worst = int(np.argmin(equities))
        assert outcome.worst_step == worst
        assert outcome.worst_equity == pytest.approx(equities[worst], rel=1e-9, abs=1e-6)
        assert outcome.maintenance_at_worst == pytest.approx(
            steps[worst].maintenance_margin, rel=1e-9, abs=1e-6
        )
        flagged = [h.status >= Status.LIQUIDATABLE for h in steps]
        assert outcome.liquidated == any(flagged)
        if any(flagged):
            first = flagged.index(True)
            executed = min(first + path.lag, path.steps - 1) if first > 0 else 0
            assert outcome.liquidated_step == executed
            expected = max(-equities[executed], 0.0)
            assert outcome.shortfall == pytest.approx(expected, rel=1e-9, abs=1e-6)
        else:
            assert outcome.shortfall == 0.0
    crash = next(s for s in report.scenarios if s.name == "BTC -50%")
    assert crash.liquidated >= 1


def test_portfolio_margin_stress_equals_evaluate_portfolio() -> None:
    """Options under Deribit PM: the worst point of each path (vols scaled on the grid) is the
    margin command's result (evaluate_portfolio) at that point's prices and vols."""
    portfolio = load_portfolio(DERIBIT_PM)
    paths = [
        window_stress_path("2020-03-12"),
        *grid_paths("price-vol", portfolio.market, True),
        *grid_paths("depeg", portfolio.market, True),
    ]
    report, _ = run_paths(
        [a.id for a in portfolio.accounts],
        portfolio_evaluator(portfolio),
        paths,
        rulebook=portfolio.rulebook.name,
        currency=portfolio.market.currency,
    )
    by_name = _path_by_name(paths)
    for outcome in report.outcomes:
        path = by_name[outcome.scenario]
        shock = path.shocks[outcome.worst_step]
        moved = replace(
            portfolio,
            market=shocked_market(portfolio.market, shock, path.depegged),
            options=shocked_options(portfolio.options, shock),
        )
        health = evaluate_portfolio(moved).accounts[0].health
        assert health.equity == pytest.approx(outcome.worst_equity, rel=1e-9)
        assert health.maintenance_margin == pytest.approx(outcome.maintenance_at_worst, rel=1e-9)
    vol = {s.name: s for s in report.scenarios}
    short_vol = [o for o in report.outcomes if o.scenario.startswith("BTC +50%")]
    assert short_vol[-1].worst_equity < short_vol[0].worst_equity, "short strangle loses on vol"
    assert vol["BTC -50% vol x1"].btc_low == pytest.approx(-0.5)


def test_stale_oracle_executes_late_on_the_same_path() -> None:
    """A lagged path shares its window's equities; the liquidation executes lag steps later."""
    portfolio = load_portfolio(BINANCE)
    market = portfolio.market
    window = window_stress_path("2020-03-12")
    stale = grid_paths("stale-oracle", market, False)
    report, equity = run_paths(
        [a.id for a in portfolio.accounts],
        book_evaluator(RiskBook.from_accounts(portfolio.accounts, market), market),
        [window, *stale],
        rulebook="binance-usdm",
        currency="USDT",
    )
    fresh = {o.account: o for o in report.outcomes if o.scenario == window.name}
    for path in stale:
        np.testing.assert_array_equal(equity[path.name], equity[window.name])
        for o in (o for o in report.outcomes if o.scenario == path.name):
            assert o.worst_equity == fresh[o.account].worst_equity
            first = fresh[o.account].liquidated_step
            assert first is not None and o.liquidated_step == min(first + path.lag, 35)


def test_bad_paths_are_refused() -> None:
    market = load_portfolio(BINANCE).market
    with pytest.raises(CrossMarginError, match="window: no window '1999-01-01'"):
        window_path("1999-01-01")
    with pytest.raises(CrossMarginError, match="grid: no grid 'moon'"):
        grid_paths("moon", market, False)
    with pytest.raises(CrossMarginError, match=r"shock\.driver"):
        Shock(0.0)
    with pytest.raises(CrossMarginError, match="at least one step"):
        StressPath("empty", "window", "", ())


@settings(max_examples=60, deadline=None)
@given(
    driver=st.floats(0.05, 5.0),
    others=st.one_of(st.none(), st.floats(0.05, 5.0)),
    stable=st.floats(0.5, 1.0),
)
def test_marks_move_with_their_underlying_over_their_quote(
    driver: float, others: float | None, stable: float
) -> None:
    """Every mark moves by its underlying's factor over its quote's, the identity shock
    changes nothing, and a depeg never moves a coin's USD price."""
    market = load_portfolio(BINANCE).market
    assert shocked_market(market, Shock()).prices == market.prices
    moved = shocked_market(market, Shock(driver, others, stable), ("USDT",))
    for symbol, instrument in market.instruments.items():
        if symbol not in market.prices:
            continue
        beta = DEFAULT_BETAS.get(instrument.underlying, 1.5)
        by_beta = driver**beta if others is None else others
        up = driver if instrument.underlying == "BTC" else by_beta
        quote = stable if instrument.quote == "USDT" else 1.0
        assert moved.prices[symbol] == pytest.approx(market.prices[symbol] * up / quote)
    depegged = shocked_market(market, Shock(stable=stable), ("USDT",))
    assert depegged.prices["BTC"] == market.prices["BTC"]
