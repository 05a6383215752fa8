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
``account_mode`` (one of the rulebook's account modes, e.g. ``multi_assets``; default: the
venue's default mode),
``leverage_tiers`` (ccxt ``fetch_leverage_tiers()`` output: symbol -> tiers),
``portfolio_margin`` (a PM rulebook: ``cme-span``, ``deribit-pm``, ``okx-pm`` or a path) and
``options`` (valuation time, vols and vol surfaces). Options are instruments of kind ``option``
with ``strike``, ``option_type`` and ``expiry``. Positions may also be ccxt position structures
as ``fetch_positions()`` returns them (``contracts``, ``side``, ``entryPrice``, ``markPrice``,
``marginMode``, ``collateral``, ``leverage``).

This module only reads the text: rulebook names, ccxt unified symbols (``BTC/USDT:USDT``) and
instrument entries stay as written; :mod:`crossmargin.app.portfolio` resolves them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from crossmargin.model import (
    Account,
    CrossMarginError,
    MarginMode,
    OptionData,
    Position,
    VolSurface,
)
from crossmargin.model.checks import finite, non_empty

__all__ = ["Document", "parse_document", "parse_options", "read_document"]

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
    "account_mode",
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
class Document:
    """A validated document with its names as written.

    ``instruments`` are the document's market entries (ccxt ``leverage_tiers`` appended as
    ``{"symbol", "tiers"}`` entries), ``marks`` the (symbol, markPrice) pairs that ccxt
    positions carry, in document order; ``options`` is the raw options section.
    """

    rulebook: str | None
    portfolio_margin: str | None
    prices: Mapping[str, float]
    instruments: tuple[Mapping[str, Any], ...]
    accounts: tuple[Account, ...]
    marks: tuple[tuple[str, float], ...] = ()
    currency: str | None = None
    margin_call_ratio: float | None = None
    options: Mapping[str, Any] | None = None
    account_mode: str | None = None


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise CrossMarginError(path, f"must be an object, got {type(value).__name__}")
    return value


def _list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise CrossMarginError(path, f"must be a list, got {type(value).__name__}")
    return value


def _name(value: Any, path: str) -> str | None:
    return None if value is None else non_empty(path, value)


def _mode(value: Any, field: str) -> MarginMode:
    try:
        return MarginMode(str(value).lower())
    except ValueError:
        raise CrossMarginError(field, f"must be 'cross' or 'isolated', got {value!r}") from None


def _position(raw: Any, path: str) -> tuple[Position, float | None]:
    """A position and, for ccxt input, the mark price it carries."""
    data = _mapping(raw, path)
    ccxt = "contracts" in data or "side" in data
    allowed = _CCXT_POSITION_KEYS if ccxt else _POSITION_KEYS
    for key in data:
        if key not in allowed:
            raise CrossMarginError(f"{path}.{key}", "unknown field")
    symbol = data.get("symbol")
    try:
        if not ccxt:
            return Position(
                symbol=symbol,  # type: ignore[arg-type]
                qty=data.get("qty"),  # type: ignore[arg-type]
                entry_price=data.get("entry_price"),  # type: ignore[arg-type]
                margin_mode=_mode(data.get("margin_mode", "cross"), "margin_mode"),
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
        mark = data.get("markPrice")
        return Position(
            symbol=symbol,  # type: ignore[arg-type]
            qty=qty,  # type: ignore[arg-type]
            entry_price=data.get("entryPrice"),  # type: ignore[arg-type]
            margin_mode=mode,
            isolated_margin=data.get("collateral") if mode == MarginMode.ISOLATED else None,
            leverage=data.get("leverage"),
        ), None if mark is None else finite("markPrice", mark)
    except CrossMarginError as error:
        raise error.at(path) from None


def _account(raw: Any, where: str) -> tuple[Account, list[tuple[str, float]]]:
    acc = _mapping(raw, where)
    for key in acc:
        if key not in {"id", "balances", "positions"}:
            raise CrossMarginError(f"{where}.{key}", "unknown field")
    positions = []
    marks = []
    for p, item in enumerate(_list(acc.get("positions", []), f"{where}.positions")):
        position, mark = _position(item, f"{where}.positions[{p}]")
        if mark is not None:
            marks.append((position.symbol, mark))
        positions.append(position)
    balances = _mapping(acc.get("balances", {}), f"{where}.balances")
    try:
        return Account(str(acc.get("id", "")), dict(balances), positions), marks
    except CrossMarginError as error:
        raise error.at(where) from None


def parse_document(data: Any) -> Document:
    """Validate a document already decoded from JSON; errors name the field."""
    doc = _mapping(data, "document")
    for key in doc:
        if key not in _TOP_KEYS:
            raise CrossMarginError(key, "unknown field")
    listed = _list(doc.get("instruments", []), "instruments")
    entries = [dict(_mapping(e, f"instruments[{i}]")) for i, e in enumerate(listed)]
    for symbol, tiers in _mapping(doc.get("leverage_tiers", {}), "leverage_tiers").items():
        entries.append({"symbol": symbol, "tiers": _list(tiers, f"leverage_tiers.{symbol}")})
    prices = {
        key: finite(f"prices.{key}", value)
        for key, value in _mapping(doc.get("prices", {}), "prices").items()
    }
    accounts = []
    marks: list[tuple[str, float]] = []
    seen: set[str] = set()
    for a, raw in enumerate(_list(doc.get("accounts", []), "accounts")):
        account, carried = _account(raw, f"accounts[{a}]")
        if account.id in seen:
            raise CrossMarginError(f"accounts[{a}].id", f"duplicate account id {account.id!r}")
        seen.add(account.id)
        accounts.append(account)
        marks.extend(carried)
    ratio = doc.get("margin_call_ratio")
    options = doc.get("options")
    return Document(
        rulebook=_name(doc.get("rulebook"), "rulebook"),
        portfolio_margin=_name(doc.get("portfolio_margin"), "portfolio_margin"),
        prices=prices,
        instruments=tuple(entries),
        accounts=tuple(accounts),
        marks=tuple(marks),
        currency=_name(doc.get("currency"), "currency"),
        margin_call_ratio=None if ratio is None else finite("margin_call_ratio", ratio),
        options=None if options is None else _mapping(options, "options"),
        account_mode=_name(doc.get("account_mode"), "account_mode"),
    )


def read_document(path: str | Path) -> Document:
    """Read and validate a document file."""
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
    return parse_document(data)


def parse_options(doc: Mapping[str, Any], path: str = "options") -> OptionData:
    """Option data from a document section::

    {"valuation_time": "2026-11-25T08:00:00+00:00",
     "vols": {"BTC-27DEC26-70000-C": 0.6},
     "surfaces": {"ETH": {"days": [7, 30], "atm": [0.8, 0.6], "skew": -0.2}}}
    """
    try:
        when = datetime.fromisoformat(str(doc["valuation_time"]))
    except KeyError:
        raise CrossMarginError(f"{path}.valuation_time", "missing") from None
    except ValueError:
        raise CrossMarginError(f"{path}.valuation_time", "not an ISO date-time") from None
    vols = doc.get("vols", {})
    surfaces = doc.get("surfaces", {})
    if not isinstance(vols, Mapping) or not isinstance(surfaces, Mapping):
        raise CrossMarginError(path, "vols and surfaces must be objects")
    built = {}
    for name, spec in surfaces.items():
        where = f"{path}.surfaces.{name}"
        try:
            built[name] = VolSurface(
                tuple(spec["days"]),
                tuple(spec["atm"]),
                finite(f"{where}.skew", spec.get("skew", 0.0)),
                finite(f"{where}.curvature", spec.get("curvature", 0.0)),
            )
        except (KeyError, TypeError):
            raise CrossMarginError(where, "needs days and atm lists") from None
        except CrossMarginError as error:
            raise CrossMarginError(f"{where}.{error.path.split('.')[-1]}", error.reason) from None
    try:
        return OptionData(when, dict(vols), built)
    except CrossMarginError as error:
        raise error.at(path) from None
