"""The risk book loaded from a ledger: the same figures as the ledger's own health checks."""

from __future__ import annotations

import numpy as np
import pytest

from crossmargin import Status
from crossmargin.ledger import Ledger

from .conftest import Database


def test_risk_book_matches_ledger_health(database: Database) -> None:
    """Three traders (cross long, isolated short, flat) on the binance rulebook: the book's
    equity, IM, MM and status per account equal ``Ledger.health``; a tick on the book then
    agrees with the ledger after the same price command."""
    with Ledger(database.url, schema=database.schema) as ledger:
        ledger.price("p1", "BTCUSDT", 60_000)
        ledger.price("p2", "ETHUSDT", 3_000)
        for name, amount in (("ann", 10_000), ("bob", 4_000), ("cat", 500)):
            ledger.deposit(f"d-{name}", name, amount)
        ledger.trade("t1", "ann", "BTCUSDT", "0.5")
        ledger.trade("t2", "ann", "ETHUSDT", "-2")
        ledger.trade("t3", "bob", "BTCUSDT", "-0.2", margin_mode="isolated", leverage=10)
        book = ledger.risk_book()
        assert book.account_ids == ["ann", "bob", "cat"]
        assert book.positions == 3

        def check() -> None:
            values = book.values()
            for k, name in enumerate(book.account_ids):
                health = ledger.health(name)
                assert values.equity[k] == pytest.approx(health.equity, rel=1e-12)
                assert values.initial_margin[k] == pytest.approx(health.initial_margin, rel=1e-12)
                assert values.maintenance_margin[k] == pytest.approx(
                    health.maintenance_margin, rel=1e-12, abs=1e-9
                )
                assert values.status[k] == health.status

        check()
        result = book.apply_prices({"BTCUSDT": 64_000.0})
        ledger.price("p3", "BTCUSDT", 64_000)
        check()
        assert result.recomputed == 2
        assert np.all(book.values().status == Status.HEALTHY)
