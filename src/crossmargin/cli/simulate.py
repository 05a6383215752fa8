"""``crossmargin simulate`` and ``crossmargin allocate``: Monte Carlo of one or more portfolio
documents (each account its own cross account) under cross, isolated, portfolio and as-given
margin, and the split of a capital that keeps most paths free of liquidation."""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from crossmargin.app.portfolio import load_portfolio
from crossmargin.cli.output import (
    CsvOption,
    JsonOption,
    Outputs,
    ParquetOption,
    PngOption,
    ReportOption,
    SeedOption,
    emit,
    progress,
)
from crossmargin.cli.render import console, exit_on_bad_input, fmt, pct
from crossmargin.lab.allocate import AllocationResult, allocate
from crossmargin.lab.distributed import ChunkPool
from crossmargin.lab.paths import MODELS, bundled_model, parse_horizon
from crossmargin.lab.simulate import (
    MODES,
    SimulationResult,
    SimulationRun,
    VenueAccount,
    in_mode,
    simulate,
    trader_accounts,
    underlyings,
)
from crossmargin.model import CrossMarginError

__all__ = ["allocate_command", "simulate_command"]

PortfoliosArgument = Annotated[
    list[Path],
    typer.Argument(help="Portfolio documents (JSON); each account is its own venue account."),
]
HorizonOption = Annotated[str, typer.Option("--horizon", help="Horizon: 12h, 30d, 2w.")]
StepsOption = Annotated[int, typer.Option("--steps", help="Time steps over the horizon.")]
PathsOption = Annotated[int, typer.Option("--paths", help="Monte Carlo paths.")]
ModelOption = Annotated[
    str, typer.Option("--model", help=f"Path model: {' or '.join(MODELS)} (2-hour history).")
]
BlockOption = Annotated[int, typer.Option("--block", help="Bootstrap block, in 2-hour bars.")]
WorkersOption = Annotated[
    int, typer.Option("--workers", help="Run chunks of paths on N local Dask workers (0: no Dask).")
]
SchedulerOption = Annotated[
    str | None, typer.Option("--scheduler", help="Run chunks of paths on this Dask scheduler.")
]


def _run(
    documents: Sequence[Path],
    modes: Sequence[str],
    horizon: str,
    steps: int,
    paths: int,
    model: str,
    block: int,
    seed: int,
    workers: int,
    scheduler: str | None,
) -> tuple[tuple[VenueAccount, ...], SimulationRun]:
    if not documents:
        raise CrossMarginError("portfolio", "give at least one PORTFOLIO document")
    years = parse_horizon(horizon)
    vas = trader_accounts([load_portfolio(d) for d in documents])
    path_model, history = bundled_model(model, underlyings(vas), block)
    if workers < 0:
        raise CrossMarginError("workers", f"must be >= 0, got {workers}")
    with ExitStack() as stack:
        pool = None
        if workers or scheduler is not None:
            pool = stack.enter_context(ChunkPool(scheduler, max(workers, 1)))
        bar = stack.enter_context(progress("simulating"))
        task = bar.add_task("simulating", total=None)
        run = simulate(
            vas,
            path_model,
            model,
            paths,
            steps,
            years,
            seed,
            history.sources,
            modes,
            lambda done, total: bar.update(task, completed=done, total=total),
            pool,
        )
    return vas, run


def print_simulation(result: SimulationResult) -> None:
    """One row per mode: liquidation and ruin probabilities, losses, time, capital."""
    title = (
        f"{result.paths:,} paths x {result.steps} steps over {result.horizon_days:g} days, "
        f"{result.model} model, seed {result.seed}"
    )
    table = Table(title=title)
    columns = (
        "mode",
        "P(liquidation)",
        "95% interval",
        "P(ruin)",
        "mean loss",
        "VaR 99%",
        "ES 97.5%",
        "ES 99%",
        "first liq. (days, median)",
        "capital for 99%",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "mode" else "right")
    for m in result.modes:
        lo, hi = m.liquidation_interval
        first = m.first_liquidation_days
        table.add_row(
            m.mode,
            pct(m.liquidation_probability),
            f"{pct(lo)}-{pct(hi)}",
            pct(m.ruin_probability),
            fmt(m.loss_mean),
            fmt(m.loss_var_99),
            fmt(m.expected_shortfall_975),
            fmt(m.expected_shortfall_99),
            "-" if first is None else f"{first[1]:.2f}",
            fmt(m.capital_for_survival),
        )
    console.print(table)
    proxies = [f"{a} follows {s}" for a, s in result.history.items() if a != s]
    if proxies:
        console.print("no bundled history: " + "; ".join(proxies))
    console.print(f"portfolio margin: {result.portfolio_margin}")


def simulate_command(
    portfolios: PortfoliosArgument,
    horizon: HorizonOption = "30d",
    steps: StepsOption = 360,
    paths: PathsOption = 2000,
    model: ModelOption = "jump",
    block: BlockOption = 12,
    seed: SeedOption = 0,
    workers: WorkersOption = 0,
    scheduler: SchedulerOption = None,
    mode: Annotated[
        list[str] | None,
        typer.Option(
            "--mode",
            help=f"Modes ({', '.join(MODES)}); default all (pm where the venue has it).",
        ),
    ] = None,
    as_json: JsonOption = False,
    csv: CsvOption = None,
    parquet: ParquetOption = None,
    report: ReportOption = None,
    png: PngOption = None,
) -> None:
    """Monte Carlo of PORTFOLIO under cross, isolated, portfolio and as-given margin:
    probability of a liquidation and of ruin, losses with expected shortfall, time to the
    first liquidation and the collateral to add for 99% survival."""
    outputs = Outputs(as_json, csv, parquet, report, png)
    with exit_on_bad_input():
        outputs.check()
        _, run = _run(
            portfolios, mode or MODES, horizon, steps, paths, model, block, seed, workers, scheduler
        )
        result = run.result
        emit(
            result,
            outputs,
            rows=result.rows(),
            table=lambda: print_simulation(result),
            report=run.report,
        )


def print_allocation(result: AllocationResult) -> None:
    """The split, its survival against the documents' split, and the frontier."""
    table = Table(title=f"Allocation of {fmt(result.capital)} over {result.paths:,} paths")
    for column in ("bucket", "amount", "share", "now"):
        table.add_column(column, justify="left" if column == "bucket" else "right")
    for b in result.allocation:
        table.add_row(b.bucket, fmt(b.amount), pct(b.amount / result.capital), fmt(b.current))
    console.print(table)
    console.print(
        f"survival {pct(result.survival)} (the documents' split scaled to the same capital: "
        f"{pct(result.proportional_survival)})"
    )
    frontier = Table(title="Frontier: capital against survival")
    for column in ("capital", "survival"):
        frontier.add_column(column, justify="right")
    points = sorted({(p.capital, p.survival) for p in (*result.grid, *result.targets)})
    for capital, alive in points:
        frontier.add_row(fmt(capital), pct(alive))
    console.print(frontier)


def allocate_command(
    portfolios: PortfoliosArgument,
    capital: Annotated[
        float, typer.Option("--capital", help="Collateral to split (account currency).")
    ],
    horizon: HorizonOption = "30d",
    steps: StepsOption = 360,
    paths: PathsOption = 2000,
    model: ModelOption = "jump",
    block: BlockOption = 12,
    seed: SeedOption = 0,
    workers: WorkersOption = 0,
    scheduler: SchedulerOption = None,
    mode: Annotated[
        str, typer.Option("--mode", help=f"Margin mode of the positions ({', '.join(MODES)}).")
    ] = "given",
    as_json: JsonOption = False,
    csv: CsvOption = None,
    parquet: ParquetOption = None,
    report: ReportOption = None,
    png: PngOption = None,
) -> None:
    """Split CAPITAL over the cross pools of PORTFOLIO's accounts and their isolated
    positions to maximise the share of simulated paths with no liquidation; print the split
    and the frontier of capital against survival."""
    outputs = Outputs(as_json, csv, parquet, report, png)
    with exit_on_bad_input():
        outputs.check()
        if mode not in MODES:
            raise CrossMarginError("--mode", f"one of {', '.join(MODES)}, got {mode!r}")
        if not (math.isfinite(capital) and capital > 0.0):
            raise CrossMarginError("capital", f"must be a positive amount, got {capital}")
        vas, run = _run(
            portfolios, [mode], horizon, steps, paths, model, block, seed, workers, scheduler
        )
        if mode not in run.shortfalls:
            raise CrossMarginError("--mode", f"portfolio margin {run.result.portfolio_margin}")
        result = allocate([in_mode(va, mode) for va in vas], run.shortfalls[mode], capital)
        emit(
            result,
            outputs,
            rows=result.rows(),
            table=lambda: print_allocation(result),
            report=result.report,
        )
