"""``crossmargin bench``: time the risk book on a synthetic book."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from crossmargin.cli.render import console, emit_json, exit_on_bad_input
from crossmargin.lab.bench import FIGURES, run_bench
from crossmargin.model import CrossMarginError

__all__ = ["bench"]


def bench(
    accounts: Annotated[int, typer.Option("--accounts", help="Synthetic accounts.")] = 100_000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the synthetic book.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Time the risk book on a synthetic book of N accounts: medians after a warm-up, the cold
    start apart, each ratio against a baseline timed in the same run."""
    with exit_on_bad_input():
        if accounts < 100:
            raise CrossMarginError("accounts", f"must be >= 100, got {accounts}")
        figures = run_bench(accounts, seed)
    if as_json:
        emit_json(figures)
        return
    table = Table(title="Risk book benchmark (medians after a warm-up)")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("what it measures")
    for name, value in figures.items():
        shown = f"{value:,.6g}" if isinstance(value, float) else str(value)
        table.add_row(name, shown, FIGURES.get(name, ""))
    console.print(table)
