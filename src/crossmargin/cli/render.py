"""What every screen shares: the console, number formats, status colours, the JSON edge and
the bad-input guard (exit code 2 and one line on stderr)."""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console

from crossmargin.io.results import to_json
from crossmargin.maths.status import Status
from crossmargin.model import CrossMarginError

__all__ = [
    "JsonOption",
    "console",
    "emit_json",
    "exit_on_bad_input",
    "fmt",
    "pct",
    "status_markup",
]

console = Console(width=None if sys.stdout.isatty() else 132)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]

_STATUS_STYLE = {
    "healthy": "green",
    "margin_call": "yellow",
    "liquidatable": "red",
    "bankrupt": "bold red",
}


@contextmanager
def exit_on_bad_input() -> Iterator[None]:
    """Turn a CrossMarginError into ``error: path: reason`` on stderr and exit code 2."""
    try:
        yield
    except CrossMarginError as error:
        print(f"error: {error}", file=sys.stderr)
        raise typer.Exit(2) from None


def emit_json(result: Any) -> None:
    """Print a typed result as JSON (``crossmargin.io.results``: the one serialiser)."""
    print(to_json(result))


def fmt(value: float | None) -> str:
    """Amounts and prices: whole units from 1,000 up, cents below, 6 significant under 1;
    ``-`` for none (no liquidation price, an infinite ratio)."""
    if value is None or not math.isfinite(value):
        return "-"
    size = abs(value)
    if size >= 1_000:
        return f"{value:,.0f}"
    if size >= 1 or value == 0:
        return f"{value:,.2f}"
    return f"{value:.6g}"


def pct(value: float | None) -> str:
    """A fraction as a percentage with two decimals; ``-`` for none."""
    if value is None or not math.isfinite(value):
        return "-"
    return f"{100 * value:.2f}%"


def status_markup(status: Status | str) -> str:
    """The status label in its colour (``healthy`` green ... ``bankrupt`` bold red)."""
    label = status.label if isinstance(status, Status) else status
    return f"[{_STATUS_STYLE[label]}]{label}[/]"
