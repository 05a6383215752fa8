"""The ledger keeps working when the market moves against a book: positions are margined, never
refused, and a price or a funding payment always applies."""

from __future__ import annotations

from decimal import Decimal as D

from tests.ledger.conftest import Database

from crossmargin.ledger import Ledger
from crossmargin.ledger.liquidation import model_market


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
