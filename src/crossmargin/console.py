"""What every command shares: bad input ends with exit code 2 and one line on stderr."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer

from crossmargin.model import CrossMarginError

__all__ = ["exit_on_bad_input"]


@contextmanager
def exit_on_bad_input() -> Iterator[None]:
    """Turn a CrossMarginError into ``error: path: reason`` on stderr and exit code 2."""
    try:
        yield
    except CrossMarginError as error:
        print(f"error: {error}", file=sys.stderr)
        raise typer.Exit(2) from None
