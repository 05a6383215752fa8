"""What the ledger's liquidation engine needs besides the state."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from crossmargin.model import Instrument
from crossmargin.rules.venue import VenueRules

__all__ = ["Context"]


@dataclass(frozen=True)
class Context:
    """Tradable instruments, the account currency and the venue's liquidation rules."""

    instruments: Mapping[str, Instrument]
    currency: str
    rules: VenueRules
