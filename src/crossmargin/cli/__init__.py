"""Command line: ``crossmargin margin``, ``what-if``, ``rulebooks``, ``demo``, ``scenarios``,
``stress``, ``bench`` and ``replay``; one module per command group."""

from __future__ import annotations

import typer

from crossmargin.cli.bench import bench
from crossmargin.cli.margin import demo, margin, rulebooks, what_if
from crossmargin.cli.replay import replay
from crossmargin.cli.scenarios import scenarios
from crossmargin.cli.stress import stress

__all__ = ["app", "main"]

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Cross-margin risk engine: account health, margin and liquidation prices.",
)
app.command("margin")(margin)
app.command("what-if")(what_if)
app.command("rulebooks")(rulebooks)
app.command("demo")(demo)
app.command("scenarios")(scenarios)
app.command("stress")(stress)
app.command("bench")(bench)
app.command("replay")(replay)


def main() -> None:
    """Entry point of the ``crossmargin`` command."""
    app()
