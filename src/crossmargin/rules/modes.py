"""Account modes: the venue setting, chosen per account, that decides which balances count as
margin (and at what ratio) and which margin modes a position may use.

A rulebook lists its modes under ``[account_modes.NAME]`` and names the venue's default in the
header (``account_mode``); a portfolio document may choose another (``account_mode``). Each
mode has a title, a source, ``margin_modes`` (the position margin modes it allows: ``cross``,
``isolated`` or both), an optional ``margin_call_ratio`` and its own ``collateral`` table, read
like the rulebook's top-level one (assets missing from a non-empty table count 0, except the
account currency). Examples: Binance USDⓈ-M Single-Asset mode counts the USDT wallet in full and
allows isolated positions; Multi-Assets mode values every asset at its collateral ratio and is
cross only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from crossmargin.model import Account, CollateralRule, CrossMarginError, MarginMode

__all__ = ["AccountMode", "collateral_rules", "parse_account_modes"]

_MODE_KEYS = {"title", "source", "notes", "margin_modes", "margin_call_ratio", "collateral"}


@dataclass(frozen=True)
class AccountMode:
    """One account mode of a venue (see the module docstring).

    ``margin_call_ratio`` is ``None`` where the mode keeps the rulebook's.
    """

    name: str
    title: str
    source: str
    notes: str
    margin_modes: tuple[MarginMode, ...]
    collateral: Mapping[str, CollateralRule]
    margin_call_ratio: float | None = None

    def check(self, account: Account, path: str = "") -> None:
        """Refuse a position whose margin mode this account mode does not allow, as the venue
        refuses it (e.g. an isolated position under Binance's Multi-Assets mode)."""
        for j, position in enumerate(account.positions):
            if position.margin_mode not in self.margin_modes:
                allowed = " and ".join(str(m) for m in self.margin_modes)
                where = f"positions[{j}].margin_mode"
                raise CrossMarginError(
                    f"{path}.{where}" if path else where,
                    f"{position.margin_mode} margin is not available in {self.title or self.name}"
                    f" ({allowed} only)",
                )


def _text(data: Mapping[str, Any], key: str, path: str, default: str | None = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str) or (default is None and not value.strip()):
        raise CrossMarginError(f"{path}.{key}", "required: a non-empty string")
    return value


def _margin_modes(value: Any, path: str) -> tuple[MarginMode, ...]:
    if not isinstance(value, list) or not value:
        raise CrossMarginError(path, "must be a non-empty list of 'cross' and 'isolated'")
    modes = []
    for i, item in enumerate(value):
        try:
            modes.append(MarginMode(item))
        except ValueError:
            raise CrossMarginError(
                f"{path}[{i}]", f"must be 'cross' or 'isolated', got {item!r}"
            ) from None
    return tuple(modes)


def _ratio(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise CrossMarginError(path, f"must be a number within (0, 1], got {value!r}")
    return float(value)


def collateral_rules(
    table: Any, path: str, collateral: Callable[[str, Mapping[str, Any], str], CollateralRule]
) -> dict[str, CollateralRule]:
    """A ``collateral`` table: one rule per asset, each read by ``collateral``."""
    if not isinstance(table, Mapping):
        raise CrossMarginError(path, "must be a table")
    return {asset: collateral(asset, rule, f"{path}.{asset}") for asset, rule in table.items()}


def parse_account_modes(
    data: Any,
    origin: str,
    collateral: Callable[[str, Mapping[str, Any], str], CollateralRule],
) -> dict[str, AccountMode]:
    """The ``[account_modes]`` section of a rulebook; ``collateral`` reads one asset's rule."""
    where = f"{origin}:account_modes"
    if not isinstance(data, Mapping):
        raise CrossMarginError(where, "must be a table")
    modes = {}
    for name, raw in data.items():
        path = f"{where}.{name}"
        if not isinstance(raw, Mapping):
            raise CrossMarginError(path, "must be a table")
        for key in raw:
            if key not in _MODE_KEYS:
                raise CrossMarginError(f"{path}.{key}", "unknown field")
        rules = collateral_rules(raw.get("collateral", {}), f"{path}.collateral", collateral)
        ratio = raw.get("margin_call_ratio")
        modes[name] = AccountMode(
            name=name,
            title=_text(raw, "title", path, ""),
            source=_text(raw, "source", path),
            notes=_text(raw, "notes", path, ""),
            margin_modes=_margin_modes(raw.get("margin_modes"), f"{path}.margin_modes"),
            collateral=MappingProxyType(rules),
            margin_call_ratio=None if ratio is None else _ratio(ratio, f"{path}.margin_call_ratio"),
        )
    return modes
