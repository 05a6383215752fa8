"""Durable ledger: an append-only journal of exact money events, and the liquidation engine.

The journal is the truth; balances and positions are derived from it. Amounts are ``Decimal``
with 8 decimal places (:mod:`crossmargin.ledger.limits` gives the accepted ranges); risk
figures come from the account-risk kernel at one float boundary. Commands run one at a time
(:class:`Ledger` methods), many in one transaction (:meth:`Ledger.execute`) or through a
background group-commit :class:`Writer`; several processes may write one database.
"""

from crossmargin.ledger.commands import Ledger, Receipt
from crossmargin.ledger.journal import Event, EventKind, Posting, State
from crossmargin.ledger.requests import (
    Command,
    Deposit,
    DepositInsurance,
    Fund,
    Price,
    Trade,
    Withdraw,
)
from crossmargin.ledger.writer import Writer
from crossmargin.rules.venue import VenueRules, bundled_venues, load_venue

__all__ = [
    "Command",
    "Deposit",
    "DepositInsurance",
    "Event",
    "EventKind",
    "Fund",
    "Ledger",
    "Posting",
    "Price",
    "Receipt",
    "State",
    "Trade",
    "VenueRules",
    "Withdraw",
    "Writer",
    "bundled_venues",
    "load_venue",
]
