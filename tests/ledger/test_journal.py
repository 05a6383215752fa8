"""Fills, fees, liquidation, insurance fund and ADL against amounts worked out by hand.

Margin parameters: Binance BTCUSDT bracket 1 (MMR 0.4%, 125x, floor 0, cap 50k) and bracket 2
(MMR 0.5%, cum 50, 100x), venues.md 1.2; taker fee 0.05% and liquidation fee 1.25%, venues.md 1.6.
Every expected figure below is recomputed in the docstring with plain arithmetic.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal as D

import pytest

from crossmargin.ledger import Ledger
from crossmargin.ledger.journal import EventKind
from crossmargin.rules import load_rulebook

from .conftest import Database

BINANCE_BRACKETS = load_rulebook("binance-usdm").instruments


@pytest.fixture
def ledger(database: Database) -> Iterator[Ledger]:
    with Ledger(database.url, schema=database.schema) as opened:
        yield opened


def kinds(receipt_events: tuple[object, ...]) -> list[str]:
    return [str(e.kind) for e in receipt_events]


def test_average_entry_realised_pnl_and_fees(ledger: Ledger) -> None:
    """Buy 0.5 @ 60,000 and 0.5 @ 62,000: entry 61,000; sell 0.4 @ 63,000: PnL 0.4 x 2,000 = 800.

    Taker fees 0.05%: 15 + 15.5 + 12.6 = 43.1. Wallet 10,000 - 43.1 + 800 = 10,756.9.
    """
    ledger.deposit("d", "a", 10_000)
    ledger.price("p", "BTCUSDT", 60_000)
    ledger.trade("t1", "a", "BTCUSDT", "0.5", 60_000)
    ledger.trade("t2", "a", "BTCUSDT", "0.5", 62_000)
    assert ledger.state.positions["a"]["BTCUSDT"].entry == D(61_000)
    ledger.trade("t3", "a", "BTCUSDT", "-0.4", 63_000)
    held = ledger.state.positions["a"]["BTCUSDT"]
    assert (held.qty, held.entry) == (D("0.6"), D(61_000))
    assert ledger.state.balance("trader:a") == D("10756.9")
    assert ledger.state.balance("fees") == D("43.1")
    assert ledger.state.balance("external") == D(-800)
    assert ledger.state.imbalance() == 0


def test_liquidation_penalty_capped_by_equity(ledger: Ledger) -> None:
    """Long 0.5 @ 60,000 with 1,000: wallet 985 after the 15 fee.

    At 58,100 equity = 985 - 0.5 x 1,900 = 35 < MM = 0.004 x 29,050 = 116.2: the whole position
    closes at the mark; the penalty 1.25% x 29,050 = 363.125 is capped at the 35 of equity, which
    goes to the insurance fund and leaves the wallet at 0.
    """
    ledger.deposit("d", "a", 1_000)
    ledger.price("p0", "BTCUSDT", 60_000)
    ledger.trade("t", "a", "BTCUSDT", "0.5")
    assert ledger.price("p1", "BTCUSDT", 58_500).events[1:] == ()
    events = ledger.price("p2", "BTCUSDT", 58_100).events
    assert kinds(events) == ["price", "liquidation_fill", "insurance_transfer"]
    assert events[1].body["qty"] == "-0.5"
    assert ledger.state.balance("insurance") == D(35)
    assert ledger.state.balance("trader:a") == 0
    assert "a" not in ledger.state.positions


def test_isolated_bankruptcy_fund_then_adl(ledger: Ledger) -> None:
    """Isolated long 0.1 @ 60,000 at 20x: margin 6,000 / 20 = 300.

    A fund of 35 and an opposite short (0.5 @ 60,000). At 55,000 the isolated loss is 500, so the
    position's wallet ends at -200: the fund pays 35, ADL covers 165. Bankruptcy price
    55,000 + 165 / 0.1 = 56,650; the short closes 0.1 there (realising 0.1 x 3,350 = 335) and the
    haircut 0.1 x 1,650 = 165 goes to the bankrupt position. The cross wallet is untouched.
    """
    ledger.deposit_insurance("f", 35)
    ledger.deposit("d1", "long", 5_000)
    ledger.deposit("d2", "short", 100_000)
    ledger.price("p0", "BTCUSDT", 60_000)
    ledger.trade("t1", "long", "BTCUSDT", "0.1", margin_mode="isolated", leverage=20)
    ledger.trade("t2", "short", "BTCUSDT", "-0.5")
    assert ledger.state.balance("isolated:long:BTCUSDT") == D(300)
    wallet = ledger.state.balance("trader:long")
    short_wallet = ledger.state.balance("trader:short")
    events = ledger.price("p1", "BTCUSDT", 55_000).events
    assert kinds(events) == ["price", "liquidation_fill", "insurance_transfer", "adl_fill"]
    adl = events[3].body
    assert (adl["price"], adl["qty"], adl["haircut"]) == ("56650.00000000", "0.1", "165.00000000")
    assert ledger.state.balance("isolated:long:BTCUSDT") == 0
    assert ledger.state.balance("trader:long") == wallet
    assert ledger.state.balance("trader:short") == short_wallet + 335
    assert ledger.state.positions["short"]["BTCUSDT"].qty == D("-0.4")
    assert ledger.state.balance("insurance") == 0
    assert ledger.state.imbalance() == 0


def test_bad_debt_when_fund_and_adl_are_exhausted(ledger: Ledger) -> None:
    """Long 0.1 @ 60,000 with 100 (fee 3, wallet 97). At 50,000 the loss is 1,000: wallet -903.

    No fund, no opposite position: the 903 is bad debt and the wallet is set back to zero.
    """
    ledger.deposit("d", "a", 100)
    ledger.price("p0", "BTCUSDT", 60_000)
    ledger.trade("t", "a", "BTCUSDT", "0.1")
    events = ledger.price("p1", "BTCUSDT", 50_000).events
    assert kinds(events) == ["price", "liquidation_fill", "bad_debt"]
    assert ledger.state.bad_debt == D(903)
    assert ledger.state.balance("bad_debt") == D(-903)
    assert ledger.state.balance("trader:a") == 0
    assert ledger.state.imbalance() == 0


def test_hyperliquid_closes_large_positions_in_chunks(database: Database) -> None:
    """Hyperliquid liquidation rules over the Binance brackets: positions above 100k of notional
    close in 20% chunks.

    Long 3 @ 60,000 (180k notional, bracket 2: MM = 0.005 n - 50) with 3,000, less the 0.045%
    fee of 81: wallet 2,919. At 59,300: equity = 2,919 - 2,100 = 819 < MM = 0.005 x 177,900 - 50
    = 839.5 but above the backstop line 2/3 x 839.5 = 559.7: one 20% chunk (0.6) closes, leaving
    2.4 x 59,300 = 142,320 of notional, MM = 661.6 < 819: done.
    """
    with Ledger(
        database.url,
        schema=database.schema,
        venue="hyperliquid",
        instruments=BINANCE_BRACKETS,
        currency="USDT",
    ) as hl:
        hl.deposit("d", "a", 3_000)
        hl.price("p0", "BTCUSDT", 60_000)
        hl.trade("t", "a", "BTCUSDT", "3")
        events = hl.price("p1", "BTCUSDT", 59_300).events
        assert kinds(events) == ["price", "liquidation_fill"]
        assert D(events[1].body["qty"]) == D("-0.6")
        assert hl.state.positions["a"]["BTCUSDT"].qty == D("2.400")


def test_hyperliquid_backstop_hands_equity_to_the_fund(database: Database) -> None:
    """Same account at 59,200: equity 2,919 - 2,400 = 519 < 2/3 x (0.005 x 177,600 - 50) = 558.7.

    Everything closes and the 519 left goes to the fund.
    """
    with Ledger(
        database.url,
        schema=database.schema,
        venue="hyperliquid",
        instruments=BINANCE_BRACKETS,
        currency="USDT",
    ) as hl:
        hl.deposit("d", "a", 3_000)
        hl.price("p0", "BTCUSDT", 60_000)
        hl.trade("t", "a", "BTCUSDT", "3")
        events = hl.price("p1", "BTCUSDT", 59_200).events
        assert kinds(events) == ["price", "liquidation_fill", "insurance_transfer"]
        assert hl.state.balance("insurance") == D(519)
        assert hl.state.balance("trader:a") == 0


def test_adl_queue_takes_the_highest_rank_first(ledger: Ledger) -> None:
    """Two equally profitable shorts of 0.1 @ 60,000; the one on 1,000 (more leverage) ranks first.

    Bankrupt long 0.1 @ 60,000 with 100 (fee 3): at 50,000 wallet -903, no fund. Both shorts
    could cover; Pb = 50,000 + 903 / 0.1 = 59,030 and the whole 0.1 comes from the riskier one.
    """
    ledger.deposit("d1", "bankrupt", 100)
    ledger.deposit("d2", "calm", 100_000)
    ledger.deposit("d3", "bold", 1_000)
    ledger.price("p0", "BTCUSDT", 60_000)
    ledger.trade("t1", "bankrupt", "BTCUSDT", "0.1")
    ledger.trade("t2", "calm", "BTCUSDT", "-0.1")
    ledger.trade("t3", "bold", "BTCUSDT", "-0.1")
    events = ledger.price("p1", "BTCUSDT", 50_000).events
    adl = [e.body for e in events if e.kind == EventKind.ADL_FILL]
    assert [(a["account"], a["price"], a["haircut"]) for a in adl] == [
        ("bold", "59030.00000000", "903.00000000")
    ]
    assert "bold" not in ledger.state.positions
    assert ledger.state.bad_debt == 0


def test_dydx_adl_is_pro_rata(database: Database) -> None:
    """dYdX rules over the Binance brackets: the 0.1 bankrupt long is shared by size over shorts
    of 0.1 and 0.3: 0.025, 0.075.

    Pb = 50,000 + 903 / 0.1 = 59,030; haircuts 0.025 x 9,030 = 225.75 and 0.075 x 9,030 = 677.25.
    The dYdX liquidation fee (1.5%) is capped by the zero equity, so nothing else moves.
    """
    with Ledger(
        database.url,
        schema=database.schema,
        venue="dydx",
        instruments=BINANCE_BRACKETS,
        currency="USDT",
    ) as dx:
        dx.deposit("d1", "bankrupt", 100)
        dx.deposit("d2", "small", 100_000)
        dx.deposit("d3", "large", 100_000)
        dx.price("p0", "BTCUSDT", 60_000)
        dx.trade("t1", "bankrupt", "BTCUSDT", "0.1")
        dx.trade("t2", "small", "BTCUSDT", "-0.1")
        dx.trade("t3", "large", "BTCUSDT", "-0.3")
        events = dx.price("p1", "BTCUSDT", 50_000).events
        adl = sorted((e.body["account"], e.body["qty"], e.body["haircut"]) for e in events[2:])
        assert adl == [
            ("large", "0.07500000", "677.25000000"),
            ("small", "0.02500000", "225.75000000"),
        ]
        assert dx.state.balance("trader:bankrupt") == 0


def test_a_position_without_a_mark_is_liquidated_at_the_entry_standing_in_for_it(
    ledger: Ledger,
) -> None:
    """ETHUSDT filled off-book (0.1 @ 3,000, ``price_source``) before any ETH mark: the screen
    values it at that entry, so when BTC's fall liquidates the account the ETH leg closes there
    too (at 3,000, a zero PnL), not at a mark that does not exist."""
    ledger.deposit("d", "a", 1_000)
    ledger.price("p0", "BTCUSDT", 60_000)
    ledger.trade("t1", "a", "BTCUSDT", "0.5")
    ledger.trade("t2", "a", "ETHUSDT", "0.1", 3_000, price_source="otc")
    events = ledger.price("p1", "BTCUSDT", 55_000).events
    fills = {e.body["symbol"]: e.body for e in events if e.kind == EventKind.LIQUIDATION_FILL}
    assert fills["BTCUSDT"]["price"] == "55000"
    assert (fills["ETHUSDT"]["qty"], D(fills["ETHUSDT"]["price"])) == ("-0.1", D(3_000))
    assert "a" not in ledger.state.positions
    assert ledger.state.imbalance() == 0
