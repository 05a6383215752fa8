"""Command line: ``crossmargin margin``, ``what-if``, ``rulebooks``, ``demo``, ``scenarios``,
``stress``, ``bench``, ``replay``, ``serve``, ``keys`` and ``venues``; one module per command
group."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.metadata import version
from typing import Annotated, Any

import typer
from typer._click.exceptions import ClickException, MissingParameter, NoArgsIsHelpError
from typer.core import TyperGroup

from crossmargin.cli.bench import bench
from crossmargin.cli.margin import demo, margin, rulebooks, what_if
from crossmargin.cli.replay import replay
from crossmargin.cli.scenarios import scenarios
from crossmargin.cli.serve import keys, serve
from crossmargin.cli.stress import stress
from crossmargin.cli.venues import venues

__all__ = ["app", "main"]


class _OneLineErrors(TyperGroup):
    """Usage errors (``--qty abc``, a missing option) as ``error: --qty: reason`` on one line
    and exit code 2, like every other bad input."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            code = super().main(
                args,
                prog_name,
                complete_var,
                standalone_mode=False,
                windows_expand_args=windows_expand_args,
                **extra,
            )
        except NoArgsIsHelpError as error:
            error.show()
            code = error.exit_code
        except typer.BadParameter as error:
            names = error.param.opts if error.param is not None else []
            if isinstance(error, MissingParameter) or not names:
                print(f"error: {error.format_message()}", file=sys.stderr)
            else:
                print(f"error: {names[0]}: {error.message}", file=sys.stderr)
            code = error.exit_code
        except ClickException as error:
            print(f"error: {error.format_message()}", file=sys.stderr)
            code = error.exit_code
        except typer.Abort:
            print("aborted", file=sys.stderr)
            code = 1
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)


def _show_version(value: bool) -> None:
    if value:
        print(f"crossmargin {version('crossmargin')}")
        raise typer.Exit()


app = typer.Typer(
    cls=_OneLineErrors,
    add_completion=False,
    no_args_is_help=True,
    help="Cross-margin risk engine: account health, margin and liquidation prices.",
)


@app.callback()
def _root(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Cross-margin risk engine: account health, margin and liquidation prices."""


app.command("margin")(margin)
app.command("what-if")(what_if)
app.command("rulebooks")(rulebooks)
app.command("demo")(demo)
app.command("scenarios")(scenarios)
app.command("stress")(stress)
app.command("bench")(bench)
app.command("replay")(replay)
app.command("serve")(serve)
app.command("venues")(venues)
app.add_typer(keys, name="keys")


def main() -> None:
    """Entry point of the ``crossmargin`` command."""
    app()
