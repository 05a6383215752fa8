"""Sharded stress on a small local Dask cluster equals the single-process result."""

from __future__ import annotations

import numpy as np
import pytest
from _book_cases import market

from crossmargin import Account, CrossMarginError, MarginMode, Position, evaluate
from crossmargin.book.riskbook import BookParams, RiskBook
from crossmargin.lab.distributed import (
    DistributedBook,
    Scenario,
    StressResult,
    run_stress,
    stress_book,
    stress_columns,
)
from crossmargin.lab.synthetic import synthetic_book, synthetic_market, synthetic_recipe


def test_cluster_equals_single_process() -> None:
    """Four shards on two in-process workers give the single-process table."""
    params, columns = synthetic_book(synthetic_market(8), 400, seed=2)
    scenarios = [Scenario.uniform(-0.3), Scenario.uniform(0.2), Scenario.historical("2020-03-12")]
    scenarios.append(Scenario.explicit("BTC only", {"BTCUSDT": 0.6, "BTC": 0.6}))
    single = stress_columns(params, columns, scenarios)
    spread = run_stress(columns, params, scenarios, shards=4)
    assert spread.account_ids == single.account_ids
    np.testing.assert_allclose(spread.worst_loss, single.worst_loss, rtol=1e-12)
    assert np.array_equal(spread.worst_scenario, single.worst_scenario)
    assert np.array_equal(spread.liquidated, single.liquidated)
    np.testing.assert_allclose(spread.shortfall, single.shortfall, rtol=1e-12)
    assert single.liquidated[0] > 0


def test_stress_equals_evaluate_at_shocked_prices() -> None:
    """Per-scenario equity through ``evaluate`` on a shocked ``Market`` (second method)."""
    m = market()
    accounts = [
        Account("a", {"USDT": 2_000.0}, [Position("BTCUSDT", 0.5, 60_000.0)]),
        Account("b", {"USDT": 500.0, "BTC": 0.1}, [Position("ETHUSDT", -4.0, 3_000.0)]),
        Account(
            "c", {"USDT": 100.0}, [Position("SOLUSDT", 50.0, 150.0, MarginMode.ISOLATED, 400.0)]
        ),
    ]
    scenarios = [Scenario.uniform(-0.1), Scenario.uniform(0.3)]
    result = run_stress(accounts, m, scenarios, shards=2)
    params = BookParams.from_market(m, ["BTC"])
    base = np.array([evaluate(a, m).equity for a in accounts])
    shocked = []
    for s in scenarios:
        moved = m.with_prices(s.prices(params))
        health = [evaluate(a, moved) for a in accounts]
        shocked.append([h.equity for h in health])
        assert result.liquidated[len(shocked) - 1] == sum(h.status >= 2 for h in health)
        negative = -sum(min(h.equity, 0.0) for h in health)
        assert result.shortfall[len(shocked) - 1] == pytest.approx(negative, abs=1e-9)
    losses = base[None, :] - np.array(shocked)
    np.testing.assert_allclose(result.worst_loss, losses.max(axis=0), rtol=1e-9)
    assert isinstance(result, StressResult)


def test_historical_move_and_errors() -> None:
    """2020-03-12: BTC/USD low 4,736.21 after a 7,945.36 close (btc_usd_1d.csv), -40.39%."""
    assert Scenario.historical("2020-03-12").move == pytest.approx(4736.21 / 7945.36 - 1)
    with pytest.raises(CrossMarginError):
        Scenario.historical("1999-01-01")
    with pytest.raises(CrossMarginError):
        Scenario.uniform(-1.5)
    with pytest.raises(CrossMarginError):
        Scenario.explicit("x", {"BTCUSDT": 0.0})


def test_unreachable_scheduler() -> None:
    """A scheduler nobody listens on is reported as bad input, not a traceback."""
    params, columns = synthetic_book(synthetic_market(6), 10, seed=1)
    with pytest.raises(CrossMarginError) as error:
        run_stress(columns, params, [Scenario.uniform(-0.1)], "tcp://127.0.0.1:9", 1, 0.5)
    assert error.value.path == "scheduler"


def test_shards_stay_on_workers_across_ticks_and_scenarios() -> None:
    """Shards built on the workers from a recipe, ticked twice and stressed, equal one
    in-process book put through the same ticks (second path: ``RiskBook`` directly), and the
    stress leaves them as they were."""
    market = synthetic_market(8)
    recipe = synthetic_recipe(market, 300, seed=4)
    params, columns = recipe(0, 300)
    single = RiskBook(params, columns)
    scenarios = [Scenario.uniform(-0.25), Scenario.explicit("ETH up", {"ETHUSDT": 1.3})]
    with DistributedBook(params, recipe=recipe, accounts=300, shards=3) as spread:
        for prices in ({"BTCUSDT": 52_000.0}, {"BTCUSDT": 47_000.0, "ETHUSDT": 2_500.0}):
            tick = spread.apply_prices(prices)
            expected = single.apply_prices(prices)
            assert tick.changed == tuple(single.account_ids[k] for k in expected.changed)
            assert tick.recomputed == expected.recomputed
        first = spread.stress(scenarios)
        again = spread.stress(scenarios)
    alone = stress_book(single, scenarios)
    np.testing.assert_allclose(first.worst_loss, alone.worst_loss, rtol=1e-12)
    np.testing.assert_array_equal(again.worst_loss, first.worst_loss)
    assert np.array_equal(first.liquidated, alone.liquidated)
    np.testing.assert_allclose(first.shortfall, alone.shortfall, rtol=1e-12)


def test_worker_processes_equal_single_process() -> None:
    """Two worker processes (the columns sent once to each) give the single-process table."""
    params, columns = synthetic_book(synthetic_market(6), 200, seed=3)
    scenarios = [Scenario.uniform(-0.35), Scenario.historical("2022-11-09")]
    single = stress_columns(params, columns, scenarios)
    spread = run_stress(columns, params, scenarios, shards=2, processes=True)
    np.testing.assert_allclose(spread.worst_loss, single.worst_loss, rtol=1e-12)
    assert np.array_equal(spread.liquidated, single.liquidated)


def test_book_needs_columns_or_recipe() -> None:
    """Neither the columns nor a recipe: bad input naming ``columns``."""
    params, _ = synthetic_book(synthetic_market(6), 10, seed=1)
    with pytest.raises(CrossMarginError) as error:
        DistributedBook(params)
    assert error.value.path == "columns"
