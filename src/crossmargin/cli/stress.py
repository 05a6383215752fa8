"""``crossmargin stress``: a portfolio document's book or a synthetic book under uniform and
historical price shocks, sharded over Dask."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from crossmargin.app.stress import document_book
from crossmargin.cli.render import JsonOption, console, emit_json, exit_on_bad_input
from crossmargin.lab.distributed import HISTORICAL, Scenario, StressResult, run_stress
from crossmargin.lab.synthetic import synthetic_book, synthetic_market
from crossmargin.model import CrossMarginError
from crossmargin.model.extras import needs_extra

__all__ = [
    "ScenarioRow",
    "StressReport",
    "WorstAccount",
    "default_scenarios",
    "stress",
    "stress_report",
]

UNIFORM_MOVES = (-0.5, -0.3, -0.2, -0.1, 0.1, 0.2, 0.3, 0.5)


def default_scenarios() -> list[Scenario]:
    """Uniform moves of -50% to +50% and the historical days in ``HISTORICAL``."""
    return [
        *(Scenario.uniform(m) for m in UNIFORM_MOVES),
        *(Scenario.historical(d) for d in HISTORICAL),
    ]


@dataclass(frozen=True)
class ScenarioRow:
    """One shock: its fractional ``move``, the accounts liquidated (liquidatable or bankrupt)
    and the ``shortfall`` (negative equity summed, as a positive amount, account currency)."""

    name: str
    move: float
    liquidated: int
    shortfall: float


@dataclass(frozen=True)
class WorstAccount:
    """An account's largest equity loss over the scenarios and the scenario that causes it."""

    id: str
    worst_loss: float
    scenario: str


@dataclass(frozen=True)
class StressReport:
    """The stress table: the book's size, every scenario, the accounts that lose most."""

    accounts: int
    scenarios: tuple[ScenarioRow, ...]
    worst_accounts: tuple[WorstAccount, ...]
    options_left_out: int = 0


def stress_report(
    result: StressResult, scenarios: list[Scenario], top: int, options_left_out: int = 0
) -> StressReport:
    """The report of a run over ``scenarios``, listing the ``top`` accounts by worst loss;
    ``options_left_out`` option positions were not shocked."""
    order = result.worst_loss.argsort()[::-1][:top]
    return StressReport(
        len(result.account_ids),
        tuple(
            ScenarioRow(s.name, s.move, int(result.liquidated[k]), float(result.shortfall[k]))
            for k, s in enumerate(scenarios)
        ),
        tuple(
            WorstAccount(
                result.account_ids[i],
                float(result.worst_loss[i]),
                scenarios[int(result.worst_scenario[i])].name,
            )
            for i in order.tolist()
        ),
        options_left_out,
    )


def print_stress(report: StressReport) -> None:
    """One row per scenario: move, accounts liquidated, shortfall."""
    table = Table(title=f"Stress: {report.accounts} accounts")
    for column in ("scenario", "move", "liquidated", "shortfall"):
        table.add_column(column, justify="left" if column == "scenario" else "right")
    for row in report.scenarios:
        table.add_row(
            row.name, f"{100 * row.move:+.1f}%", str(row.liquidated), f"{row.shortfall:,.2f}"
        )
    console.print(table)
    if report.options_left_out:
        console.print(
            f"{report.options_left_out} option positions left out: the stress shocks futures and "
            "spot (options are margined by portfolio margin: crossmargin margin, scenarios)"
        )


def stress(
    portfolio: Annotated[
        Path | None, typer.Argument(help="Portfolio document (JSON); or use --synthetic.")
    ] = None,
    synthetic: Annotated[
        int | None, typer.Option("--synthetic", help="Stress a synthetic book of N accounts.")
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option("--scheduler", help="Dask scheduler address (tcp://host:port).")
    ] = None,
    shards: Annotated[int, typer.Option("--shards", help="Account shards.")] = 4,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the synthetic book.")] = 0,
    top: Annotated[int, typer.Option("--top", help="Accounts listed by worst loss.")] = 10,
    as_json: JsonOption = False,
) -> None:
    """Stress PORTFOLIO (or a synthetic book) under uniform and historical price shocks."""
    with exit_on_bad_input(), needs_extra("distributed", "crossmargin stress"):
        if (portfolio is None) == (synthetic is None):
            raise CrossMarginError("portfolio", "give a PORTFOLIO file or --synthetic N")
        if shards < 1:
            raise CrossMarginError("shards", f"must be >= 1, got {shards}")
        if top < 0:
            raise CrossMarginError("top", f"must be >= 0, got {top}")
        scenarios = default_scenarios()
        left_out = 0
        if synthetic is not None:
            if synthetic < 1:
                raise CrossMarginError("synthetic", f"must be >= 1, got {synthetic}")
            params, columns = synthetic_book(synthetic_market(), synthetic, seed=seed)
            result = run_stress(columns, params, scenarios, scheduler, shards)
        elif portfolio is not None:
            book = document_book(portfolio)
            left_out = book.options_left_out
            result = run_stress(list(book.accounts), book.market, scenarios, scheduler, shards)
        report = stress_report(result, scenarios, top, left_out)
    if as_json:
        emit_json(report)
    else:
        print_stress(report)
