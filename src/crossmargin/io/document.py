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
``open_interest`` (symbol -> the market's open interest as a notional in its quote currency,
USDC on dYdX: it scales the initial margin rate of markets with open-interest caps),
``portfolio_margin`` (a PM rulebook: ``cme-span``, ``deribit-pm``, ``okx-pm`` or a path) and
``options`` (valuation time, vols and vol surfaces). Options are instruments of kind ``option``
with ``strike``, ``option_type`` and ``expiry``.

ccxt structures are accepted as ccxt returns them; every key of the unified structure is
allowed and only these are read:

- a position (``fetch_positions()``): ``symbol``, ``side``, ``contracts`` (>= 0; 0 is a closed
  position and is left out), ``contractSize`` (``contracts x contractSize`` is the size),
  ``entryPrice``, ``markPrice`` (the mark when ``prices`` has none), ``marginMode`` (else
  ``isolated``), ``leverage``, and for an isolated position ``collateral - unrealizedPnl`` as
  its isolated margin (ccxt's ``collateral`` includes the PnL);
- balances (``fetch_balance()``): ``total`` less ``debt`` per currency, except that the
  per-asset ``walletBalance`` of ``info.assets`` (Binance futures, whose ``total`` is the
  margin balance, PnL included) is read where present;
- a leverage tier: see :mod:`crossmargin.rules.loader`.

This module only reads the text: rulebook names, ccxt unified symbols (``BTC/USDT:USDT``) and
instrument entries stay as written; :mod:`crossmargin.app.portfolio` resolves them.

A document file is read up to :data:`MAX_DOCUMENT_BYTES`; duplicated keys and nesting deeper
than the JSON decoder's recursion limit are refused.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from crossmargin.model import (
    Account,
    CrossMarginError,
    MarginMode,
    OptionData,
    Position,
    VolSurface,
)
from crossmargin.model.checks import finite, non_empty, numeric, positive

__all__ = ["MAX_DOCUMENT_BYTES", "Document", "parse_document", "parse_options", "read_document"]

MAX_DOCUMENT_BYTES = 64 * 1024 * 1024
"""Largest document file read (64 MiB); a longer or endless file is refused."""

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
    "open_interest",
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
    "positionMargin",
    "isolated",
    "exitPrice",
}
_CCXT_BALANCE_KEYS = {"info", "timestamp", "datetime", "free", "used", "total", "debt"}


@dataclass(frozen=True)
class Document:
    """A validated document with its names as written.

    ``instruments`` are the document's market entries, ``leverage_tiers`` ccxt's tiers and
    ``open_interest`` the markets' open interest (quote currency), each by the symbol they are
    keyed by; ``marks`` the (symbol, markPrice) pairs that ccxt positions carry,
    in document order; ``contract_sizes`` the (account, position, contractSize) of ccxt
    positions that give one; ``options`` is the raw options section.
    """

    rulebook: str | None
    portfolio_margin: str | None
    prices: Mapping[str, float]
    instruments: tuple[Mapping[str, Any], ...]
    accounts: tuple[Account, ...]
    marks: tuple[tuple[str, float], ...] = ()
    leverage_tiers: tuple[tuple[str, list[Any]], ...] = ()
    contract_sizes: tuple[tuple[int, int, float], ...] = ()
    currency: str | None = None
    margin_call_ratio: float | None = None
    options: Mapping[str, Any] | None = None
    account_mode: str | None = None
    open_interest: tuple[tuple[str, float], ...] = ()


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


class _Parsed(NamedTuple):
    position: Position
    mark: float | None = None
    contract_size: float | None = None


def _ccxt_mode(data: Mapping[str, Any]) -> MarginMode:
    if data.get("marginMode") is not None:
        return _mode(data["marginMode"], "marginMode")
    isolated = data.get("isolated")
    if isolated is not None and not isinstance(isolated, bool):
        raise CrossMarginError("isolated", f"must be true or false, got {isolated!r}")
    return MarginMode.ISOLATED if isolated else MarginMode.CROSS


def _ccxt_position(data: Mapping[str, Any]) -> _Parsed | None:
    """A ccxt position structure (see the module docstring); ``None`` for a closed one."""
    side = data.get("side")
    if side not in ("long", "short"):
        raise CrossMarginError("side", f"must be 'long' or 'short', got {side!r}")
    contracts = finite("contracts", data.get("contracts"))  # type: ignore[arg-type]
    if contracts < 0:
        raise CrossMarginError("contracts", "must be >= 0 (the side carries the direction)")
    if contracts == 0:
        return None
    mode = _ccxt_mode(data)
    margin = None
    if mode == MarginMode.ISOLATED:
        collateral = data.get("collateral")
        if collateral is None:
            raise CrossMarginError("collateral", "required for an isolated position")
        pnl = data.get("unrealizedPnl")
        margin = finite("collateral", collateral)
        if pnl is not None:
            margin -= finite("unrealizedPnl", pnl)
    mark = data.get("markPrice")
    size = data.get("contractSize")
    position = Position(
        symbol=data.get("symbol"),  # type: ignore[arg-type]
        qty=contracts if side == "long" else -contracts,
        entry_price=data.get("entryPrice"),  # type: ignore[arg-type]
        margin_mode=mode,
        isolated_margin=margin,
        leverage=data.get("leverage"),
    )
    return _Parsed(
        position,
        None if mark is None else finite("markPrice", mark),
        None if size is None else positive("contractSize", size),
    )


def _position(raw: Any, path: str) -> _Parsed | None:
    """A position (plain or ccxt); ``None`` for a closed ccxt position."""
    data = _mapping(raw, path)
    ccxt = "contracts" in data or "side" in data
    allowed = _CCXT_POSITION_KEYS if ccxt else _POSITION_KEYS
    for key in data:
        if key not in allowed:
            raise CrossMarginError(f"{path}.{key}", "unknown field")
    try:
        if ccxt:
            return _ccxt_position(data)
        return _Parsed(
            Position(
                symbol=data.get("symbol"),  # type: ignore[arg-type]
                qty=data.get("qty"),  # type: ignore[arg-type]
                entry_price=data.get("entry_price"),  # type: ignore[arg-type]
                margin_mode=_mode(data.get("margin_mode", "cross"), "margin_mode"),
                isolated_margin=data.get("isolated_margin"),
                leverage=data.get("leverage"),
            )
        )
    except CrossMarginError as error:
        raise error.at(path) from None


def _wallets(info: Any) -> dict[str, Any]:
    """Binance futures' per-asset ``walletBalance`` from a ccxt balance's ``info``."""
    assets = info.get("assets") if isinstance(info, Mapping) else None
    if not isinstance(assets, list):
        return {}
    return {
        a["asset"]: a["walletBalance"]
        for a in assets
        if isinstance(a, Mapping) and isinstance(a.get("asset"), str) and "walletBalance" in a
    }


def _balances(raw: Any, path: str) -> dict[str, Any]:
    """Plain balances (asset -> amount) or a ccxt balance structure (module docstring)."""
    data = _mapping(raw, path)
    total = data.get("total")
    if not isinstance(total, Mapping):
        return dict(data)
    per_code = {
        k: v for k, v in data.items() if k not in _CCXT_BALANCE_KEYS and isinstance(v, Mapping)
    }
    totals = dict(total)
    debts = data.get("debt")
    debts = dict(debts) if isinstance(debts, Mapping) else {}
    for code, entry in per_code.items():
        totals.setdefault(code, entry.get("total"))
        debts.setdefault(code, entry.get("debt"))
    wallets = _wallets(data.get("info"))
    out: dict[str, Any] = {}
    for code, amount in totals.items():
        if code in wallets:
            out[code] = numeric(f"{path}.info.assets.{code}.walletBalance", wallets[code])
        elif amount is not None:
            debt = debts.get(code)
            owed = 0.0 if debt is None else finite(f"{path}.{code}.debt", debt)
            out[code] = finite(f"{path}.total.{code}", amount) - owed
    return out


def _account_id(value: Any, path: str) -> str:
    """An account id: text, or an integer written as text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value.strip():
        shown = "null" if value is None else type(value).__name__
        raise CrossMarginError(path, f"must be a non-empty string, got {shown}")
    return value


def _account(
    raw: Any, where: str
) -> tuple[Account, list[tuple[str, float]], list[tuple[int, float]]]:
    """The account, the marks its ccxt positions carry and their (position, contractSize)."""
    acc = _mapping(raw, where)
    for key in acc:
        if key not in {"id", "balances", "positions"}:
            raise CrossMarginError(f"{where}.{key}", "unknown field")
    name = _account_id(acc.get("id"), f"{where}.id")
    positions: list[Position] = []
    marks = []
    sizes = []
    for p, item in enumerate(_list(acc.get("positions", []), f"{where}.positions")):
        parsed = _position(item, f"{where}.positions[{p}]")
        if parsed is None:
            continue
        if parsed.mark is not None:
            marks.append((parsed.position.symbol, parsed.mark))
        if parsed.contract_size is not None:
            sizes.append((len(positions), parsed.contract_size))
        positions.append(parsed.position)
    balances = _balances(acc.get("balances", {}), f"{where}.balances")
    try:
        return Account(name, balances, positions), marks, sizes
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
    tiers = tuple(
        (symbol, _list(rows, f"leverage_tiers.{symbol}"))
        for symbol, rows in _mapping(doc.get("leverage_tiers", {}), "leverage_tiers").items()
    )
    prices = {
        key: finite(f"prices.{key}", value)
        for key, value in _mapping(doc.get("prices", {}), "prices").items()
    }
    open_interest = []
    for key, value in _mapping(doc.get("open_interest", {}), "open_interest").items():
        amount = finite(f"open_interest.{key}", value)
        if amount < 0:
            raise CrossMarginError(f"open_interest.{key}", f"must be >= 0, got {amount:g}")
        open_interest.append((key, amount))
    accounts = []
    marks: list[tuple[str, float]] = []
    sizes: list[tuple[int, int, float]] = []
    seen: set[str] = set()
    for a, raw in enumerate(_list(doc.get("accounts", []), "accounts")):
        account, carried, contract_sizes = _account(raw, f"accounts[{a}]")
        if account.id in seen:
            raise CrossMarginError(f"accounts[{a}].id", f"duplicate account id {account.id!r}")
        seen.add(account.id)
        accounts.append(account)
        marks.extend(carried)
        sizes.extend((a, p, size) for p, size in contract_sizes)
    ratio = doc.get("margin_call_ratio")
    options = doc.get("options")
    return Document(
        rulebook=_name(doc.get("rulebook"), "rulebook"),
        portfolio_margin=_name(doc.get("portfolio_margin"), "portfolio_margin"),
        prices=prices,
        instruments=tuple(entries),
        accounts=tuple(accounts),
        marks=tuple(marks),
        leverage_tiers=tiers,
        contract_sizes=tuple(sizes),
        currency=_name(doc.get("currency"), "currency"),
        margin_call_ratio=None if ratio is None else finite("margin_call_ratio", ratio),
        options=None if options is None else _mapping(options, "options"),
        account_mode=_name(doc.get("account_mode"), "account_mode"),
        open_interest=tuple(open_interest),
    )


class _DuplicateKey(ValueError):
    pass


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are unique (a repeated key would silently win otherwise)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def decode_json(text: str | bytes, origin: str) -> Any:
    """JSON text decoded strictly: unique keys, bounded nesting; errors name ``origin``."""
    try:
        return json.loads(text, object_pairs_hook=_unique)
    except _DuplicateKey as error:
        raise CrossMarginError(origin, f"duplicate key {error.args[0]!r} in one object") from None
    except RecursionError:
        raise CrossMarginError(origin, "nested too deeply") from None
    except json.JSONDecodeError as error:
        raise CrossMarginError(
            origin, f"not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    except UnicodeDecodeError:
        raise CrossMarginError(origin, "not UTF-8 text") from None
    except ValueError as error:  # an integer literal past Python's digit limit
        raise CrossMarginError(origin, f"not valid JSON: {error}") from None


def read_bounded(path: str | Path, limit: int | None = None) -> bytes:
    """The bytes of ``path``, refusing a file longer than ``limit`` (default
    :data:`MAX_DOCUMENT_BYTES`) or an endless one (``/dev/zero``)."""
    limit = MAX_DOCUMENT_BYTES if limit is None else limit
    try:
        with Path(path).open("rb") as file:
            data = file.read(limit + 1)
    except OSError as error:
        raise CrossMarginError(str(path), f"cannot read: {error.strerror or error}") from None
    if len(data) > limit:
        raise CrossMarginError(str(path), f"larger than the {limit // 2**20} MiB limit")
    return data


def read_document(path: str | Path) -> Document:
    """Read and validate a document file."""
    return parse_document(decode_json(read_bounded(path), str(path)))


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
