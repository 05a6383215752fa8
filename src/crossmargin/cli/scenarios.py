"""``crossmargin scenarios``: a PM rulebook's scenario grid with an account's or a strategy's
scenario P&L, and optionally a price x vol heat map (PNG) of that P&L."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.table import Table

from crossmargin.app.scenarios import ScenarioPnl, document_scenarios, strategy_scenarios
from crossmargin.cli.render import console, exit_on_bad_input
from crossmargin.model import CrossMarginError
from crossmargin.model.extras import needs_extra

__all__ = ["grid_table", "heat_map", "scenarios", "writable_file"]


def grid_table(view: ScenarioPnl) -> Table:
    """Every scenario of the grid (moves scaled by the underlying's price range), with the
    P&L column when the view has one."""
    rulebook, underlying, pnl = view.rulebook, view.underlying, view.pnl
    table = Table(title=f"{rulebook.title} - {underlying} scenarios (as of {rulebook.as_of})")
    for name in (
        "#",
        "kind",
        "price move",
        "vol move",
        "weight",
        *([] if pnl is None else ["P&L"]),
    ):
        table.add_column(name, justify="right")
    for row in rulebook.grid.rows(rulebook.param(underlying, "price_range")):
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


def heat_map(view: ScenarioPnl, path: Path) -> None:
    """PNG of the standard scenarios' P&L: price moves across, vol moves down, losses red."""
    with needs_extra("plots", "crossmargin scenarios --png"):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

    rulebook, underlying, pnl = view.rulebook, view.underlying, view.pnl
    assert pnl is not None
    a = rulebook.grid.arrays
    price_range = rulebook.param(underlying, "price_range")
    std = np.array([k == "standard" for k in rulebook.grid.kind])
    prices = np.unique(a.price_move[std]) * price_range
    vols = np.unique(a.vol_move[std])[::-1]
    cells = np.full((vols.size, prices.size), np.nan)
    scale = np.where(a.scaled, price_range, 1.0)
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
    ax.set_title(f"{rulebook.name}: {underlying} scenario P&L")
    for i in range(vols.size):
        for j in range(prices.size):
            ax.text(j, i, f"{cells[i, j]:,.4g}", ha="center", va="center", fontsize=7)
    fig.colorbar(image, ax=ax, label="P&L (losses red)")
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=120)
    except OSError as error:
        raise CrossMarginError("--png", f"cannot write {path}: {error.strerror}") from None
    finally:
        plt.close(fig)


def writable_file(field: str, path: Path) -> None:
    """Refuse, before any work, an output path in a missing folder or naming a folder."""
    if path.is_dir():
        raise CrossMarginError(field, f"{path} is a folder: give a file name")
    if not path.parent.is_dir():
        raise CrossMarginError(field, f"no folder {path.parent} to write {path.name} into")


def scenarios(
    portfolio: Annotated[
        Path | None, typer.Argument(help="Portfolio document with portfolio_margin and options.")
    ] = None,
    rulebook_name: Annotated[
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
        if png is not None:
            writable_file("--png", png)
        if portfolio is not None:
            view = document_scenarios(portfolio, account, rulebook_name, underlying)
        else:
            view = strategy_scenarios(leg or [], underlying, spot, rulebook_name)
        if png is not None and view.pnl is None:
            raise CrossMarginError("--png", "a heat map needs PORTFOLIO or at least one --leg")
        console.print(grid_table(view))
        if png is not None:
            heat_map(view, png)
