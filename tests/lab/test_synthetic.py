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


def test_a_range_of_accounts_is_that_slice_of_the_book() -> None:
    """Accounts 70,000 to 140,001 built alone (as a worker builds its shard) equal that slice
    of the whole book, across the generator's 16,384-account runs."""
    market = synthetic_market(8)
    _, whole = synthetic_book(market, 150_000, seed=3)
    _, part = synthetic_book(market, 150_000, seed=3, lo=70_000, hi=140_001)
    keep = (whole.account >= 70_000) & (whole.account < 140_001)
    assert np.array_equal(part.account, whole.account[keep] - 70_000)
    for name in ("instrument", "qty", "entry", "isolated", "isolated_margin"):
        assert np.array_equal(getattr(part, name), getattr(whole, name)[keep])
    assert np.array_equal(part.balances, whole.balances[70_000:140_001])
    assert part.account_ids[0] == "acct-70000"
