"""Venue liquidation rules as data: strict loading of the TOML files in ``rules/liquidation/``.

A liquidation rulebook has a ``[rulebook]`` header (name, title, venue, source URL(s), as_of,
version, notes) and these sections (multiples are of the maintenance margin, rates are
fractions of notional):

- ``[margin]``: ``rulebook`` (the margin rulebook whose instruments the ledger trades) and
  ``btc_symbol`` (its BTC perpetual, used by the replay's synthetic book);
- ``[trigger]`` ``maintenance_multiple`` (default 1): liquidatable below this x maintenance;
- ``[partial]`` ``target`` (default 1): close until equity >= target x maintenance;
  ``chunk_fraction`` / ``chunk_above``: close positions above that notional in that fraction;
- ``[backstop]`` ``below_maintenance_multiple``: below it everything closes and the remaining
  equity goes to the fund (a number or a ``"2/3"`` fraction);
- ``[penalty]`` ``rate`` (default 0): paid to the insurance fund, capped at remaining equity;
- ``[fees]`` ``maker`` and ``taker`` trading fee rates;
- ``[insurance]`` ``covers_bankruptcy`` (default true): the fund pays negative wallets first;
- ``[adl]`` ``ranking``: ``pnl_leverage`` (queue by PnL% x leverage) or ``pro_rata``;
- ``[orders]`` ``lot_size`` (contracts; liquidation sizes are whole lots, and a position of less
  than a lot closes whole), ``fill_band`` (a fill more than this fraction away from the mark is
  refused unless it names an outside price source), ``max_funding_rate`` (the venue's clamp on
  one interval's funding rate, either sign) and ``max_liquidation_steps`` (partial closes of one
  account in one pass before the rest closes whole).

Any key not listed is an error naming ``file:section.key``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from crossmargin.model import CrossMarginError
from crossmargin.rules.loader import bundled_names, read_rulebook

__all__ = ["RANKINGS", "VenueRules", "bundled_venues", "load_venue"]

RANKINGS = ("pnl_leverage", "pro_rata")

_SECTIONS: Mapping[str, frozenset[str]] = {
    "rulebook": frozenset({"name", "title", "venue", "source", "as_of", "version", "notes"}),
    "margin": frozenset({"rulebook", "btc_symbol"}),
    "trigger": frozenset({"maintenance_multiple"}),
    "partial": frozenset({"target", "chunk_fraction", "chunk_above"}),
    "backstop": frozenset({"below_maintenance_multiple"}),
    "penalty": frozenset({"rate"}),
    "fees": frozenset({"maker", "taker"}),
    "insurance": frozenset({"covers_bankruptcy"}),
    "adl": frozenset({"ranking"}),
    "orders": frozenset({"lot_size", "fill_band", "max_funding_rate", "max_liquidation_steps"}),
}
_REQUIRED = ("rulebook", "margin", "fees", "adl")


@dataclass(frozen=True)
class VenueRules:
    """How a venue liquidates (see the module docstring for each parameter).

    ``chunk_fraction`` and ``backstop_ratio`` are ``None`` where the venue has no such step.
    """

    name: str
    title: str
    venue: str
    sources: tuple[str, ...]
    as_of: str
    version: str
    notes: str
    margin_rulebook: str
    btc_symbol: str
    trigger: Decimal
    target: Decimal
    chunk_fraction: Decimal | None
    chunk_above: Decimal
    backstop_ratio: Decimal | None
    penalty_rate: Decimal
    maker_fee: Decimal
    taker_fee: Decimal
    insurance_covers: bool
    adl: str
    lot_size: Decimal
    fill_band: Decimal
    max_funding_rate: Decimal
    max_liquidation_steps: int


def _decimal(path: str, value: Any) -> Decimal:
    """A TOML number, or a string holding a decimal or an ``a/b`` fraction, as a Decimal."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise CrossMarginError(path, f"must be a number, got {value!r}")
    text = repr(value) if isinstance(value, float) else str(value)
    try:
        top, _, bottom = text.partition("/")
        number = Decimal(top) / Decimal(bottom) if bottom else Decimal(top)
    except (InvalidOperation, ZeroDivisionError):
        raise CrossMarginError(path, f"must be a number or a fraction, got {value!r}") from None
    if not number.is_finite():
        raise CrossMarginError(path, f"must be finite, got {value!r}")
    return number


class _Reader:
    """Typed access to one section, every error naming ``origin:section.key``."""

    def __init__(self, data: Mapping[str, Any], origin: str, section: str) -> None:
        self.data = data.get(section, {})
        self.where = f"{origin}:{section}"
        if not isinstance(self.data, Mapping):
            raise CrossMarginError(self.where, "must be a table")
        for key in self.data:
            if key not in _SECTIONS[section]:
                raise CrossMarginError(f"{self.where}.{key}", "unknown field")

    def path(self, key: str) -> str:
        return f"{self.where}.{key}"

    def text(self, key: str, default: str | None = None) -> str:
        if key not in self.data:
            if default is None:
                raise CrossMarginError(self.path(key), "required")
            return default
        value = self.data[key]
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip():
            raise CrossMarginError(self.path(key), f"must be a non-empty string, got {value!r}")
        return str(value)

    def number(
        self, key: str, low: Decimal, high: Decimal | None, default: Decimal | None = None
    ) -> Decimal:
        """A decimal with ``low <= value`` (``< high`` when given); required without default."""
        if key not in self.data:
            if default is None:
                raise CrossMarginError(self.path(key), "required")
            return default
        value = _decimal(self.path(key), self.data[key])
        if value < low or (high is not None and value >= high):
            bound = f"[{low}, {high})" if high is not None else f">= {low}"
            raise CrossMarginError(self.path(key), f"must be {bound}, got {value}")
        return value

    def optional(self, key: str, high: Decimal) -> Decimal | None:
        """An optional decimal within ``(0, high]``; ``None`` when absent."""
        if key not in self.data:
            return None
        value = _decimal(self.path(key), self.data[key])
        if not 0 < value <= high:
            raise CrossMarginError(self.path(key), f"must be within (0, {high}], got {value}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise CrossMarginError(self.path(key), f"must be true or false, got {value!r}")
        return value

    def sources(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key)
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items:
            raise CrossMarginError(self.path(key), "required: a URL or a list of URLs")
        for i, item in enumerate(items):
            if not isinstance(item, str) or not item.strip():
                raise CrossMarginError(f"{self.path(key)}[{i}]", "must be a non-empty string")
        return tuple(items)


def _parse(data: Mapping[str, Any], origin: str) -> VenueRules:
    for section in data:
        if section not in _SECTIONS:
            raise CrossMarginError(f"{origin}:{section}", "unknown section")
    for section in _REQUIRED:
        if section not in data:
            raise CrossMarginError(f"{origin}:{section}", "required section")
    head, margin, trigger, partial, backstop, penalty, fees, insurance, adl, orders = (
        _Reader(data, origin, s) for s in _SECTIONS
    )
    zero, one = Decimal(0), Decimal(1)
    trigger_multiple = trigger.number("maintenance_multiple", zero, None, one)
    if trigger_multiple <= 0:
        raise CrossMarginError(trigger.path("maintenance_multiple"), "must be > 0")
    target = partial.number("target", trigger_multiple, None, one)
    chunk = partial.optional("chunk_fraction", one)
    ratio = backstop.optional("below_maintenance_multiple", trigger_multiple)
    ranking = adl.text("ranking")
    if ranking not in RANKINGS:
        raise CrossMarginError(adl.path("ranking"), f"must be one of {', '.join(RANKINGS)}")
    return VenueRules(
        name=head.text("name"),
        title=head.text("title", ""),
        venue=head.text("venue", ""),
        sources=head.sources("source"),
        as_of=head.text("as_of"),
        version=head.text("version"),
        notes=head.text("notes", ""),
        margin_rulebook=margin.text("rulebook"),
        btc_symbol=margin.text("btc_symbol"),
        trigger=trigger_multiple,
        target=target,
        chunk_fraction=chunk,
        chunk_above=partial.number("chunk_above", zero, None, zero),
        backstop_ratio=ratio,
        penalty_rate=penalty.number("rate", zero, one, zero),
        maker_fee=fees.number("maker", zero, one),
        taker_fee=fees.number("taker", zero, one),
        insurance_covers=insurance.flag("covers_bankruptcy", True),
        adl=ranking,
        lot_size=orders.number("lot_size", Decimal("0.00000001"), None, Decimal("0.001")),
        fill_band=orders.number("fill_band", Decimal("0.001"), one, Decimal("0.05")),
        max_funding_rate=orders.number("max_funding_rate", zero, one, Decimal("0.03")),
        max_liquidation_steps=int(
            orders.number("max_liquidation_steps", one, Decimal(10_000), Decimal(50))
        ),
    )


def bundled_venues() -> list[str]:
    """Names of the liquidation rulebooks shipped with the package."""
    return bundled_names("liquidation")


def load_venue(name_or_path: str | Path) -> VenueRules:
    """Load a bundled liquidation rulebook by name (``binance``) or any such file by path."""
    origin, data = read_rulebook("liquidation", name_or_path, "venue", "liquidation rules")
    return _parse(data, origin)
