"""``crossmargin replay``: a price history through the ledger and its liquidation engine."""

from __future__ import annotations

import dataclasses
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from crossmargin.cli.render import console, emit_json, exit_on_bad_input
from crossmargin.io.results import to_data
from crossmargin.model import CrossMarginError
from crossmargin.model.extras import needs_extra

if TYPE_CHECKING:
    from crossmargin.lab.replay import ReplayReport

__all__ = ["replay"]


def _date(path: str, text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise CrossMarginError(path, f"not an ISO date: {text!r}") from None


def print_replay(report: ReplayReport, venue: str) -> None:
    """One row per figure of the report, as the JSON output writes it (amounts exact)."""
    table = Table(title=f"replay of {report.candles} candles, {report.accounts} accounts ({venue})")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for item in dataclasses.fields(report):
        table.add_row(item.name.replace("_", " "), str(to_data(getattr(report, item.name))))
    console.print(table)


def replay(
    prices: Annotated[
        Path | None,
        typer.Option(
            "--prices", help="CSV of time,open,high,low,close (default: BTC 2h, 2020-03)."
        ),
    ] = None,
    start: Annotated[str | None, typer.Option("--from", help="First candle (ISO date).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last candle (ISO date).")] = None,
    accounts: Annotated[int, typer.Option("--accounts", min=1, help="Synthetic accounts.")] = 200,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the synthetic book.")] = 7,
    venue: Annotated[
        str,
        typer.Option(
            "--venue",
            help="Liquidation rulebook: binance, hyperliquid, dydx, or a TOML file's path.",
        ),
    ] = "binance",
    db: Annotated[
        str, typer.Option("--db", help="Ledger database URL (default: SQLite in memory).")
    ] = "sqlite://",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Replay a price history over a seeded book: liquidations, insurance fund, ADL."""
    with exit_on_bad_input():
        # The ledger is an optional extra: the other commands run without it.
        with needs_extra("ledger", "crossmargin replay"):
            from crossmargin.lab.replay import load_candles, run_history
            from crossmargin.ledger.commands import Ledger
        candles = load_candles(prices, _date("from", start), _date("to", end))
        err = Console(stderr=True)
        with (
            Ledger(db, venue=venue) as ledger,
            Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=err,
                transient=True,
                disable=not err.is_terminal,
            ) as bar,
        ):
            seeding = bar.add_task("accounts", total=accounts)
            running = bar.add_task("candles", total=len(candles))
            report = run_history(
                ledger,
                candles,
                accounts,
                seed,
                progress=lambda n: bar.update(running, completed=n),
                seeding=lambda n: bar.update(seeding, completed=n),
            )
    if as_json:
        emit_json(report)
    else:
        print_replay(report, venue)
    if report.imbalance != 0:
        print(f"error: imbalance: {to_data(report.imbalance)}", file=sys.stderr)
        raise typer.Exit(1)
