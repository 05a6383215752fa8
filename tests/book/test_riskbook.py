"""The risk book against ``crossmargin.health.evaluate``, the one-account reference.

The second method is ``evaluate`` itself (the same kernels called account by account, with
prices in a ``Market``): every figure must agree to 1e-9 relative on random books, after ticks
and after edits.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from _book_cases import PRICES, assert_matches, books, market
from hypothesis import given, settings, strategies as st

from crossmargin import Account, CrossMarginError, MarginMode, Position, Status, evaluate
from crossmargin.book.riskbook import BookColumns, RiskBook

SETTINGS = settings(max_examples=40, deadline=None)


@SETTINGS
@given(books())
def test_book_equals_evaluate(accounts: list[Account]) -> None:
    """Equity, IM, MM, ratio, available, status, liquidation prices and crash moves."""
    m = market()
    assert_matches(RiskBook.from_accounts(accounts, m), accounts, m)


@SETTINGS
@given(
    books(),
    st.lists(
        st.tuples(st.sampled_from(sorted(PRICES)), st.floats(0.5, 1.5)), min_size=1, max_size=4
    ),
)
def test_ticks_equal_evaluate_at_new_prices(
    accounts: list[Account], ticks: list[tuple[str, float]]
) -> None:
    """Ticks (instrument marks move sums by difference; an asset price re-margins all)."""
    m = market()
    book = RiskBook.from_accounts(accounts, m)
    for name, factor in ticks:
        price = m.prices[name] * factor
        before = book.values().status.copy()
        result = book.apply_prices({name: price})
        m = m.with_prices({name: price})
        after = np.array([evaluate(a, m).status for a in accounts])
        assert sorted(result.changed.tolist()) == np.flatnonzero(before != after).tolist()
    assert_matches(book, accounts, m)


class _TinyBlocks(RiskBook):
    """Blocks of two accounts, so that small books span many blocks of buckets."""

    BLOCK = 2


@SETTINGS
@given(
    books(),
    st.lists(
        st.dictionaries(
            st.sampled_from(sorted(k for k in PRICES if k != "BTC")),
            st.floats(0.5, 1.5),
            min_size=2,
            max_size=4,
        ),
        min_size=1,
        max_size=3,
    ),
)
def test_multi_instrument_ticks_across_blocks(
    accounts: list[Account], ticks: list[dict[str, float]]
) -> None:
    """Ticks moving several marks at once, on a book cut into many account blocks: each
    account changed is reported once, against its status before the tick."""
    m = market()
    book = _TinyBlocks.from_accounts(accounts, m)
    for tick in ticks:
        prices = {name: m.prices[name] * factor for name, factor in tick.items()}
        before = np.array([evaluate(a, m).status for a in accounts])
        result = book.apply_prices(prices)
        m = m.with_prices(prices)
        after = np.array([evaluate(a, m).status for a in accounts])
        assert result.changed.tolist() == np.flatnonzero(before != after).tolist()
    assert_matches(book, accounts, m)


def test_tick_recomputes_only_holders() -> None:
    """A tick on one instrument touches exactly the accounts holding it."""
    m = market()
    accounts = [
        Account("a", {"USDT": 10_000.0}, [Position("BTCUSDT", 0.5, 60_000.0)]),
        Account("b", {"USDT": 10_000.0}, [Position("ETHUSDT", 2.0, 3_000.0)]),
        Account("c", {"USDT": 10_000.0}, [Position("BTCUSDT", -0.2, 61_000.0)]),
    ]
    book = RiskBook.from_accounts(accounts, m)
    assert book.apply_prices({"BTCUSDT": 59_000.0}).recomputed == 2
    assert book.apply_prices({"SOLUSDT": 140.0}).recomputed == 0


def test_status_change_is_reported() -> None:
    """Account ``a`` (0.5 BTC long, 1,500 USDT, first bracket 0.4%) is liquidatable below
    p with 1,500 + 0.5 (p - 60,000) = 0.004 * 0.5 p, i.e. p = 28,500 / 0.498 = 57,228.92."""
    m = market()
    account = Account("a", {"USDT": 1_500.0}, [Position("BTCUSDT", 0.5, 60_000.0)])
    book = RiskBook.from_accounts([account], m)
    assert book.values().status[0] == Status.HEALTHY
    liquidation = book.liquidation_prices().price[0]
    assert liquidation == pytest.approx(28_500.0 / 0.498, rel=1e-12)
    result = book.apply_prices({"BTCUSDT": 57_200.0})
    assert result.changed.tolist() == [0]
    assert result.values.status[0] == Status.LIQUIDATABLE


@pytest.mark.parametrize(
    ("prices", "path"),
    [
        ({"NOPE": 1.0}, "prices.NOPE"),
        ({"BTCUSDT": math.nan}, "prices.BTCUSDT"),
        ({"BTCUSDT": 0.0}, "prices.BTCUSDT"),
        ({"ETHUSDT": 3_100.0, "BTC": -5.0}, "prices.BTC"),
        ({"BTCUSDT": math.inf}, "prices.BTCUSDT"),
    ],
)
def test_bad_prices_change_nothing(prices: dict[str, float], path: str) -> None:
    """Bad input raises with the price path and leaves every figure as it was."""
    m = market()
    accounts = [
        Account("a", {"USDT": 5_000.0}, [Position("ETHUSDT", 3.0, 3_000.0)]),
        Account("b", {"USDT": 5_000.0, "BTC": 1.0}, [Position("BTCUSDT", -0.5, 60_000.0)]),
    ]
    book = RiskBook.from_accounts(accounts, m)
    before = book.values().equity.copy()
    with pytest.raises(CrossMarginError) as error:
        book.apply_prices(prices)
    assert error.value.path == path
    assert np.array_equal(book.values().equity, before)
    assert book.value_at({"ETHUSDT": 3_000.0}).equity.tolist() == before.tolist()


def test_missing_mark_of_held_instrument() -> None:
    """A held instrument without a mark price is bad input when the book is built."""
    prices = {k: v for k, v in PRICES.items() if k != "ETHUSDT"}
    m = market(prices)
    with pytest.raises(CrossMarginError) as error:
        RiskBook.from_accounts([Account("a", {}, [Position("ETHUSDT", 1.0, 3_000.0)])], m)
    assert error.value.path == "prices.ETHUSDT"
    book = RiskBook.from_accounts([Account("a", {"USDT": 1.0})], m)
    with pytest.raises(CrossMarginError):
        book.set_position("a", Position("ETHUSDT", 1.0, 3_000.0))


@pytest.mark.parametrize("kind", [RiskBook, _TinyBlocks])
def test_edits_equal_evaluate(kind: type[RiskBook]) -> None:
    """Open, change (cross to isolated), close positions, set balances and add accounts (the
    third account opens a new block of buckets in a book of two-account blocks)."""
    m = market()
    accounts = [
        Account("a", {"USDT": 20_000.0}, [Position("BTCUSDT", 1.0, 60_000.0)]),
        Account("b", {"USDT": 8_000.0, "BTC": 0.2}, [Position("ETHUSDT", -4.0, 3_100.0)]),
    ]
    book = kind.from_accounts(accounts, m)
    iso = Position("BTCUSDT", 0.6, 59_000.0, MarginMode.ISOLATED, 4_000.0)
    book.set_position("a", iso)
    book.set_position("a", Position("BTCUSD", -3_000.0, 60_500.0))
    book.set_position("b", Position("SOLUSDT", 40.0, 140.0, MarginMode.ISOLATED, 600.0))
    book.remove_position("b", "ETHUSDT")
    book.set_balance("b", "BTC", 0.5)
    book.add_account("c", {"USDT": 3_000.0})
    book.set_position("c", Position("ETHUSDT", 5.0, 2_900.0, leverage=2.0))
    book.apply_prices({"ETHUSDT": 3_000.0})
    expected = [
        Account("a", {"USDT": 20_000.0}, [iso, Position("BTCUSD", -3_000.0, 60_500.0)]),
        Account(
            "b",
            {"USDT": 8_000.0, "BTC": 0.5},
            [Position("SOLUSDT", 40.0, 140.0, MarginMode.ISOLATED, 600.0)],
        ),
        Account("c", {"USDT": 3_000.0}, [Position("ETHUSDT", 5.0, 2_900.0, leverage=2.0)]),
    ]
    assert_matches(book, expected, m)
    with pytest.raises(CrossMarginError):
        book.remove_position("b", "ETHUSDT")
    with pytest.raises(CrossMarginError):
        book.add_account("a")


def test_growth_relocates_blocks() -> None:
    """Hundreds of opens and closes (block moves, arena growth, compaction) leave the same
    figures as a book built afresh from the final columns."""
    m = market()
    n = 300
    book = _TinyBlocks.from_accounts([Account(f"a{k}", {"USDT": 1e4}) for k in range(n)], m)
    rng = np.random.default_rng(3)
    symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BTCUSD"]
    for _ in range(1_500):
        k, s = int(rng.integers(n)), symbols[int(rng.integers(4))]
        if rng.random() < 0.3 and book._find(k, book.params.symbols.index(s)) is not None:
            book.remove_position(f"a{k}", s)
        else:
            qty = float(rng.normal()) * (1_000.0 if s == "BTCUSD" else 60_000.0 / PRICES[s])
            book.set_position(f"a{k}", Position(s, qty or 1.0, PRICES[s] * 1.01))
    fresh = RiskBook(book.current_params(), book.columns())
    for got, expected in zip(
        (book.values().equity, book.values().maintenance_margin, book.values().status_code),
        (fresh.values().equity, fresh.values().maintenance_margin, fresh.values().status_code),
        strict=True,
    ):
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-6)
    assert book.positions == fresh.positions


def test_columns_round_trip() -> None:
    """Columns to accounts and back give the same book."""
    m = market()
    accounts = [
        Account("a", {"USDT": 2_000.0}, [Position("ETHUSDT", 1.0, 3_000.0, leverage=2.0)]),
        Account("b", {"BTC": 1.0}, [Position("SOLUSDT", -10.0, 150.0, MarginMode.ISOLATED, 90.0)]),
    ]
    book = RiskBook.from_accounts(accounts, m)
    again = book.columns().to_accounts(book.params, [0, 1])
    assert again == accounts
    assert isinstance(book.columns(), BookColumns)


def test_bad_columns() -> None:
    """Out-of-range indices, zero quantities and duplicate (account, instrument) rows."""
    m = market()
    book = RiskBook.from_accounts([Account("a", {"USDT": 1.0}, [Position("ETHUSDT", 1.0, 3e3)])], m)
    good = book.columns()
    cases = {
        "account[0]": replace(good, account=np.array([5], dtype=np.int32)),
        "qty[0]": replace(good, qty=np.array([0.0])),
        "leverage[0]": replace(good, leverage=np.array([0.5])),
        "instrument": replace(
            good,
            account=np.zeros(2, dtype=np.int32),
            instrument=np.repeat(good.instrument, 2),
            qty=np.ones(2),
            entry=np.ones(2),
            isolated=np.zeros(2, dtype=bool),
            isolated_margin=np.zeros(2),
            leverage=np.full(2, np.nan),
        ),
    }
    for path, columns in cases.items():
        with pytest.raises(CrossMarginError) as error:
            RiskBook(book.params, columns)
        assert error.value.path == path


@SETTINGS
@given(books(), st.sampled_from([1.0, 0.8, 1.25, 2.0]))
def test_liquidatable_under_a_trigger_multiple(accounts: list[Account], multiple: float) -> None:
    """The accounts a venue with trigger ``multiple`` x maintenance would liquidate, against
    the rule applied by hand to each account's ``evaluate``: cross equity under ``multiple`` x
    cross MM, or an isolated position's equity under ``multiple`` x its own MM."""
    m = market()
    book = RiskBook.from_accounts(accounts, m)
    expected = []
    for k, account in enumerate(accounts):
        h = evaluate(account, m)
        isolated = [p for p in h.positions if p.margin_mode == "isolated"]
        if h.cross_equity < multiple * h.cross_maintenance_margin or any(
            p.equity < multiple * p.maintenance_margin for p in isolated
        ):
            expected.append(k)
    assert book.liquidatable(multiple).tolist() == expected


def test_set_account_holds_the_account_as_given() -> None:
    """Replacing an account's balances and positions (one dropped, one changed, one added)
    leaves the book as a fresh one of the new account, and its figures equal ``evaluate``."""
    m = market()
    old = Account(
        "a",
        {"USDT": 20_000.0, "BTC": 1.0},
        [Position("BTCUSDT", 0.5, 60_000.0), Position("ETHUSDT", -3.0, 3_000.0)],
    )
    new = Account(
        "a",
        {"USDT": 5_000.0},
        [
            Position("ETHUSDT", 4.0, 2_900.0, MarginMode.ISOLATED, 1_500.0),
            Position("BTCUSD", -2_000.0, 61_000.0),
        ],
    )
    book = RiskBook.from_accounts([old, Account("b", {"USDT": 1.0})], m)
    book.set_account(new)
    book.set_account(Account("c", {"BTC": 2.0}, [Position("SOLUSDT", 10.0, 150.0)]))
    accounts = [
        new,
        Account("b", {"USDT": 1.0}),
        Account("c", {"BTC": 2.0}, [Position("SOLUSDT", 10.0, 150.0)]),
    ]
    assert_matches(book, accounts, m)
    with pytest.raises(CrossMarginError, match=r"^positions\[0\]\.symbol: unknown instrument"):
        book.set_account(Account("a", {"USDT": 1.0}, [Position("NOPE", 1.0, 1.0)]))
    assert_matches(book, accounts, m)


@pytest.mark.parametrize("multiple", [0.0, -1.0, math.nan, math.inf])
def test_liquidatable_rejects_a_bad_multiple(multiple: float) -> None:
    book = RiskBook.from_accounts([Account("a", {"USDT": 1.0})], market())
    with pytest.raises(CrossMarginError, match=r"^multiple: must be a positive number"):
        book.liquidatable(multiple)


def test_columns_in_any_order_build_the_same_book() -> None:
    """Columns shuffled out of account order (sorted first, then placed) give the book built
    from sorted columns, figure for figure; a second position of an account in one instrument
    is refused in either order."""
    from crossmargin.lab.synthetic import synthetic_book, synthetic_market

    params, columns = synthetic_book(synthetic_market(8), 3_000, seed=9)
    shuffle = np.random.default_rng(1).permutation(len(columns.qty))
    fields = ("account", "instrument", "qty", "entry", "isolated", "isolated_margin", "leverage")
    shuffled = replace(columns, **{f: getattr(columns, f)[shuffle] for f in fields})
    a, b = RiskBook(params, columns), RiskBook(params, shuffled)
    np.testing.assert_array_equal(a.values().equity, b.values().equity)
    np.testing.assert_array_equal(a.values().maintenance_margin, b.values().maintenance_margin)
    np.testing.assert_array_equal(a.liquidation_prices().price, b.liquidation_prices().price)
    for source in (columns, shuffled):
        twice = {f: np.insert(getattr(source, f), 1, getattr(source, f)[0]) for f in fields}
        with pytest.raises(CrossMarginError, match="second position"):
            RiskBook(params, replace(source, **twice))


@SETTINGS
@given(books(), st.data())
def test_analysis_equals_evaluate(accounts: list[Account], data: st.DataObject) -> None:
    """Figures, crash moves and every position's liquidation and bankruptcy prices of a subset
    of accounts, against ``evaluate`` account by account."""
    m = market()
    book = RiskBook.from_accounts(accounts, m)
    rows = data.draw(st.lists(st.integers(0, len(accounts) - 1), min_size=1, unique=True))
    got = book.analysis(rows)
    assert got.account.tolist() == sorted(rows)
    symbols = book.params.symbols
    for k, a in enumerate(got.account.tolist()):
        h = evaluate(accounts[a], m)
        assert got.values.status_code[k] == int(h.status)
        for mine, theirs in [
            (got.values.equity[k], h.equity),
            (got.values.maintenance_margin[k], h.maintenance_margin),
            (got.values.initial_margin[k], h.initial_margin),
        ]:
            assert mine == pytest.approx(theirs, rel=1e-9, abs=1e-6)
        crash = got.crash.distance[k]
        assert (h.crash_distance is None) == math.isnan(crash)
        if h.crash_distance is not None:
            assert crash == pytest.approx(h.crash_distance, rel=1e-9, abs=1e-12)
        lo, hi = got.starts[k], got.starts[k + 1]
        mine = {
            (symbols[got.instrument[j]], bool(got.isolated[j])): (
                got.qty[j],
                got.mark[j],
                got.liquidation[j],
                got.bankruptcy[j],
            )
            for j in range(lo, hi)
        }
        derivatives = [p for p in h.positions if p.kind != "spot"]
        assert len(mine) == len(derivatives)
        for p in derivatives:
            qty, mark, liq, bust = mine[(p.symbol, p.margin_mode == "isolated")]
            assert qty == p.qty
            assert mark == p.mark_price
            for value, expected in [(liq, p.liquidation_price), (bust, p.bankruptcy_price)]:
                assert (expected is None) == math.isnan(value)
                if expected is not None:
                    assert value == pytest.approx(expected, rel=1e-9)
