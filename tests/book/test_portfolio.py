"""Sparse portfolio aggregation against a dense brute-force product and hand P&L."""

from __future__ import annotations

import numpy as np
import pytest
from _book_cases import market

from crossmargin import Account, CrossMarginError, Position
from crossmargin.book.portfolio import exposure_matrix, uniform_risk_array, worst_losses
from crossmargin.book.riskbook import RiskBook
from crossmargin.lab.synthetic import synthetic_book, synthetic_market


def test_worst_losses_equal_dense_brute_force() -> None:
    """Chunked sparse products equal a dense loop over accounts and scenarios."""
    params, columns = synthetic_book(synthetic_market(12), 500, seed=7)
    exposure = exposure_matrix(columns, len(params.symbols))
    risk = np.random.default_rng(1).normal(size=(len(params.symbols), 64))
    result = worst_losses(exposure, risk, chunk=37)
    dense = np.zeros((500, len(params.symbols)))
    for a, i, q in zip(columns.account, columns.instrument, columns.qty, strict=True):
        dense[a, i] += q
    pnl = dense @ risk
    np.testing.assert_allclose(result.loss, np.maximum(-pnl.min(axis=1), 0.0), rtol=1e-12)
    held = pnl.min(axis=1) < 0
    assert np.array_equal(result.scenario[held], pnl.argmin(axis=1)[held])


def test_uniform_risk_array_by_hand() -> None:
    """One BTCUSDT contract (1 BTC) gains 60,000 * 10% = 6,000 USDT on a +10% move; one inverse
    BTCUSD contract (100 USD) gains 100/60,010 - 100/66,011 BTC, at 60,000 USDT per BTC."""
    m = market()
    book = RiskBook.from_accounts([Account("a", {"USDT": 1.0})], m)
    risk = uniform_risk_array(book.params, [0.1, -0.1])
    row = {s: k for k, s in enumerate(book.params.symbols)}
    assert risk[row["BTCUSDT"], 0] == pytest.approx(6_000.0, rel=1e-12)
    assert risk[row["BTCUSDT"], 1] == pytest.approx(-6_000.0, rel=1e-12)
    inverse = (100.0 / 60_010.0 - 100.0 / (60_010.0 * 1.1)) * 60_000.0
    assert risk[row["BTCUSD"], 0] == pytest.approx(inverse, rel=1e-12)


def test_book_accounts_through_exposure() -> None:
    """A long and a short account: worst cases on opposite sides of the grid."""
    m = market()
    accounts = [
        Account("long", {"USDT": 1e4}, [Position("BTCUSDT", 2.0, 60_000.0)]),
        Account("short", {"USDT": 1e4}, [Position("ETHUSDT", -10.0, 3_000.0)]),
    ]
    book = RiskBook.from_accounts(accounts, m)
    moves = np.linspace(-0.2, 0.2, 5)
    result = worst_losses(
        exposure_matrix(book.columns(), len(book.params.symbols)),
        uniform_risk_array(book.params, moves),
    )
    assert result.loss.tolist() == pytest.approx([24_000.0, 6_000.0], rel=1e-12)
    assert result.scenario.tolist() == [0, 4]


@pytest.mark.parametrize("risk", [np.zeros((3, 4)), np.full((4, 2), np.nan), np.zeros((4, 0))])
def test_bad_risk_array(risk: np.ndarray) -> None:
    """Wrong shape or non-finite values are bad input."""
    m = market()
    book = RiskBook.from_accounts([Account("a", {"USDT": 1.0})], m)
    with pytest.raises(CrossMarginError) as error:
        worst_losses(exposure_matrix(book.columns(), len(book.params.symbols)), risk)
    assert error.value.path == "risk"
