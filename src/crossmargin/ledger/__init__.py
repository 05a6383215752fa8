"""Durable ledger: an append-only journal of exact money events, and the liquidation engine.

The journal is the truth; balances and positions are derived from it. Amounts are ``Decimal``
with 8 decimal places; risk figures come from :mod:`crossmargin.health` at one float boundary.
"""

from crossmargin.ledger.commands import Ledger, Receipt
from crossmargin.ledger.journal import Event, EventKind, Posting, State
from crossmargin.rules.venue import VenueRules, bundled_venues, load_venue

__all__ = [
    "Event",
    "EventKind",
    "Ledger",
    "Posting",
    "Receipt",
    "State",
    "VenueRules",
    "bundled_venues",
    "load_venue",
]
