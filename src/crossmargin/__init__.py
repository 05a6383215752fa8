"""crossmargin: a cross-margin risk engine.

>>> from crossmargin import Account, Position, load_rulebook, evaluate
>>> market = load_rulebook("hyperliquid").market({"BTC-PERP": 100_000.0})
>>> account = Account("a1", {"USDC": 10_000.0}, [Position("BTC-PERP", 1.0, 100_000.0)])
>>> round(evaluate(account, market).positions[0].liquidation_price, 2)
91139.24
"""

from crossmargin.app import load_portfolio, parse_portfolio
from crossmargin.health import AccountHealth, PositionHealth, evaluate
from crossmargin.maths.status import Status
from crossmargin.model import (
    Account,
    CollateralRule,
    CrossMarginError,
    Instrument,
    Kind,
    MarginMode,
    MarginSchedule,
    Market,
    Order,
    Position,
    Tier,
)
from crossmargin.orders import WhatIf, max_withdrawable, what_if
from crossmargin.rules import Rulebook, bundled_rulebooks, load_rulebook

__all__ = [
    "Account",
    "AccountHealth",
    "CollateralRule",
    "CrossMarginError",
    "Instrument",
    "Kind",
    "MarginMode",
    "MarginSchedule",
    "Market",
    "Order",
    "Position",
    "PositionHealth",
    "Rulebook",
    "Status",
    "Tier",
    "WhatIf",
    "bundled_rulebooks",
    "evaluate",
    "load_portfolio",
    "load_rulebook",
    "max_withdrawable",
    "parse_portfolio",
    "what_if",
]
