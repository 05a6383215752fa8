"""The portfolio document: rulebook, prices, instruments and accounts in one JSON object.

```json
{"rulebook": "hyperliquid",
 "prices": {"BTC-PERP": 63287.0, "USDC": 1.0},
 "instruments": [{"symbol": "BTC-PERP", "kind": "perpetual", "underlying": "BTC",
                  "quote": "USDC", "max_leverage": 50}],
 "accounts": [{"id": "a1", "balances": {"USDC": 1000.0},
               "positions": [{"symbol": "BTC-PERP", "qty": -0.5, "entry_price": 60000.0}]}]}
```

Optional top-level fields: ``currency`` and ``margin_call_ratio`` (override the rulebook's),
``leverage_tiers`` (ccxt ``fetch_leverage_tiers()`` output: symbol -> tiers),
``portfolio_margin`` (a PM rulebook: ``cme-span``, ``deribit-pm``, ``okx-pm`` or a path) and
``options`` (valuation time, vols and vol surfaces: ``crossmargin.pm.book.parse_option_data``).
Options are instruments of kind ``option`` with ``strike``, ``option_type`` and ``expiry``.
Positions may also be ccxt position structures as ``fetch_positions()`` returns them
(``contracts``, ``side``,
``entryPrice``, ``markPrice``, ``marginMode``, ``collateral``, ``leverage``); a ccxt unified
symbol such as ``BTC/USDT:USDT`` resolves to the rulebook market it names.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crossmargin.model import Account, CrossMarginError, MarginMode, Market, Position
from crossmargin.pm.book import OptionData, parse_option_data
from crossmargin.pm.rules import PmRulebook, bundled_pm_rulebooks, load_pm_rulebook
from crossmargin.rules import Rulebook, load_rulebook

__all__ = ["Portfolio", "load_portfolio", "parse_portfolio"]

_PM_MODELS = {"cme-span", "deribit-pm", "okx-pm"}

_TOP_KEYS = {
    "rulebook",
    "prices",
    "instruments",
    "accounts",
    "currency",
    "margin_call_ratio",
    "leverage_tiers",
    "portfolio_margin",
    "options",
}
_POSITION_KEYS = {"symbol", "qty", "entry_price", "margin_mode", "isolated_margin", "leverage"}
_CCXT_POSITION_KEYS = {
    "symbol",
    "contracts",
    "contractSize",
    "side",
    "entryPrice",
    "markPrice",
    "marginMode",
    "collateral",
    "leverage",
    "info",
    "id",
    "timestamp",
    "datetime",
    "lastUpdateTimestamp",
    "notional",
    "lastPrice",
    "unrealizedPnl",
    "realizedPnl",
    "percentage",
    "initialMargin",
    "initialMarginPercentage",
    "maintenanceMargin",
    "maintenanceMarginPercentage",
    "marginRatio",
    "liquidationPrice",
    "hedged",
    "stopLossPrice",
    "takeProfitPrice",
}


@dataclass(frozen=True)
class Portfolio:
    """A parsed document: the rulebook, the market, the accounts and, for portfolio margin,
    the PM rulebook and the option data (valuation time, vols)."""

    rulebook: Rulebook
    market: Market
    accounts: tuple[Account, ...]
    pm: PmRulebook | None = None
    options: OptionData | None = None


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise CrossMarginError(path, f"must be an object, got {type(value).__name__}")
    return value


def _list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise CrossMarginError(path, f"must be a list, got {type(value).__name__}")
    return value


def _unified_symbols(market_symbols: Mapping[str, Any]) -> dict[str, str]:
    """ccxt unified symbol (``BTC/USDT:USDT``) -> rulebook symbol, for perpetuals."""
    aliases: dict[str, str] = {}
    for symbol, instrument in market_symbols.items():
        if instrument.kind == "perpetual":
            aliases[f"{instrument.underlying}/{instrument.quote}:{instrument.settle}"] = symbol
    return aliases


def _position(raw: Any, path: str, aliases: Mapping[str, str]) -> tuple[Position, float | None]:
    """A position and, for ccxt input, the mark price it carries."""
    data = _mapping(raw, path)
    ccxt = "contracts" in data or "side" in data
    allowed = _CCXT_POSITION_KEYS if ccxt else _POSITION_KEYS
    for key in data:
        if key not in allowed:
            raise CrossMarginError(f"{path}.{key}", "unknown field")
    symbol = data.get("symbol")
    if isinstance(symbol, str):
        symbol = aliases.get(symbol, symbol)
    try:
        if not ccxt:
            mode = data.get("margin_mode", "cross")
            return Position(
                symbol=symbol,  # type: ignore[arg-type]
                qty=data.get("qty"),  # type: ignore[arg-type]
                entry_price=data.get("entry_price"),  # type: ignore[arg-type]
                margin_mode=_mode(mode, "margin_mode"),
                isolated_margin=data.get("isolated_margin"),
                leverage=data.get("leverage"),
            ), None
        side = data.get("side")
        if side not in ("long", "short"):
            raise CrossMarginError("side", f"must be 'long' or 'short', got {side!r}")
        contracts = data.get("contracts")
        if isinstance(contracts, int | float) and not isinstance(contracts, bool) and contracts < 0:
            raise CrossMarginError("contracts", "must be >= 0 (the side carries the direction)")
        qty = contracts if side == "long" or not isinstance(contracts, int | float) else -contracts
        mode = _mode(data.get("marginMode") or "cross", "marginMode")
        return Position(
            symbol=symbol,  # type: ignore[arg-type]
            qty=qty,  # type: ignore[arg-type]
            entry_price=data.get("entryPrice"),  # type: ignore[arg-type]
            margin_mode=mode,
            isolated_margin=data.get("collateral") if mode == MarginMode.ISOLATED else None,
            leverage=data.get("leverage"),
        ), data.get("markPrice")
    except CrossMarginError as error:
        raise error.at(path) from None


def _mode(value: Any, field: str) -> MarginMode:
    try:
        return MarginMode(str(value).lower())
    except ValueError:
        raise CrossMarginError(field, f"must be 'cross' or 'isolated', got {value!r}") from None


def parse_portfolio(data: Any, rulebook: str | Path | None = None) -> Portfolio:
    """Validate a document (already decoded from JSON).

    ``rulebook`` overrides the document's rulebook or, when it names a portfolio-margin rulebook,
    its ``portfolio_margin``.
    """
    doc = _mapping(data, "document")
    for key in doc:
        if key not in _TOP_KEYS:
            raise CrossMarginError(key, "unknown field")
    pm_name = doc.get("portfolio_margin")
    name = doc.get("rulebook")
    if rulebook is not None and _is_pm(rulebook):
        pm_name = rulebook
    elif rulebook is not None:
        name = rulebook
    if name is None:
        raise CrossMarginError("rulebook", "required (in the document or with --rulebook)")
    book = load_rulebook(name)
    pm = None if pm_name is None else load_pm_rulebook(pm_name)
    options = None
    if "options" in doc:
        options = parse_option_data(_mapping(doc["options"], "options"), "options")
    elif pm is not None:
        raise CrossMarginError("options", "portfolio margin needs the options section")
    listed = _list(doc.get("instruments", []), "instruments")
    entries = [dict(_mapping(e, f"instruments[{i}]")) for i, e in enumerate(listed)]
    for symbol, tiers in _mapping(doc.get("leverage_tiers", {}), "leverage_tiers").items():
        entries.append({"symbol": symbol, "tiers": _list(tiers, f"leverage_tiers.{symbol}")})
    instruments = book.with_instruments(entries)
    aliases = _unified_symbols(instruments)
    prices: dict[str, float] = {}
    for key, value in _mapping(doc.get("prices", {}), "prices").items():
        prices[aliases.get(key, key)] = value
    accounts = []
    seen: set[str] = set()
    for a, raw in enumerate(_list(doc.get("accounts", []), "accounts")):
        where = f"accounts[{a}]"
        acc = _mapping(raw, where)
        for key in acc:
            if key not in {"id", "balances", "positions"}:
                raise CrossMarginError(f"{where}.{key}", "unknown field")
        positions = []
        for p, item in enumerate(_list(acc.get("positions", []), f"{where}.positions")):
            position, mark = _position(item, f"{where}.positions[{p}]", aliases)
            if mark is not None and position.symbol not in prices:
                prices[position.symbol] = mark
            positions.append(position)
        balances = _mapping(acc.get("balances", {}), f"{where}.balances")
        try:
            account = Account(str(acc.get("id", "")), dict(balances), positions)
        except CrossMarginError as error:
            raise error.at(where) from None
        if account.id in seen:
            raise CrossMarginError(f"{where}.id", f"duplicate account id {account.id!r}")
        seen.add(account.id)
        accounts.append(account)
    ratio = doc.get("margin_call_ratio", book.margin_call_ratio)
    currency = doc.get("currency", book.currency)
    market = Market(instruments, prices, currency, book.collateral, ratio)
    return Portfolio(book, market, tuple(accounts), pm, options)


def _is_pm(name: str | Path) -> bool:
    """True for a bundled PM rulebook name or a TOML file whose model is a PM model."""
    if str(name) in bundled_pm_rulebooks():
        return True
    path = Path(name)
    if path.suffix != ".toml" or not path.is_file():
        return False
    try:
        header = tomllib.loads(path.read_text("utf-8")).get("rulebook", {})
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return False
    return isinstance(header, Mapping) and header.get("model") in _PM_MODELS


def load_portfolio(path: str | Path, rulebook: str | Path | None = None) -> Portfolio:
    """Read and validate a portfolio document file."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as error:
        raise CrossMarginError(str(path), f"cannot read: {error.strerror}") from None
    except UnicodeDecodeError:
        raise CrossMarginError(str(path), "not UTF-8 text") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise CrossMarginError(
            str(path), f"not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    return parse_portfolio(data, rulebook)
