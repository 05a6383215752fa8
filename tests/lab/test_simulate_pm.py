"""The ``pm`` mode of the Monte Carlo: its maintenance margin against ``crossmargin compare``
and the engine repriced at the path's prices, liquidation against cross on a book portfolio
margin offsets, survival read from its shortfalls against its liquidation pass, and the mode
left out with the reason where the venue has no PM rulebook."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from crossmargin.app.compare import compare_modes
from crossmargin.app.portfolio import evaluate_portfolio, load_portfolio, parse_portfolio
from crossmargin.lab.paths import JumpModel, growth_chunk
from crossmargin.lab.simulate import (
    PathBook,
    PmPathBook,
    chunk_pass,
    in_mode,
    simulate,
    survival,
    trader_accounts,
)

DATA = Path(__file__).parents[1] / "data"
HEDGE = DATA / "okx-pm-hedge.json"
TWO = {
    "rulebook": "binance-usdm",
    "portfolio_margin": "okx-pm",
    "prices": {"BTCUSDT": 60_000.0, "ETHUSDT": 2_500.0, "USDT": 1.0},
    "accounts": [
        {
            "id": "pm",
            "balances": {"USDT": 12_000.0},
            "positions": [
                {"symbol": "BTCUSDT", "qty": 1.0, "entry_price": 58_000.0},
                {"symbol": "ETHUSDT", "qty": -10.0, "entry_price": 2_600.0},
            ],
        }
    ],
}


def _written(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "doc.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture(params=["hedge", "two"])
def document(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    return HEDGE if request.param == "hedge" else _written(tmp_path, TWO)


def _pm_book(path: Path, n: int) -> tuple[PmPathBook, dict[str, int]]:
    va = trader_accounts([load_portfolio(path)])[0]
    column = {"BTC": 0, "ETH": 1}
    return PmPathBook(in_mode(va, "pm"), n, column), column


def test_step_zero_equals_compare(document: Path) -> None:
    """With no move, every path's PM maintenance and equity are the ``pm`` column of
    ``crossmargin compare --modes`` for the same document."""
    column = next(c for c in compare_modes(document).columns if c.name == "pm")
    assert column.rulebook == "okx-pm"
    pb, _ = _pm_book(document, 3)
    pb.move(np.ones((3, 2)))
    expected = column.accounts[0]
    assert pb.maintenance() == pytest.approx(np.full(3, expected.maintenance_margin), rel=1e-12)
    assert pb.book.values().cross_equity == pytest.approx(np.full(3, expected.equity))


def test_hedge_requirement_by_hand() -> None:
    """The hedged basis book (1 BTC long USDT-settled, 1 short USDC-settled at 40,000): no
    scenario loss, no basis (both perpetuals); MR9 charges 0.75% of the 40,000 hedged across
    settle currencies and MR7 0.2% of the 80,000 gross delta, so MM = max(300, 160) = 300."""
    pb, _ = _pm_book(HEDGE, 1)
    pb.move(np.ones((1, 2)))
    assert pb.maintenance()[0] == pytest.approx(300.0)


@pytest.mark.parametrize("moves", [(1.07, 0.9), (0.8, 1.25), (1.5, 1.5)])
def test_moved_paths_equal_engine_repriced(moves: tuple[float, float]) -> None:
    """A path at price relatives ``g`` gets the PM maintenance ``crossmargin margin`` gives the
    document with its prices times ``g``."""
    g_btc, g_eth = moves
    doc = copy.deepcopy(TWO)
    doc["prices"].update(BTCUSDT=60_000.0 * g_btc, ETHUSDT=2_500.0 * g_eth)
    expected = evaluate_portfolio(parse_portfolio(doc)).accounts[0].health
    portfolio = parse_portfolio(TWO)
    va = in_mode(trader_accounts([portfolio])[0], "pm")
    pb = PmPathBook(va, 2, {"BTC": 0, "ETH": 1})
    pb.move(np.array([[1.0, 1.0], [g_btc, g_eth]]))
    assert pb.maintenance()[1] == pytest.approx(expected.maintenance_margin, rel=1e-12)
    assert pb.book.values().cross_equity[1] == pytest.approx(expected.equity, rel=1e-12)


def test_hedge_liquidates_no_earlier_than_cross() -> None:
    """On the hedged book the equity under both modes is the same on every path until a first
    liquidation (the same cross account at the same prices, one trigger); portfolio margin's
    requirement (0.75% of one leg) stays under cross's (0.4% of each leg, more above 50,000
    notional) at every price, checked over the moves, so no path is liquidated earlier under
    PM than under cross."""
    va = trader_accounts([load_portfolio(HEDGE)])[0]
    column = {"BTC": 0}
    grid = np.linspace(0.5, 3.0, 101)[:, None]
    pm = PmPathBook(in_mode(va, "pm"), len(grid), column)
    cross = PathBook(in_mode(va, "cross"), len(grid), column)
    pm.move(grid)
    cross.move(grid)
    assert (pm.maintenance() <= cross.book.values().maintenance_margin).all()
    model = JumpModel.gbm("BTC", 0.8)
    growth = growth_chunk(model, 512, 96, 8 / 365, 3, 0)
    sample = np.array([95])

    def first(mode: str) -> np.ndarray:
        vas = [in_mode(va, mode)]
        return chunk_pass(vas, growth, column, sample, True, lambda n: None, mode == "pm")[2]

    first_pm, first_cross = first("pm"), first("cross")
    assert (first_cross >= 0).mean() > 0.2
    hit = first_pm >= 0
    assert (first_cross[hit] >= 0).all() and (first_cross[hit] <= first_pm[hit]).all()
    assert hit.mean() < (first_cross >= 0).mean()


def test_survival_reads_the_liquidation_pass() -> None:
    """With nothing added, the share of paths surviving by the PM shortfalls is the share the
    liquidation pass does not liquidate (the same condition on the same paths)."""
    vas = trader_accounts([load_portfolio(HEDGE)])
    run = simulate(vas, JumpModel.gbm("BTC", 0.8), "gbm", 600, 48, 4 / 365, 5, modes=["pm"])
    mode = run.result.modes[0]
    assert mode.mode == "pm" and run.result.portfolio_margin == "simulated under okx-pm"
    sf = run.shortfalls["pm"]
    assert survival(sf, np.zeros(len(sf.current))) == pytest.approx(
        1.0 - mode.liquidation_probability
    )
    assert 0.0 < mode.liquidation_probability < 1.0
    assert mode.capital_for_survival is not None and mode.capital_for_survival > 0.0


def test_no_pm_rulebook_leaves_the_mode_out() -> None:
    """Hyperliquid has no portfolio-margin rulebook: the run keeps the other modes and says
    why pm is not among them."""
    portfolio = parse_portfolio(
        {
            "rulebook": "hyperliquid",
            "prices": {"BTC-PERP": 60_000.0, "USDC": 1.0},
            "accounts": [
                {
                    "id": "a",
                    "balances": {"USDC": 5_000.0},
                    "positions": [{"symbol": "BTC-PERP", "qty": 0.5, "entry_price": 60_000.0}],
                }
            ],
        }
    )
    vas = trader_accounts([portfolio])
    run = simulate(vas, JumpModel.gbm("BTC", 0.8), "gbm", 50, 8, 1 / 365, 1)
    assert [m.mode for m in run.result.modes] == ["given", "cross", "isolated"]
    assert run.result.portfolio_margin == (
        "not available (a: no bundled portfolio-margin rulebook is built on hyperliquid)"
    )
