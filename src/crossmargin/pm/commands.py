"""``crossmargin scenarios``: print a PM rulebook's scenario grid and, for a strategy given as
legs, its scenario P&L; optionally a price x vol heat map (PNG) of that P&L."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from crossmargin.console import exit_on_bad_input
from crossmargin.model import (
    Account,
    CrossMarginError,
    Instrument,
    Kind,
    MarginSchedule,
    Market,
    Position,
)
from crossmargin.model.checks import finite, positive
from crossmargin.pm.book import OptionData
from crossmargin.pm.risk import account_risk
from crossmargin.pm.rules import PmRulebook, load_pm_rulebook

__all__ = ["parse_leg", "scenarios", "strategy_book"]

VALUATION = datetime(2000, 1, 1, tzinfo=UTC)


def parse_leg(text: str, underlying: str, index: int) -> tuple[Instrument, float, float | None]:
    """``QTY:perp`` or ``QTY:call|put:STRIKE:DAYS:VOL`` -> (instrument, qty, vol). Options are
    and the perpetual are linear (USD-settled), one coin per contract; the perpetual's margin
    schedule is a placeholder (scenario P&L only)."""
    path = f"leg[{index}]"
    parts = text.split(":")
    try:
        qty = finite(f"{path}.qty", float(parts[0]))
        if parts[1:] == ["perp"]:
            schedule = MarginSchedule.size_scaled(1.0, 0.5)
            inst = Instrument(
                f"{underlying}-PERP", Kind.PERPETUAL, underlying, "USD", "USD", schedule
            )
            return inst, qty, None
        kind, strike, days, vol = parts[1], float(parts[2]), float(parts[3]), float(parts[4])
    except (IndexError, ValueError):
        reason = f"expected QTY:perp or QTY:call|put:K:DAYS:VOL, got {text!r}"
        raise CrossMarginError(path, reason) from None
    positive(f"{path}.days", days)
    expiry = (VALUATION + timedelta(days=days)).isoformat()
    symbol = f"{underlying}-{days:g}D-{strike:g}-{kind[:1].upper()}"
    try:
        inst = Instrument(
            symbol,
            Kind.OPTION,
            underlying,
            "USD",
            "USD",
            expiry=expiry,
            strike=strike,
            option_type=kind,
        )
    except CrossMarginError as error:
        raise error.at(path) from None
    return inst, qty, positive(f"{path}.vol", vol)


def strategy_book(
    legs: list[str], underlying: str, spot: float
) -> tuple[Account, Market, OptionData]:
    """Account, market and option data of a strategy given as legs (see :func:`parse_leg`)."""
    parsed = [parse_leg(text, underlying, i) for i, text in enumerate(legs)]
    instruments = {inst.symbol: inst for inst, _, _ in parsed}
    prices = {underlying: positive("spot", spot), f"{underlying}-PERP": spot}
    market = Market(instruments, prices, "USD")
    positions = [Position(inst.symbol, q, spot) for inst, q, _ in parsed]
    vols = {inst.symbol: v for inst, _, v in parsed if v is not None}
    account = Account("strategy", {}, positions)
    return account, market, OptionData(VALUATION, vols=vols)


def _grid_table(book: PmRulebook, underlying: str, pnl: np.ndarray | None) -> Table:
    table = Table(title=f"{book.title} - {underlying} scenarios (as of {book.as_of})")
    for name in (
        "#",
        "kind",
        "price move",
        "vol move",
        "weight",
        *(["P&L"] if pnl is not None else []),
    ):
        table.add_column(name, justify="right")
    for row in book.grid.rows(book.param(underlying, "price_range")):
        cells = [
            str(row["scenario"]),
            row["kind"],
            f"{100 * row['price_move']:+.2f}%",
            f"{row['vol_move']:+.2f}",
            f"{row['weight']:.2f}",
        ]
        if pnl is not None:
            cells.append(f"{pnl[row['scenario'] - 1]:,.6g}")
        table.add_row(*cells)
    return table


def heat_map(book: PmRulebook, underlying: str, pnl: np.ndarray, path: Path) -> None:
    """PNG of the standard scenarios' P&L: price moves across, vol moves down, losses red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a = book.grid.arrays
    std = np.array([k == "standard" for k in book.grid.kind])
    prices = np.unique(a.price_move[std]) * book.param(underlying, "price_range")
    vols = np.unique(a.vol_move[std])[::-1]
    cells = np.full((vols.size, prices.size), np.nan)
    scale = np.where(a.scaled, book.param(underlying, "price_range"), 1.0)
    for s in np.flatnonzero(std):
        i = int(np.flatnonzero(vols == a.vol_move[s])[0])
        j = int(np.argmin(np.abs(prices - a.price_move[s] * scale[s])))
        cells[i, j] = pnl[s]
    bound = float(np.nanmax(np.abs(cells))) or 1.0
    fig, ax = plt.subplots(figsize=(1.0 + 0.9 * prices.size, 1.2 + 0.6 * vols.size))
    image = ax.imshow(cells, cmap="RdYlGn", vmin=-bound, vmax=bound, aspect="auto")
    ax.set_xticks(range(prices.size), [f"{100 * p:+.1f}%" for p in prices])
    ax.set_yticks(range(vols.size), [f"{v:+g}" for v in vols])
    ax.set_xlabel("price move")
    ax.set_ylabel("vol move")
    ax.set_title(f"{book.name}: {underlying} scenario P&L")
    for i in range(vols.size):
        for j in range(prices.size):
            ax.text(j, i, f"{cells[i, j]:,.4g}", ha="center", va="center", fontsize=7)
    fig.colorbar(image, ax=ax, label="P&L (losses red)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _portfolio_pnl(
    document: Path, account_id: str | None, rulebook: str | None, underlying: str
) -> tuple[PmRulebook, np.ndarray]:
    """PM rulebook and scenario P&L of one account's ``underlying`` unit from a document."""
    from crossmargin.io.document import load_portfolio

    portfolio = load_portfolio(document, rulebook)
    if portfolio.pm is None or portfolio.options is None:
        raise CrossMarginError(
            "portfolio_margin", "the document needs portfolio_margin (or --rulebook) and options"
        )
    accounts = {a.id: a for a in portfolio.accounts}
    if not accounts:
        raise CrossMarginError("accounts", "the document has no account")
    chosen = accounts.get(account_id or next(iter(accounts)))
    if chosen is None:
        raise CrossMarginError("--account", f"no account {account_id!r} in the document")
    risk = account_risk(chosen, portfolio.market, portfolio.pm, portfolio.options)
    if underlying not in risk.units:
        raise CrossMarginError("--underlying", f"account holds no {underlying} (has {risk.units})")
    return portfolio.pm, risk.unit_pnl[risk.units.index(underlying)]


def scenarios(
    portfolio: Annotated[
        Path | None, typer.Argument(help="Portfolio document with portfolio_margin and options.")
    ] = None,
    rulebook: Annotated[
        str | None,
        typer.Option(
            "--rulebook", "-r", help="PM rulebook name or TOML path (default deribit-pm)."
        ),
    ] = None,
    account: Annotated[
        str | None, typer.Option(help="Account of PORTFOLIO (default: first).")
    ] = None,
    underlying: Annotated[
        str, typer.Option(help="Underlying whose parameters scale the grid.")
    ] = "BTC",
    leg: Annotated[
        list[str] | None, typer.Option(help="QTY:perp or QTY:call|put:STRIKE:DAYS:VOL (repeat).")
    ] = None,
    spot: Annotated[float, typer.Option(help="Underlying price for the legs.")] = 100_000.0,
    png: Annotated[
        Path | None, typer.Option(help="Write a price x vol heat map of the P&L.")
    ] = None,
) -> None:
    """Print a PM rulebook's scenario grid with an account's or a strategy's scenario P&L.

    The P&L is that of PORTFOLIO's account (or of the strategy given as legs); ``--png`` writes
    the price x vol heat map.
    """
    with exit_on_bad_input():
        pnl = None
        if portfolio is not None:
            book, pnl = _portfolio_pnl(portfolio, account, rulebook, underlying)
        else:
            book = load_pm_rulebook(rulebook or "deribit-pm")
            if leg:
                built, market, data = strategy_book(leg, underlying, spot)
                pnl = account_risk(built, market, book, data).unit_pnl[0]
        if png is not None and pnl is None:
            raise CrossMarginError("png", "a heat map needs PORTFOLIO or at least one --leg")
        Console().print(_grid_table(book, underlying, pnl))
        if png is not None and pnl is not None:
            heat_map(book, underlying, pnl, png)
