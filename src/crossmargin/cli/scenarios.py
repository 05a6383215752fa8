"""``crossmargin scenarios``: a PM rulebook's scenario grid with an account's or a strategy's
scenario P&L, and optionally a heat map (PNG) of that P&L over every scenario."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from numpy.typing import NDArray
from rich.table import Table

from crossmargin.app.scenarios import ScenarioPnl, document_scenarios, strategy_scenarios
from crossmargin.cli.render import console, exit_on_bad_input
from crossmargin.model import CrossMarginError
from crossmargin.model.extras import needs_extra

__all__ = ["grid_table", "heat_map", "scenarios", "writable_file"]


def grid_table(view: ScenarioPnl) -> Table:
    """Every scenario of the grid (moves scaled by the underlying's price range), with the
    P&L, the P&L as the model counts it and the worst-case mark when the view has an account."""
    rulebook, underlying, pnl = view.rulebook, view.underlying, view.pnl
    table = Table(title=f"{rulebook.title} - {underlying} scenarios (as of {rulebook.as_of})")
    columns = ["#", "kind", "price move", "vol move", "weight"]
    if pnl is not None:
        columns += [f"P&L ({view.currency})", "counted", "worst"]
    for name in columns:
        table.add_column(name, justify="right")
    for row in rulebook.grid.rows(rulebook.param(underlying, "price_range")):
        s = row["scenario"] - 1
        cells = [
            str(row["scenario"]),
            row["kind"],
            f"{100 * row['price_move']:+.2f}%",
            f"{row['vol_move']:+.2f}",
            f"{row['weight']:.2f}",
        ]
        if pnl is not None:
            counted = pnl if view.counted is None else view.counted
            cells += [f"{pnl[s]:,.6g}", f"{counted[s]:,.6g}", "<-" if s == view.worst else ""]
        table.add_row(*cells)
    return table


def _cells(
    view: ScenarioPnl, values: NDArray[np.float64], chosen: NDArray[np.bool_]
) -> tuple[NDArray[np.float64], list[float], list[float], tuple[int, int] | None]:
    """The chosen scenarios as a (vol x price) table of ``values``, its price moves (fractions)
    and vol moves, and the (row, column) of the worst scenario when it is among them."""
    a = view.rulebook.grid.arrays
    scale = np.where(a.scaled, view.rulebook.param(view.underlying, "price_range"), 1.0)
    moves = a.price_move * scale
    prices = sorted({float(moves[s]) for s in np.flatnonzero(chosen)})
    vols = sorted({float(a.vol_move[s]) for s in np.flatnonzero(chosen)}, reverse=True)
    cells = np.full((len(vols), len(prices)), np.nan)
    marked = None
    for s in np.flatnonzero(chosen):
        i, j = vols.index(float(a.vol_move[s])), prices.index(float(moves[s]))
        cells[i, j] = values[s]
        if s == view.worst:
            marked = (i, j)
    return cells, prices, vols, marked


def heat_map(view: ScenarioPnl, path: Path) -> None:
    """PNG of the counted scenario P&L: the standard table (price moves across, vol moves
    down) above the extreme or extended scenarios, losses red, the worst case boxed, the
    colour bar in the unit's currency; a cell whose revalued P&L differs from the counted one
    shows it in brackets."""
    with needs_extra("plots", "crossmargin scenarios --png"):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize
        from matplotlib.patches import Rectangle

    rulebook, underlying, pnl = view.rulebook, view.underlying, view.pnl
    assert pnl is not None
    values = pnl if view.counted is None else view.counted
    standard = np.array([k == "standard" for k in rulebook.grid.kind])
    panels = [(standard, "standard")]
    if not standard.all():
        others = sorted(set(rulebook.grid.kind) - {"standard"})
        panels.append((~standard, " / ".join(others)))
    tables = [
        (_cells(view, values, mask), _cells(view, pnl, mask)[0], label) for mask, label in panels
    ]
    bound = float(np.nanmax(np.abs(values))) or 1.0
    width = max(t[0][0].shape[1] for t in tables)
    heights = [t[0][0].shape[0] + 1.0 for t in tables]
    fig, axes = plt.subplots(
        len(tables),
        1,
        figsize=(1.6 + 0.95 * width, 1.0 + 0.6 * sum(heights)),
        gridspec_kw={"height_ratios": heights},
        squeeze=False,
        layout="constrained",
    )
    norm = Normalize(-bound, bound)
    for ax, ((cells, prices, vols, marked), raw, label) in zip(axes[:, 0], tables, strict=True):
        ax.imshow(cells, cmap="RdYlGn", norm=norm, aspect="auto")
        ax.set_xticks(range(len(prices)), [f"{100 * p:+.1f}%" for p in prices], fontsize=7)
        ax.set_yticks(range(len(vols)), [f"{v:+g}" for v in vols])
        ax.set_xlabel(f"price move ({label})")
        ax.set_ylabel("vol move")
        for i in range(len(vols)):
            for j in range(len(prices)):
                text = f"{cells[i, j]:,.4g}"
                if not np.isclose(raw[i, j], cells[i, j], rtol=1e-12, atol=0.0):
                    text += f"\n({raw[i, j]:,.4g})"
                ax.text(j, i, text, ha="center", va="center", fontsize=7)
        if marked is not None:
            i, j = marked
            box = Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="black", lw=2.5)
            ax.add_patch(box)
    worst = "" if view.worst is None else f", worst case boxed (scenario {view.worst + 1})"
    axes[0, 0].set_title(f"{rulebook.name}: {underlying} counted scenario P&L{worst}")
    fig.colorbar(
        ScalarMappable(norm, "RdYlGn"),
        ax=axes[:, 0].tolist(),
        label=f"P&L in {view.currency} (losses red)",
    )
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
