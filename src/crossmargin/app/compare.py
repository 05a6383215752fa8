"""One portfolio under every bundled rulebook, or under cross, isolated and portfolio margin.

Every column is a portfolio document evaluated by :func:`~crossmargin.app.portfolio.
evaluate_portfolio`, the ``crossmargin margin`` computation, so each column equals
``crossmargin margin`` of that document:

- a rulebook that lists the document's markets (by venue symbol or ccxt unified symbol) takes
  the document as it is, as ``crossmargin margin DOC --rulebook NAME`` does;
- otherwise each perpetual or spot position is *translated* to the rulebook's market of the
  same underlying, kind and contract type (linear or inverse), at the same size in coins
  (linear) or USD (inverse) and the same prices; the dollar quotes USD, USDT and USDC count as
  one currency at 1:1, and dollar balances the rulebook does not accept as collateral become
  its settlement dollar. The document's account mode stays when the rulebook has it; ccxt
  leverage tiers and open interest (the source venue's data) are dropped. A rulebook that has
  no such market, or refuses the result, is skipped with the reason.
- portfolio-margin rulebooks replace the document's ``portfolio_margin``
  (``crossmargin margin DOC --rulebook PM``).

:func:`compare_modes` keeps the rulebook and changes the margin mode of every position:
``cross`` (an isolated wallet returns to the settle-asset balance); ``isolated``, each
position isolated with its initial margin under cross (at the current marks) as its wallet,
taken from the settle-asset balance, so a position whose loss already exceeds that margin is
bankrupt there; ``pm``, the document's portfolio-margin rulebook or the bundled ones built on
its rulebook. An account mode that does not allow the margin mode gives way to the first one
of the rulebook that does (Binance multi-assets mode is cross only).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from crossmargin.app.portfolio import (
    AccountResult,
    Portfolio,
    evaluate_portfolio,
    parse_portfolio,
)
from crossmargin.io.document import decode_json, read_bounded
from crossmargin.io.results import OPTIONAL
from crossmargin.model import Account, CrossMarginError, Instrument, Kind, MarginMode, Market
from crossmargin.rules import (
    Rulebook,
    bundled_pm_rulebooks,
    bundled_rulebooks,
    load_pm_rulebook,
)

__all__ = [
    "AccountFigures",
    "Column",
    "ColumnSpec",
    "CompareResult",
    "PositionFigures",
    "compare_modes",
    "compare_rulebooks",
    "evaluate_column",
    "mode_documents",
    "rulebook_documents",
]

DOLLARS = frozenset({"USD", "USDT", "USDC"})
"""Quote and settlement currencies taken as one at 1:1 when a position moves venue."""

MODES = ("cross", "isolated", "pm")


@dataclass(frozen=True)
class PositionFigures:
    """One position: its market under the column's rulebook, size in that market's contracts,
    its IM and MM (account currency), liquidation and bankruptcy prices (quote currency;
    ``None``: no positive price) and the largest leverage its bracket allows."""

    symbol: str
    qty: float
    margin_mode: str
    initial_margin: float
    maintenance_margin: float
    liquidation_price: float | None
    bankruptcy_price: float | None
    max_leverage: float


@dataclass(frozen=True)
class AccountFigures:
    """An account's figures (account currency): ``max_leverage`` is the tightest bracket
    leverage over its positions; ``crash_distance`` the smallest uniform move to liquidation
    (``None`` under portfolio margin, not computed there)."""

    id: str
    currency: str
    equity: float
    initial_margin: float
    maintenance_margin: float
    margin_ratio: float
    available_balance: float
    effective_leverage: float
    max_leverage: float | None
    crash_distance: float | None
    status: str
    positions: tuple[PositionFigures, ...]


@dataclass(frozen=True)
class Column:
    """One rulebook (or margin mode): ``kind`` ``margin`` or ``portfolio_margin``;
    ``translated`` when positions were moved to its markets (``symbols``: document market ->
    its market); ``skipped`` gives why there are no figures; ``standard_view``: the figures
    are the standard-margin ones of a portfolio-margin document (its ``standard_margin``)."""

    name: str
    kind: str
    rulebook: str
    translated: bool = False
    symbols: Mapping[str, str] = field(default_factory=dict)
    skipped: str | None = field(default=None, metadata=OPTIONAL)
    accounts: tuple[AccountFigures, ...] = ()
    standard_view: bool = False


@dataclass(frozen=True)
class CompareResult:
    """The ``crossmargin compare`` result: the document, what varies (``rulebook`` or
    ``mode``) and one column per rulebook or mode."""

    document: str
    across: str
    columns: tuple[Column, ...]

    @property
    def rows(self) -> tuple[dict[str, Any], ...]:
        """One row per column and account (skipped columns one row with the reason)."""
        out: list[dict[str, Any]] = []
        for c in self.columns:
            head = {"column": c.name, "kind": c.kind, "rulebook": c.rulebook}
            if c.skipped is not None:
                out.append({**head, "skipped": c.skipped})
            for a in c.accounts:
                out.append(
                    {
                        **head,
                        "translated": c.translated,
                        "account": a.id,
                        "currency": a.currency,
                        "equity": a.equity,
                        "initial_margin": a.initial_margin,
                        "maintenance_margin": a.maintenance_margin,
                        "margin_ratio": a.margin_ratio,
                        "max_leverage": a.max_leverage,
                        "crash_distance": a.crash_distance,
                        "status": a.status,
                        "liquidation_prices": {p.symbol: p.liquidation_price for p in a.positions},
                        "bankruptcy_prices": {p.symbol: p.bankruptcy_price for p in a.positions},
                    }
                )
        return tuple(out)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _figures(result: AccountResult) -> AccountFigures:
    h = result.health
    positions = tuple(
        PositionFigures(
            p.symbol,
            p.qty,
            p.margin_mode,
            p.initial_margin,
            p.maintenance_margin,
            p.liquidation_price,
            p.bankruptcy_price,
            p.max_leverage,
        )
        for p in h.positions
    )
    return AccountFigures(
        h.id,
        h.currency,
        h.equity,
        h.initial_margin,
        h.maintenance_margin,
        h.margin_ratio,
        h.available_balance,
        h.effective_leverage,
        min((p.max_leverage for p in positions), default=None),
        _finite(h.crash_distance),
        h.status.label,
        positions,
    )


def _raw(path: Path) -> dict[str, Any]:
    data = decode_json(read_bounded(path), str(path))
    if not isinstance(data, dict):
        raise CrossMarginError(str(path), "a portfolio document is a JSON object")
    return data


def _position_entry(position: Any, symbol: str, qty: float) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "symbol": symbol,
        "qty": qty,
        "entry_price": position.entry_price,
        "margin_mode": str(position.margin_mode),
    }
    if position.isolated_margin is not None:
        entry["isolated_margin"] = position.isolated_margin
    if position.leverage is not None:
        entry["leverage"] = position.leverage
    return entry


def _canonical(data: Mapping[str, Any], portfolio: Portfolio) -> dict[str, Any]:
    """The document with market symbols, sizes in contracts and resolved prices (ccxt fields
    turned into the document's own form)."""
    out = {k: copy.deepcopy(v) for k, v in data.items() if k not in ("accounts", "prices")}
    out["prices"] = dict(portfolio.market.prices)
    out["accounts"] = [
        {
            "id": a.id,
            "balances": dict(a.balances),
            "positions": [_position_entry(p, p.symbol, p.qty) for p in a.positions],
        }
        for a in portfolio.accounts
    ]
    return out


def _same_dollar(a: str, b: str) -> bool:
    return a == b or (a in DOLLARS and b in DOLLARS)


def _target_market(instrument: Instrument, target: Rulebook) -> Instrument | None:
    for candidate in target.instruments.values():
        if (
            candidate.underlying == instrument.underlying
            and candidate.kind == instrument.kind
            and candidate.inverse == instrument.inverse
            and _same_dollar(candidate.quote, instrument.quote)
        ):
            return candidate
    return None


def _translate(
    data: Mapping[str, Any], portfolio: Portfolio, target: Rulebook
) -> tuple[dict[str, Any], dict[str, str]]:
    """The document moved to ``target``'s markets (see the module docstring)."""
    market = portfolio.market
    symbols: dict[str, str] = {}
    accounts = []
    for a in portfolio.accounts:
        positions = []
        for p in a.positions:
            source = market.instrument(p.symbol)
            if source.kind not in (Kind.PERPETUAL, Kind.SPOT):
                raise CrossMarginError(p.symbol, f"{source.kind} positions do not move venue")
            dest = _target_market(source, target)
            if dest is None:
                kind = "inverse" if source.inverse else "linear"
                raise CrossMarginError(
                    p.symbol, f"{target.name} lists no {kind} {source.underlying} {source.kind}"
                )
            symbols[p.symbol] = dest.symbol
            qty = p.qty * source.contract_size / dest.contract_size
            positions.append(_position_entry(p, dest.symbol, qty))
        accounts.append({"id": a.id, "balances": _balances(a, target), "positions": positions})
    prices = {
        symbols.get(k, k): v
        for k, v in market.prices.items()
        if k not in market.instruments or k in symbols
    }
    out: dict[str, Any] = {"rulebook": target.name, "prices": prices, "accounts": accounts}
    mode = data.get("account_mode")
    if isinstance(mode, str) and mode in target.account_modes:
        out["account_mode"] = mode
    return out, symbols


def _balances(account: Account, target: Rulebook) -> dict[str, float]:
    """Dollar balances the target does not accept move to its currency, other assets stay."""
    accepted = set(target.mode().collateral) | {target.currency}
    out: dict[str, float] = {}
    for asset, amount in account.balances.items():
        moved = asset in DOLLARS and asset not in accepted and target.currency in DOLLARS
        key = target.currency if moved else asset
        out[key] = out.get(key, 0.0) + amount
    return out


@dataclass(frozen=True)
class ColumnSpec:
    """What a column evaluates: the document (``None`` when ``skipped``), the symbol
    translation, and ``standard``: read the standard-margin figures of a portfolio-margin
    result (``standard_margin`` in ``crossmargin margin --json``)."""

    name: str
    kind: str
    document: dict[str, Any] | None
    symbols: Mapping[str, str] = field(default_factory=dict)
    skipped: str | None = None
    standard: bool = False


def rulebook_documents(path: Path, names: Sequence[str] | None = None) -> list[ColumnSpec]:
    """A column per rulebook: the bundled margin then portfolio-margin ones, or ``names``."""
    data = _raw(path)
    own = parse_portfolio(data)
    margin = {b.name: b for b in bundled_rulebooks()}
    pm_names = set(bundled_pm_rulebooks())
    chosen = list(dict.fromkeys(names)) if names else [*margin, *sorted(pm_names)]
    out: list[ColumnSpec] = []
    for name in chosen:
        if name in pm_names:
            doc = dict(_canonical(data, own), portfolio_margin=name)
            out.append(ColumnSpec(name, "portfolio_margin", doc))
            continue
        if name not in margin:
            known = ", ".join([*margin, *sorted(pm_names)])
            raise CrossMarginError("rulebook", f"no bundled rulebook {name!r}; have {known}")
        try:
            parse_portfolio(data, name)
            doc = dict(_canonical(data, own), rulebook=name)
            out.append(ColumnSpec(name, "margin", doc, standard=own.pm is not None))
            continue
        except CrossMarginError:
            pass
        try:
            moved, symbols = _translate(data, own, margin[name])
        except CrossMarginError as error:
            out.append(ColumnSpec(name, "margin", None, skipped=str(error)))
            continue
        out.append(ColumnSpec(name, "margin", moved, symbols))
    return out


def _standard_figures(result: AccountResult) -> AccountFigures:
    """An account's standard-margin figures beside its portfolio margin."""
    figures = _figures(result)
    std = result.standard_margin
    if std is None:
        return figures
    return replace(
        figures,
        initial_margin=std.initial_margin,
        maintenance_margin=std.maintenance_margin,
        margin_ratio=std.margin_ratio,
        available_balance=std.available_balance,
        status=std.status.label,
    )


def evaluate_column(spec: ColumnSpec) -> Column:
    """The column's figures (``crossmargin margin`` of its document)."""
    symbols = dict(spec.symbols)
    if spec.document is None:
        return Column(spec.name, spec.kind, spec.name, skipped=spec.skipped)
    rulebook = str(spec.document.get("portfolio_margin") or spec.document.get("rulebook"))
    if spec.standard:
        rulebook = str(spec.document.get("rulebook"))
    try:
        result = evaluate_portfolio(parse_portfolio(spec.document))
    except CrossMarginError as error:
        return Column(spec.name, spec.kind, rulebook, bool(symbols), symbols, str(error))
    view = _standard_figures if spec.standard else _figures
    accounts = tuple(view(a) for a in result.accounts)
    return Column(
        spec.name, spec.kind, rulebook, bool(symbols), symbols, None, accounts, spec.standard
    )


def compare_rulebooks(path: Path, names: Sequence[str] | None = None) -> CompareResult:
    """The document under every bundled rulebook (or ``names``), side by side."""
    columns = tuple(evaluate_column(c) for c in rulebook_documents(path, names))
    return CompareResult(path.name, "rulebook", columns)


def _isolated_account(account: Account, result: AccountResult, market: Market) -> dict[str, Any]:
    """The account with every position isolated, its wallet its initial margin (in the
    settle asset), taken from the settle-asset balance."""
    balances = dict(account.balances)
    im = {p.symbol: p.initial_margin for p in result.health.positions}
    positions = []
    for p in account.positions:
        settle = market.instrument(p.symbol).settle
        wallet = im[p.symbol] / market.to_currency(settle)
        balances[settle] = balances.get(settle, 0.0) - wallet
        entry = _position_entry(p, p.symbol, p.qty)
        entry.update(margin_mode=str(MarginMode.ISOLATED), isolated_margin=wallet)
        positions.append(entry)
    return {"id": account.id, "balances": balances, "positions": positions}


def _mode_allowing(rulebook: Rulebook, wanted: MarginMode, current: str | None) -> str | None:
    """``current`` when it allows ``wanted``, else the first account mode that does."""
    if not rulebook.account_modes:
        return None
    if wanted in rulebook.mode(current).margin_modes:
        return current
    for name, mode in rulebook.account_modes.items():
        if wanted in mode.margin_modes:
            return name
    raise CrossMarginError("account_mode", f"{rulebook.name} has no account mode with {wanted}")


def _all_cross(base: dict[str, Any], market: Market) -> dict[str, Any]:
    """Every position cross; an isolated wallet goes back to the settle-asset balance."""
    doc = copy.deepcopy(base)
    for account in doc["accounts"]:
        for p in account["positions"]:
            wallet = p.pop("isolated_margin", None)
            if wallet is not None:
                settle = market.instrument(p["symbol"]).settle
                account["balances"][settle] = account["balances"].get(settle, 0.0) + wallet
            p["margin_mode"] = "cross"
    return doc


def mode_documents(path: Path, rulebook: str | None = None) -> list[ColumnSpec]:
    """A column per margin mode: every position cross, every position isolated, portfolio
    margin (see the module docstring). A portfolio-margin document's cross column is its
    standard-margin view (options are margined by portfolio margin only)."""
    data = _raw(path)
    own = parse_portfolio(data, rulebook)
    base = _canonical(data, own)
    base["rulebook"] = own.rulebook.name
    current = data.get("account_mode") if isinstance(data.get("account_mode"), str) else None
    pm_names = (
        [own.pm.name]
        if own.pm is not None
        else [
            n
            for n in bundled_pm_rulebooks()
            if load_pm_rulebook(n).standard_rulebook == own.rulebook.name
        ]
    )
    cross = _all_cross(base, own.market)
    cross.pop("portfolio_margin", None)
    out: list[ColumnSpec] = []
    if own.pm is not None:
        pm_doc = _all_cross(base, own.market)
        out.append(ColumnSpec("cross", "margin", pm_doc, standard=True))
        out.append(
            ColumnSpec(
                "isolated",
                "margin",
                None,
                skipped="options are margined by portfolio margin only, which isolates nothing",
            )
        )
    else:
        try:
            mode = _mode_allowing(own.rulebook, MarginMode.CROSS, current)
            if mode is not None:
                cross["account_mode"] = mode
            crossed = parse_portfolio(cross)
            figures = evaluate_portfolio(crossed)
            out.append(ColumnSpec("cross", "margin", cross))
            isolated = copy.deepcopy(cross)
            isolated["accounts"] = [
                _isolated_account(a, r, crossed.market)
                for a, r in zip(crossed.accounts, figures.accounts, strict=True)
            ]
            mode = _mode_allowing(own.rulebook, MarginMode.ISOLATED, current)
            if mode is not None:
                isolated["account_mode"] = mode
            out.append(ColumnSpec("isolated", "margin", isolated))
        except CrossMarginError as error:
            out.append(ColumnSpec("isolated", "margin", None, skipped=str(error)))
    if not pm_names:
        reason = f"no bundled portfolio-margin rulebook is built on {own.rulebook.name}"
        out.append(ColumnSpec("pm", "portfolio_margin", None, skipped=reason))
    for name in pm_names:
        label = "pm" if len(pm_names) == 1 else f"pm {name}"
        out.append(ColumnSpec(label, "portfolio_margin", dict(cross, portfolio_margin=name)))
    return out


def compare_modes(path: Path, rulebook: str | None = None) -> CompareResult:
    """The document's book under cross, isolated and portfolio margin, one rulebook."""
    columns = tuple(evaluate_column(c) for c in mode_documents(path, rulebook))
    return CompareResult(path.name, "mode", columns)
