"""Command functions ``stress`` and ``bench`` for the ``crossmargin`` command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from crossmargin.book.riskbook import BookColumns
from crossmargin.console import exit_on_bad_input
from crossmargin.io.document import load_portfolio
from crossmargin.lab.bench import run_bench
from crossmargin.lab.distributed import HISTORICAL, Scenario, StressResult, run_stress
from crossmargin.lab.synthetic import synthetic_book, synthetic_market
from crossmargin.model import Account, CrossMarginError

__all__ = ["bench", "default_scenarios", "stress"]

_UNIFORM = (-0.5, -0.3, -0.2, -0.1, 0.1, 0.2, 0.3, 0.5)


def default_scenarios() -> list[Scenario]:
    """Uniform moves of -50% to +50% and the historical days in ``HISTORICAL``."""
    return [
        *(Scenario.uniform(m) for m in _UNIFORM),
        *(Scenario.historical(d) for d in HISTORICAL),
    ]


def _payload(result: StressResult, scenarios: list[Scenario], top: int) -> dict[str, object]:
    order = result.worst_loss.argsort()[::-1][:top]
    return {
        "accounts": len(result.account_ids),
        "scenarios": [
            {
                "name": s.name,
                "move": s.move,
                "liquidated": int(result.liquidated[k]),
                "shortfall": float(result.shortfall[k]),
            }
            for k, s in enumerate(scenarios)
        ],
        "worst_accounts": [
            {
                "id": result.account_ids[i],
                "worst_loss": float(result.worst_loss[i]),
                "scenario": scenarios[int(result.worst_scenario[i])].name,
            }
            for i in order.tolist()
        ],
    }


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
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Stress PORTFOLIO (or a synthetic book) under uniform and historical price shocks."""

    with exit_on_bad_input():
        if (portfolio is None) == (synthetic is None):
            raise CrossMarginError("portfolio", "give a PORTFOLIO file or --synthetic N")
        if shards < 1:
            raise CrossMarginError("shards", f"must be >= 1, got {shards}")
        scenarios = default_scenarios()
        book: list[Account] | BookColumns
        if synthetic is not None:
            if synthetic < 1:
                raise CrossMarginError("synthetic", f"must be >= 1, got {synthetic}")
            params, book = synthetic_book(synthetic_market(), synthetic, seed=seed)
            result = run_stress(book, params, scenarios, scheduler, shards)
        else:
            assert portfolio is not None
            parsed = load_portfolio(portfolio)
            result = run_stress(list(parsed.accounts), parsed.market, scenarios, scheduler, shards)
        payload = _payload(result, scenarios, top)
        if as_json:
            print(json.dumps(payload, indent=2))
            return
        table = Table(title=f"Stress: {payload['accounts']} accounts")
        for column in ("scenario", "move", "liquidated", "shortfall"):
            table.add_column(column, justify="left" if column == "scenario" else "right")
        for k, s in enumerate(scenarios):
            table.add_row(
                s.name,
                f"{100 * s.move:+.1f}%",
                str(int(result.liquidated[k])),
                f"{result.shortfall[k]:,.2f}",
            )
        Console().print(table)


def bench(
    accounts: Annotated[int, typer.Option("--accounts", help="Synthetic accounts.")] = 100_000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the synthetic book.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Time the risk book on a synthetic book of N accounts (figures as ratios and rates)."""

    with exit_on_bad_input():
        if accounts < 100:
            raise CrossMarginError("accounts", f"must be >= 100, got {accounts}")
        figures = run_bench(accounts, seed)
        if as_json:
            print(json.dumps(figures))
            return
        table = Table(title="Risk book benchmark")
        table.add_column("figure")
        table.add_column("value", justify="right")
        for name, value in figures.items():
            table.add_row(name, f"{value:,.6g}" if isinstance(value, float) else str(value))
        Console().print(table)
