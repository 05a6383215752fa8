"""The synthetic book generator: seeded, one position per symbol, the intended shapes."""

from __future__ import annotations

import numpy as np

from crossmargin import Status
from crossmargin.book.riskbook import RiskBook
from crossmargin.lab.synthetic import synthetic_book, synthetic_market


def test_seeded_and_shaped() -> None:
    """Same seed, same book; Zipf instrument use; ~10% isolated; heavy-tailed equity."""
    market = synthetic_market(20)
    params, a = synthetic_book(market, 4_000, seed=5)
    _, b = synthetic_book(market, 4_000, seed=5)
    assert np.array_equal(a.qty, b.qty)
    key = a.account.astype(np.int64) * len(params.symbols) + a.instrument
    assert len(np.unique(key)) == len(key)
    use = np.bincount(a.instrument, minlength=len(params.symbols))
    assert use[0] == use.max() and use[0] > 5 * use[-1]
    assert 0.07 < a.isolated.mean() < 0.13
    equity = a.balances[:, params.currency] + a.balances[:, params.assets.index("BTC")] * 60_000
    assert np.median(equity) < equity.mean()
    book = RiskBook(params, a)
    assert book.positions == len(a.qty)
    assert set(book.values().status.tolist()) <= set(Status)
