"""The ledger keeps working when the market moves against a book: positions are margined, never
refused, and a price or a funding payment always applies."""

from __future__ import annotations

import contextlib
import threading
from concurrent.futures import Future
from decimal import Decimal as D

import pytest
from hypothesis import given, settings, strategies as st

from crossmargin.ledger import Command, Deposit, EventKind, Ledger, Receipt, Trade, Writer
from crossmargin.ledger.liquidation import chunk_qty, model_market
from crossmargin.model import CrossMarginError

from .conftest import Database


def test_a_rally_past_a_bracket_cap_is_margined_not_refused(database: Database) -> None:
    """Binance BTCUSDT brackets (venues.md 1.2): 125x up to 50,000 of notional, 100x above.

    A 0.8 BTC short opened at 60,000 (notional 48,000, bracket 1) at 125x; at 63,000 its
    notional 50,400 is in bracket 2, whose cap is 100x. The position is now margined at the
    bracket's cap: IM = 50,400 / 100 = 504 (not 50,400 / 125 = 403.2), and every command on the
    account still works. With only 500 deposited the same rally liquidates the account instead.
    """
    with Ledger(database.url, schema=database.schema) as ledger:
        ledger.deposit("d", "a", 5_000)
        ledger.deposit("d2", "b", 500)
        ledger.price("p0", "BTCUSDT", 60_000)
        ledger.trade("tb", "b", "BTCUSDT", "-0.8", leverage=125)
        ledger.trade("t", "a", "BTCUSDT", "-0.8", leverage=125)
        receipt = ledger.price("p1", "BTCUSDT", 63_000)
        assert "b" not in ledger.state.positions
        assert any(e.body.get("account") == "b" for e in receipt.events[1:])
        health = ledger.health("a")
        (row,) = health.positions
        assert row.notional == 50_400.0
        assert row.bracket == 1 and row.max_leverage == 100
        assert abs(row.initial_margin - 504.0) < 1e-9
        ledger.price("p2", "BTCUSDT", 63_100)
        ledger.fund("f", "BTCUSDT", "0.0001")
        ledger.trade("close", "a", "BTCUSDT", "0.1", leverage=125)
        assert ledger.state.positions["a"]["BTCUSDT"].qty == D("-0.7")
        book = ledger.risk_book().account_risk("a")
        assert abs(book.cross_initial_margin - 0.7 * 63_100 / 125) < 1e-9
        assert model_market(ledger.state, ledger.ctx).mark("BTCUSDT") == 63_100


def test_a_dust_position_liquidates_in_finitely_many_steps() -> None:
    """Hyperliquid closes positions above 100,000 USDC in 20% chunks (venues.md 4.1). A chunk
    is whole lots (0.00001 BTC), and what would leave less than a lot closes whole: a position
    of one lot no longer loops forever on a chunk that rounds to zero.

    At 50,600 the 3 BTC long (10x, 30,000 deposited) has equity about 1,700 against a
    maintenance margin of about 1,900: one chunk of 0.6 BTC brings it back above; the one-lot
    long closes whole."""
    with Ledger("sqlite://", venue="hyperliquid") as ledger:
        ledger.deposit("d", "a", "0.1")
        ledger.deposit("d2", "whale", "30000")
        ledger.deposit("d3", "short", "500000")
        ledger.price("p", "BTC-PERP", 60_000)
        ledger.trade("t", "a", "BTC-PERP", "0.00001", leverage=40)
        ledger.trade("w", "whale", "BTC-PERP", "3", leverage=10)
        ledger.trade("s", "short", "BTC-PERP", "-3", leverage=2)
        receipt = ledger.price("drop", "BTC-PERP", 50_600)
        fills = [
            (e.body["account"], D(e.body["qty"]))
            for e in receipt.events
            if e.kind == EventKind.LIQUIDATION_FILL
        ]
        assert fills == [("a", D("-0.00001")), ("whale", D("-0.6"))]
        assert "a" not in ledger.state.positions
        assert ledger.state.positions["whale"]["BTC-PERP"].qty == D("2.4")
        assert ledger.screen().liquidatable() == []
        assert ledger.state.imbalance() == 0


@pytest.mark.parametrize(
    ("qty", "fraction", "lot", "expected"),
    [
        (D("3"), D("0.2"), D("0.00001"), D("0.6")),
        (D("-3"), D("0.2"), D("0.00001"), D("-0.6")),
        (D("0.00001"), D("0.2"), D("0.00001"), D("0.00001")),
        (D("0.00004"), D("0.2"), D("0.00001"), D("0.00004")),
        (D("0.0001"), D("0.2"), D("0.00001"), D("0.00002")),
        (D("0.000123"), D("0.5"), D("0.00001"), D("0.00006")),
        (D("0.000011"), D("0.5"), D("0.00001"), D("0.000011")),
    ],
)
def test_chunks_are_whole_lots_and_dust_closes_whole(
    qty: D, fraction: D, lot: D, expected: D
) -> None:
    assert chunk_qty(qty, fraction, lot) == expected


MOVE = st.one_of(
    st.decimals(min_value=D("-0.05"), max_value=D("0.05"), places=4),
    st.sampled_from([D("-0.3"), D("0.3"), D("-0.15"), D("0.15")]),
)


@settings(max_examples=25, deadline=None)
@given(
    st.sampled_from(["binance", "hyperliquid", "dydx"]),
    st.lists(
        st.tuples(
            st.integers(200, 20_000),
            st.integers(-2_000, 2_000).filter(bool),
            st.sampled_from([None, 2, 10, 20, 50, 100, 125]),
            st.sampled_from(["cross", "isolated"]),
        ),
        min_size=2,
        max_size=8,
    ),
    st.lists(st.tuples(MOVE, st.integers(-300, 300)), min_size=1, max_size=12),
)
def test_random_books_under_rallies_crashes_and_gaps(
    venue: str,
    traders: list[tuple[int, int, int | None, str]],
    path: list[tuple[D, int]],
) -> None:
    """Random books at random leverages (orders a venue refuses are simply refused) under a
    random path of moves, 30% gaps included, and funding: ``price`` and ``fund`` never raise,
    money is conserved exactly, and no account is left liquidatable after a pass."""
    with Ledger("sqlite://", venue=venue) as ledger:
        symbol = ledger.ctx.rules.btc_symbol
        ledger.price("p0", symbol, 60_000)
        for n, (wallet, milli, leverage, mode) in enumerate(traders):
            ledger.deposit(f"d{n}", f"t{n}", wallet)
            with contextlib.suppress(CrossMarginError):
                ledger.trade(
                    f"t{n}", f"t{n}", symbol, D(milli) / 1000, leverage=leverage, margin_mode=mode
                )
        for k, (move, rate) in enumerate(path):
            mark = ledger.state.prices[symbol]
            ledger.price(f"p{k + 1}", symbol, max((mark * (1 + move)).quantize(D(1)), D(1)))
            ledger.fund(f"f{k}", symbol, D(rate) / 1_000_000)
            assert ledger.screen().liquidatable() == []
            assert ledger.state.imbalance() == 0
        sums = {k: v for k, v in ledger.store.account_sums().items() if v}
        assert sums == {k: v for k, v in ledger.state.balances.items() if v}


def test_the_background_writer_acknowledges_each_command_after_its_commit(
    database: Database,
) -> None:
    """Four threads submit 500 commands each through one group-commit writer; every future
    resolves, refused ones with their own error, and the journal holds each accepted command
    once."""
    with Ledger(database.url, schema=database.schema) as ledger:
        ledger.price("p", "BTCUSDT", 60_000)
        futures: list[tuple[str, Future[Receipt]]] = []
        lock = threading.Lock()
        with Writer(ledger, max_batch=64) as writer:

            def feed(n: int) -> None:
                for i in range(500):
                    key = f"w{n}-{i}"
                    command: Command
                    if i % 5 == 4:
                        command = Trade(key, f"a{n}", "BTCUSDT", "0.001")
                    elif i % 7 == 6:
                        command = Trade(key, f"nobody{n}", "BTCUSDT", "0.001")
                    else:
                        command = Deposit(key, f"a{n}", 10)
                    future = writer.submit(command)
                    with lock:
                        futures.append((key, future))

            threads = [threading.Thread(target=feed, args=(n,)) for n in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        accepted = refused = 0
        for key, future in futures:
            error = future.exception(timeout=60)
            if error is None:
                assert future.result().key == key
                assert ledger.store.command(key) is not None
                accepted += 1
            else:
                assert isinstance(error, CrossMarginError) and error.path == "account"
                refused += 1
        assert accepted + refused == 2_000 and refused > 0
        assert ledger.state.imbalance() == 0
        assert ledger.replay().to_json() == ledger.state.to_json()


def test_the_writer_refuses_a_bad_batch_size_and_submissions_after_close() -> None:
    with Ledger("sqlite://") as ledger:
        for bad in (0, -5):
            with pytest.raises(CrossMarginError, match=r"^max_batch: must be >= 1"):
                Writer(ledger, max_batch=bad)
        writer = Writer(ledger)
        writer.close()
        with pytest.raises(CrossMarginError, match=r"^writer: closed"):
            writer.submit(Deposit("late", "a", 1))
        assert ledger.store.last_seq() == 0
