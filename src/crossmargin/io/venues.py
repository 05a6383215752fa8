"""The multi-venue document: one trader's accounts on several venues.

```json
{"trader": "alice",
 "prices": {"BTC-PERP": 63000.0, "BTCUSDT": 63010.0},
 "venues": {"binance": {"rulebook": "binance-usdm", "prices": {"BTCUSDT": 63020.0}}},
 "accounts": [
   {"id": "alice-hl", "venue": "hyperliquid", "rulebook": "hyperliquid",
    "balances": {"USDC": 10000}, "positions": [{"symbol": "BTC-PERP", "qty": 1,
                                                "entry_price": 60000}]},
   {"id": "alice-bn", "venue": "binance", "balances": {"USDT": 3000},
    "positions": [{"symbol": "BTCUSDT", "qty": -1, "entry_price": 60000}]}]}
```

Each account names its ``venue`` and may name its ``rulebook``; otherwise the venue's section
under ``venues`` names it, and otherwise the venue name is the rulebook name. ``venues`` holds,
per venue, any top-level field of a portfolio document except ``accounts``
(:mod:`crossmargin.io.document`); its ``prices`` add to and override the shared ``prices``.
Each venue becomes one portfolio document of its accounts, parsed by
:func:`crossmargin.io.document.parse_document`. Account ids are unique across venues.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crossmargin.io.document import Document, decode_json, parse_document, read_bounded
from crossmargin.model import CrossMarginError

__all__ = ["VenueDocument", "parse_venue_document", "read_venue_document"]

_TOP_KEYS = {"trader", "prices", "venues", "accounts"}


@dataclass(frozen=True)
class VenueDocument:
    """The trader (``None`` when not named) and, per venue in order of first appearance, its
    portfolio document; ``indices`` gives each venue's accounts' positions in the file."""

    trader: str | None
    venues: tuple[tuple[str, Document], ...]
    indices: Mapping[str, tuple[int, ...]]


def _object(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise CrossMarginError(path, f"must be an object, got {type(value).__name__}")
    return value


def _text(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise CrossMarginError(path, "must be a non-empty string")
    return value


def _relocated(error: CrossMarginError, venue: str, indices: tuple[int, ...]) -> CrossMarginError:
    """An error from a venue's sub-document, at its place in the multi-venue file."""
    found = re.match(r"accounts\[(\d+)\]", error.path)
    if found is not None:
        place = f"accounts[{indices[int(found.group(1))]}]"
        return CrossMarginError(place + error.path[found.end() :], error.reason)
    return error.at(f"venues.{venue}")


def parse_venue_document(data: Any) -> VenueDocument:
    """Validate a multi-venue document already decoded from JSON; errors name the field."""
    doc = _object(data, "document")
    for key in doc:
        if key not in _TOP_KEYS:
            raise CrossMarginError(str(key), "unknown field")
    trader = doc.get("trader")
    trader = None if trader is None else _text(trader, "trader")
    shared = dict(_object(doc.get("prices", {}), "prices"))
    sections = _object(doc.get("venues", {}), "venues")
    accounts = doc.get("accounts")
    if not isinstance(accounts, list) or not accounts:
        raise CrossMarginError("accounts", "must be a non-empty list")
    grouped: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    rulebooks: dict[str, str] = {}
    for i, raw in enumerate(accounts):
        where = f"accounts[{i}]"
        account = dict(_object(raw, where))
        venue = _text(account.pop("venue", None), f"{where}.venue")
        section = _object(sections.get(venue, {}), f"venues.{venue}")
        named = account.pop("rulebook", None)
        rulebook = _text(named, f"{where}.rulebook") if named is not None else None
        rulebook = rulebook or section.get("rulebook") or venue
        if rulebooks.setdefault(venue, rulebook) != rulebook:
            raise CrossMarginError(
                f"{where}.rulebook",
                f"venue {venue!r} is margined by {rulebooks[venue]!r}, not {rulebook!r}",
            )
        grouped.setdefault(venue, []).append((i, account))
    for venue in sections:
        if venue not in grouped:
            raise CrossMarginError(f"venues.{venue}", "no account on this venue")
    venues = []
    indices = {}
    seen: dict[str, int] = {}
    for venue, members in grouped.items():
        section = dict(sections.get(venue, {}))
        if "accounts" in section:
            raise CrossMarginError(f"venues.{venue}.accounts", "accounts are listed at the top")
        prices = {**shared, **_object(section.pop("prices", {}), f"venues.{venue}.prices")}
        places = tuple(i for i, _ in members)
        sub = {**section, "rulebook": rulebooks[venue], "prices": prices}
        sub["accounts"] = [account for _, account in members]
        try:
            parsed = parse_document(sub)
        except CrossMarginError as error:
            raise _relocated(error, venue, places) from None
        for place, parsed_account in zip(places, parsed.accounts, strict=True):
            name = parsed_account.id
            if name in seen:
                raise CrossMarginError(
                    f"accounts[{place}].id",
                    f"duplicate account id {name!r} (also accounts[{seen[name]}])",
                )
            seen[name] = place
        venues.append((venue, parsed))
        indices[venue] = places
    return VenueDocument(trader, tuple(venues), indices)


def read_venue_document(path: str | Path) -> VenueDocument:
    """Read and validate a multi-venue document file."""
    return parse_venue_document(decode_json(read_bounded(path), str(path)))
