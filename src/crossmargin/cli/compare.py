"""``crossmargin compare``: one portfolio side by side under every bundled rulebook, or under
cross, isolated and portfolio margin (``--modes``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from crossmargin.app.compare import (
    AccountFigures,
    Column,
    CompareResult,
    compare_modes as modes_of,
    compare_rulebooks as rulebooks_of,
)
from crossmargin.cli.margin import PortfolioArgument, RulebookOption
from crossmargin.cli.output import CsvOption, Outputs, ParquetOption, PngOption, ReportOption, emit
from crossmargin.cli.render import JsonOption, console, exit_on_bad_input, fmt, pct
from crossmargin.lab.report import Report, Section, venue_bars
from crossmargin.model import CrossMarginError

__all__ = ["compare", "compare_report", "print_compare"]

_CHART_ACCOUNTS = 4


def _times(value: float | None, spec: str = "g") -> str:
    return "-" if value is None else f"{value:{spec}}x"


def _account_rows(figures: list[AccountFigures | None]) -> list[tuple[str, list[str]]]:
    """Label and one cell per column for an account's figures."""

    def cells(get: object) -> list[str]:
        return ["-" if f is None else get(f) for f in figures]  # type: ignore[operator]

    rows = [
        ("equity", cells(lambda f: fmt(f.equity))),
        ("initial margin", cells(lambda f: fmt(f.initial_margin))),
        ("maintenance margin", cells(lambda f: fmt(f.maintenance_margin))),
        ("margin ratio", cells(lambda f: pct(f.margin_ratio))),
        ("max leverage", cells(lambda f: _times(f.max_leverage))),
        ("effective leverage", cells(lambda f: _times(f.effective_leverage, ".2f"))),
        ("crash distance", cells(lambda f: pct(f.crash_distance))),
        ("status", cells(lambda f: f.status)),
    ]
    present = next(f for f in figures if f is not None)
    for j, position in enumerate(present.positions):
        label = position.symbol
        rows.append(
            (
                f"{label} liq.",
                cells(lambda f, j=j: fmt(f.positions[j].liquidation_price)),
            )
        )
        rows.append(
            (
                f"{label} bankr.",
                cells(lambda f, j=j: fmt(f.positions[j].bankruptcy_price)),
            )
        )
    return rows


def print_compare(result: CompareResult) -> None:
    """One table per account: a row per figure, a column per rulebook (or mode); the skipped
    columns and why below."""
    shown = [c for c in result.columns if c.skipped is None]
    ids = list(dict.fromkeys(a.id for c in shown for a in c.accounts))
    for account in ids:
        table = Table(title=f"{result.document}: {account} by {result.across}")
        table.add_column("figure")
        for c in shown:
            moved = " (translated)" if c.translated else ""
            table.add_column(f"{c.name}{moved}", justify="right")
        figures = [next((a for a in c.accounts if a.id == account), None) for c in shown]
        for label, cells in _account_rows(figures):
            table.add_row(label, *cells)
        console.print(table)
    for c in shown:
        if c.symbols:
            mapping = ", ".join(f"{a} -> {b}" for a, b in c.symbols.items())
            console.print(f"{c.name}: {mapping}", highlight=False)
    for c in result.columns:
        if c.skipped is not None:
            console.print(f"{c.name}: skipped: {c.skipped}", highlight=False)


def compare_report(result: CompareResult) -> Report:
    """IM and MM bars per account, crash distance and max leverage by column."""
    shown: list[Column] = [c for c in result.columns if c.skipped is None]
    names = [c.name for c in shown]
    ids = list(dict.fromkeys(a.id for c in shown for a in c.accounts))

    def figure(c: Column, account: str) -> AccountFigures | None:
        return next((a for a in c.accounts if a.id == account), None)

    def values(account: str, name: str) -> list[float]:
        out = []
        for c in shown:
            f = figure(c, account)
            value = None if f is None else getattr(f, name)
            out.append(float("nan") if value is None else float(value))
        return out

    sections = []
    for k, account in enumerate(ids[:_CHART_ACCOUNTS]):
        currency = next(f.currency for c in shown if (f := figure(c, account)) is not None)
        sections.append(
            Section(
                f"Margins of {account}",
                venue_bars(
                    names,
                    {
                        "initial margin": values(account, "initial_margin"),
                        "maintenance margin": values(account, "maintenance_margin"),
                        "equity": values(account, "equity"),
                    },
                    title=f"{account}: margins by {result.across} ({currency})",
                    x_label=result.across,
                    y_label=currency,
                    slug="venue-comparison" if k == 0 else f"venue-comparison-{k + 1}",
                ),
            )
        )
    sections.append(
        Section(
            "Crash distance",
            venue_bars(
                names,
                {a: values(a, "crash_distance") for a in ids[:_CHART_ACCOUNTS]},
                title=f"Crash distance by {result.across} (uniform move to liquidation)",
                x_label=result.across,
                y_label="move",
                slug="crash-distance",
            ),
            rows=tuple(
                {k: v for k, v in row.items() if not isinstance(v, dict)} for row in result.rows
            ),
        )
    )
    return Report(f"Compare: {result.document}", tuple(sections), subtitle=f"by {result.across}")


def compare(
    portfolio: PortfolioArgument,
    modes: Annotated[
        bool, typer.Option("--modes", help="Cross, isolated and portfolio margin, one rulebook.")
    ] = False,
    rulebook: RulebookOption = None,
    only: Annotated[
        list[str] | None, typer.Option("--only", help="Compare these rulebooks (repeatable).")
    ] = None,
    as_json: JsonOption = False,
    csv: CsvOption = None,
    parquet: ParquetOption = None,
    report: ReportOption = None,
    png: PngOption = None,
) -> None:
    """PORTFOLIO under every bundled rulebook side by side (IM, MM, leverage, liquidation and
    bankruptcy prices, crash distance), or with --modes under cross, isolated and PM."""
    outputs = Outputs(as_json, csv, parquet, report, png)
    with exit_on_bad_input():
        outputs.check()
        if modes:
            result = modes_of(Path(portfolio), rulebook)
        else:
            if rulebook is not None:
                raise CrossMarginError("rulebook", "goes with --modes (use --only NAME)")
            result = rulebooks_of(Path(portfolio), only)
        emit(
            result,
            outputs,
            rows=result.rows,
            table=lambda: print_compare(result),
            report=lambda: compare_report(result),
        )
