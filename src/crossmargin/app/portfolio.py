"""Evaluate a portfolio document: every account's health, withdrawable amounts and, under a
portfolio-margin rulebook, its portfolio margin.

Policy kept here: which rulebook a name means (``--rulebook`` replaces the document's margin
rulebook, or its ``portfolio_margin`` when the name is a PM rulebook; a document whose
``rulebook`` names a PM rulebook is margined by it, on the standard rulebook the PM rulebook
names), ccxt unified symbols resolve to the rulebook market they name, and options are margined
only by portfolio margin (the standard figures cover the futures and spot legs). Without an
options section a PM account is valued now (UTC), which only dated futures' time to expiry uses.

Under portfolio margin an account's top-level equity, IM, MM, margin ratio, available balance
and status are the PM figures; ``standard_margin`` gives the standard ones beside them. The
withdrawable amounts are what leaves the PM equity at the PM IM (the PM IM held at its current
value: exact when balances do not enter the scenarios, as under coin accounting; under USD
accounting a balance that joins a risk unit as spot moves the PM IM as it leaves). The crash
distance is not computed under PM (``None``): it is a search over the standard margin kernel,
which does not margin the account there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np

from crossmargin.health import AccountHealth, evaluate
from crossmargin.io.document import Document, parse_document, parse_options, read_document
from crossmargin.io.results import INLINE, OPTIONAL
from crossmargin.maths.risk import available_of
from crossmargin.maths.status import Status, margin_ratio, status
from crossmargin.model import (
    Account,
    CrossMarginError,
    Instrument,
    Kind,
    MarginMode,
    Market,
    OptionData,
)
from crossmargin.orders import max_withdrawable
from crossmargin.pm import PortfolioMarginReport, portfolio_margin_report
from crossmargin.pm.risk import account_risk, option_values
from crossmargin.rules import (
    PmRulebook,
    Rulebook,
    bundled_pm_rulebooks,
    load_pm_rulebook,
    load_rulebook,
)
from crossmargin.rules.loader import read_rulebook
from crossmargin.rules.portfolio import MODELS as PM_MODELS

__all__ = [
    "AccountResult",
    "OptionLeg",
    "Portfolio",
    "PortfolioResult",
    "RulebookRef",
    "StandardMargin",
    "check_finite",
    "evaluate_account",
    "evaluate_portfolio",
    "load_portfolio",
    "option_legs",
    "parse_portfolio",
    "resolve",
]


@dataclass(frozen=True)
class Portfolio:
    """A resolved document: the rulebook, the market, the accounts and, for portfolio margin,
    the PM rulebook and the option data (valuation time, vols)."""

    rulebook: Rulebook
    market: Market
    accounts: tuple[Account, ...]
    pm: PmRulebook | None = None
    options: OptionData | None = None

    def account(self, account_id: str) -> Account:
        """The account ``account_id``; bad input (``--account``) when the document has none."""
        chosen = next((a for a in self.accounts if a.id == account_id), None)
        if chosen is None:
            raise CrossMarginError("--account", f"no account {account_id!r} in the document")
        return chosen


@dataclass(frozen=True)
class RulebookRef:
    """The margin rulebook a result was computed under."""

    name: str
    title: str
    source: str
    as_of: str


@dataclass(frozen=True)
class StandardMargin:
    """An account's figures under standard (per-position) margin while portfolio margin
    applies: the PM equity against the standard IM and MM (account currency)."""

    initial_margin: float
    maintenance_margin: float
    margin_ratio: float
    available_balance: float
    status: Status


@dataclass(frozen=True)
class OptionLeg:
    """One option position, valued as portfolio margin values it (Black-76 at the base forward
    and the vol below). ``value`` is the position's mark value in ``settle`` (long > 0); the
    Greeks are the position's (qty x per contract): ``delta`` in coins of the underlying,
    ``gamma`` in coins per USD, ``vega`` in USD per vol point, ``theta`` in USD per day."""

    symbol: str
    option_type: str
    strike: float
    expiry: str
    qty: float
    settle: str
    vol: float
    value: float
    delta: float
    gamma: float
    vega: float
    theta: float


@dataclass(frozen=True)
class AccountResult:
    """One account: its health, the most each asset can withdraw and, when the document names
    a PM rulebook, its option legs and portfolio margin. Under portfolio margin the health's
    account figures are the PM ones (positions keep their standard IM and MM; options are left
    out of the standard health), ``standard_margin`` holds the standard figures, the crash
    distance is ``None`` (not computed) and ``max_withdrawable`` follows the PM available
    balance (see the module docstring). Amounts in the account currency."""

    health: AccountHealth = field(metadata=INLINE)
    max_withdrawable: Mapping[str, float]
    standard_margin: StandardMargin | None = field(default=None, metadata=OPTIONAL)
    option_legs: tuple[OptionLeg, ...] | None = field(default=None, metadata=OPTIONAL)
    portfolio_margin: PortfolioMarginReport | None = field(default=None, metadata=OPTIONAL)


@dataclass(frozen=True)
class PortfolioResult:
    """The ``crossmargin margin`` result: the rulebook and every account."""

    rulebook: RulebookRef
    accounts: tuple[AccountResult, ...]


def _is_pm(name: str | Path) -> bool:
    """True for a bundled PM rulebook name or a rulebook file whose model is a PM model."""
    if str(name) in bundled_pm_rulebooks():
        return True
    try:
        _, data = read_rulebook("pm", name, "rulebook", "PM rulebook")
    except CrossMarginError:
        return False
    header = data.get("rulebook", {})
    return isinstance(header, Mapping) and header.get("model") in PM_MODELS


def _unified_symbol(instrument: Instrument) -> str | None:
    """ccxt's unified symbol of a derivative: ``BTC/USDT:USDT`` (perpetual),
    ``BTC/USDT:USDT-250328`` (dated future), ``BTC/USD:BTC-261225-70000-C`` (option)."""
    i = instrument
    base = f"{i.underlying}/{i.quote}:{i.settle}"
    if i.kind == Kind.PERPETUAL:
        return base
    if i.kind == Kind.SPOT or i.expiry is None:
        return None
    try:
        day = date.fromisoformat(i.expiry[:10]).strftime("%y%m%d")
    except ValueError:
        return None
    if i.kind == Kind.FUTURE:
        return f"{base}-{day}"
    return f"{base}-{day}-{i.strike:g}-{(i.option_type or '?')[:1].upper()}"


def _unified_symbols(instruments: Mapping[str, Instrument]) -> dict[str, str]:
    """ccxt unified symbol -> market symbol (the venue id, e.g. ``BTCUSDT``)."""
    aliases = {}
    for symbol, instrument in instruments.items():
        unified = _unified_symbol(instrument)
        if unified is not None and unified not in instruments:
            aliases[unified] = symbol
    return aliases


def _symbol(name: str, instruments: Mapping[str, Instrument], aliases: Mapping[str, str]) -> str:
    """The market ``name`` means: a market symbol or a ccxt unified symbol of one."""
    if name in instruments:
        return name
    if name in aliases:
        return aliases[name]
    raise CrossMarginError(
        "symbol",
        f"unknown instrument {name!r}: neither a market symbol nor the ccxt unified symbol of "
        "one (add it under instruments)",
    )


def _account_as_listed(
    account: Account,
    instruments: Mapping[str, Instrument],
    aliases: Mapping[str, str],
    sizes: Mapping[int, float],
) -> Account:
    """The account with market symbols, and ccxt sizes (contracts x contractSize) in the
    market's contracts."""
    positions = []
    for j, p in enumerate(account.positions):
        try:
            symbol = _symbol(p.symbol, instruments, aliases)
        except CrossMarginError as error:
            raise error.at(f"positions[{j}]") from None
        qty = p.qty
        if j in sizes:
            qty = p.qty * sizes[j] / instruments[symbol].contract_size
        same = symbol == p.symbol and qty == p.qty
        positions.append(p if same else replace(p, symbol=symbol, qty=qty))
    if all(a is b for a, b in zip(positions, account.positions, strict=True)):
        return account
    return Account(account.id, account.balances, positions)


def _by_market(
    section: str,
    items: Sequence[tuple[str, Any]],
    instruments: Mapping[str, Instrument],
    aliases: Mapping[str, str],
) -> list[tuple[str, Any, str]]:
    """(market symbol, value, field path) of a document section keyed by symbol or ccxt
    unified symbol; an unknown key is bad input at ``section.key``."""
    out = []
    for key, value in items:
        where = f"{section}.{key}"
        try:
            out.append((_symbol(key, instruments, aliases), value, where))
        except CrossMarginError as error:
            raise CrossMarginError(where, error.reason) from None
    return out


def resolve(document: Document, rulebook: str | Path | None = None) -> Portfolio:
    """Load the rulebooks a document names and build its market.

    ``rulebook`` overrides the document's rulebook or, when it names a portfolio-margin
    rulebook, its ``portfolio_margin``. ``leverage_tiers``, ``open_interest``, positions and
    prices may name a market by its symbol (the venue id) or its ccxt unified symbol.
    """
    pm_name: str | Path | None = document.portfolio_margin
    name: str | Path | None = document.rulebook
    if name is not None and _is_pm(name):
        if pm_name is not None and pm_name != name:
            raise CrossMarginError(
                "rulebook", f"{name!r} is a PM rulebook and portfolio_margin names {pm_name!r}"
            )
        pm_name, name = name, None
    if rulebook is not None and _is_pm(rulebook):
        pm_name = rulebook
    elif rulebook is not None:
        name = rulebook
    pm = None if pm_name is None else load_pm_rulebook(pm_name)
    if name is None and pm is not None:
        name = pm.standard_rulebook
    if name is None:
        raise CrossMarginError("rulebook", "required (in the document or with --rulebook)")
    margin_rules = load_rulebook(name)
    options = None
    if document.options is not None:
        options = parse_options(document.options, "options")
    elif pm is not None:
        options = OptionData(datetime.now(UTC))
    instruments = margin_rules.with_instruments(document.instruments)
    aliases = _unified_symbols(instruments)
    if document.leverage_tiers or document.open_interest:
        instruments = margin_rules.with_instruments(
            document.instruments,
            tiers=_by_market("leverage_tiers", document.leverage_tiers, instruments, aliases),
            open_interest=_by_market("open_interest", document.open_interest, instruments, aliases),
        )
    prices = {aliases.get(key, key): value for key, value in document.prices.items()}
    for symbol, mark in document.marks:
        prices.setdefault(aliases.get(symbol, symbol), mark)
    sizes: dict[int, dict[int, float]] = {}
    for a, j, size in document.contract_sizes:
        sizes.setdefault(a, {})[j] = size
    accounts = []
    for a, account in enumerate(document.accounts):
        try:
            accounts.append(_account_as_listed(account, instruments, aliases, sizes.get(a, {})))
        except CrossMarginError as error:
            raise error.at(f"accounts[{a}]") from None
    mode = margin_rules.mode(document.account_mode)
    for a, account in enumerate(accounts):
        mode.check(account, f"accounts[{a}]")
    market = Market(
        instruments,
        prices,
        document.currency or margin_rules.currency,
        mode.collateral,
        (mode.margin_call_ratio or margin_rules.margin_call_ratio)
        if document.margin_call_ratio is None
        else document.margin_call_ratio,
    )
    return Portfolio(margin_rules, market, tuple(accounts), pm, options)


def parse_portfolio(data: Any, rulebook: str | Path | None = None) -> Portfolio:
    """A document already decoded from JSON, validated and resolved (see :func:`resolve`)."""
    return resolve(parse_document(data), rulebook)


def load_portfolio(path: str | Path, rulebook: str | Path | None = None) -> Portfolio:
    """A document file, read, validated and resolved (see :func:`resolve`)."""
    return resolve(read_document(path), rulebook)


def _without_options(account: Account, portfolio: Portfolio) -> Account:
    """The account's futures and spot legs; options are margined by the PM rulebook only, and
    a PM account margins every position together (no isolated positions)."""
    kept = []
    for j, position in enumerate(account.positions):
        if portfolio.pm is not None and position.margin_mode == MarginMode.ISOLATED:
            raise CrossMarginError(
                f"positions[{j}].margin_mode",
                "portfolio margin covers the whole account: isolated positions are not allowed",
            )
        instrument = portfolio.market.instruments.get(position.symbol)
        if instrument is None or not instrument.is_option:
            kept.append(position)
        elif portfolio.pm is None:
            raise CrossMarginError(
                f"positions[{j}].symbol",
                "options are margined by a portfolio-margin rulebook: set portfolio_margin "
                "(cme-span, deribit-pm, okx-pm) and the options section",
            )
    return Account(account.id, account.balances, kept)


def _under_pm(
    health: AccountHealth, pm: PortfolioMarginReport, call_ratio: float
) -> tuple[AccountHealth, StandardMargin]:
    """The account's figures under its PM rulebook, and its standard figures beside them."""
    equity = pm.equity
    standard = StandardMargin(
        pm.standard_initial_margin,
        pm.standard_maintenance_margin,
        float(margin_ratio(equity, pm.standard_maintenance_margin)),
        available_of(equity, pm.standard_initial_margin),
        Status(int(status(equity, pm.standard_maintenance_margin, call_ratio))),
    )
    under_pm = replace(
        health,
        equity=equity,
        cross_equity=equity,
        initial_margin=pm.initial_margin,
        maintenance_margin=pm.maintenance_margin,
        cross_initial_margin=pm.initial_margin,
        cross_maintenance_margin=pm.maintenance_margin,
        margin_ratio=pm.margin_ratio,
        available_balance=available_of(equity, pm.initial_margin),
        status=pm.status,
        crash_distance=None,
        crash_move_down=None,
        crash_move_up=None,
    )
    return under_pm, standard


_POSITION_FIGURES = ("notional", "unrealized_pnl", "initial_margin", "maintenance_margin")
_ACCOUNT_FIGURES = ("equity", "initial_margin", "maintenance_margin", "available_balance")


def check_finite(account: Account, health: AccountHealth) -> None:
    """Refuse an account whose sizes overflow a float (``1e308`` contracts): every figure of a
    result must be finite, and the error names the field that made it overflow."""
    for row in health.positions:
        if not all(math.isfinite(getattr(row, name)) for name in _POSITION_FIGURES):
            j = next(j for j, p in enumerate(account.positions) if p.symbol == row.symbol)
            raise CrossMarginError(f"positions[{j}].qty", "too large: its notional overflows")
    for held in health.collateral:
        if not math.isfinite(held.balance * held.price):
            raise CrossMarginError(f"balances.{held.asset}", "too large: its value overflows")
    for name in ("wallet_balance", "collateral_value", *_ACCOUNT_FIGURES):
        if not math.isfinite(getattr(health, name)):
            raise CrossMarginError("positions", f"too large together: the {name} overflows")


def evaluate_account(portfolio: Portfolio, account: Account) -> AccountResult:
    """Health, withdrawable amounts and portfolio margin of one of the portfolio's accounts."""
    market = portfolio.market
    base = _without_options(account, portfolio)
    with np.errstate(over="ignore", invalid="ignore"):
        health = evaluate(base, market)
    check_finite(account, health)
    if portfolio.pm is None or portfolio.options is None:
        return AccountResult(health, max_withdrawable(base, market, health))
    pm = portfolio_margin_report(account, market, portfolio.pm, portfolio.options, health=health)
    legs = option_legs(account, market, portfolio.pm, portfolio.options)
    under_pm, standard = _under_pm(health, pm, market.margin_call_ratio)
    withdrawable = max_withdrawable(base, market, available=under_pm.available_balance)
    return AccountResult(under_pm, withdrawable, standard, legs, pm)


def option_legs(
    account: Account, market: Market, rulebook: PmRulebook, data: OptionData
) -> tuple[OptionLeg, ...]:
    """The account's option positions with their value and Greeks (see :class:`OptionLeg`)."""
    if not any(market.instrument(p.symbol).is_option for p in account.positions):
        return ()
    risk = account_risk(account, market, rulebook, data)
    arrays = risk.compiled.arrays
    vols = arrays.base_vol()
    usd = option_values(arrays)
    legs = []
    for r, instrument in enumerate(risk.instruments):
        if not instrument.is_option:
            continue
        q = float(risk.qty[r])
        per_contract = usd[r] / arrays.forward[r] if instrument.inverse else usd[r]
        legs.append(
            OptionLeg(
                symbol=instrument.symbol,
                option_type=instrument.option_type or "",
                strike=float(instrument.strike or 0.0),
                expiry=instrument.expiry or "",
                qty=q,
                settle=instrument.settle,
                vol=float(vols[r]),
                value=q * float(per_contract),
                delta=q * float(risk.greeks["delta_coin"][r]),
                gamma=q * float(risk.greeks["gamma"][r]),
                vega=q * float(risk.greeks["vega_usd"][r]),
                theta=q * float(risk.greeks["theta_usd"][r]),
            )
        )
    return tuple(legs)


def evaluate_portfolio(portfolio: Portfolio) -> PortfolioResult:
    """Every account of the portfolio; an error inside an account names it (``accounts[i]``)."""
    results = []
    for i, account in enumerate(portfolio.accounts):
        try:
            results.append(evaluate_account(portfolio, account))
        except CrossMarginError as error:
            located = error.path.startswith(("positions", "balances"))
            raise (error.at(f"accounts[{i}]") if located else error) from None
    ref = portfolio.rulebook
    return PortfolioResult(
        RulebookRef(ref.name, ref.title or ref.name, ref.source, ref.as_of), tuple(results)
    )
