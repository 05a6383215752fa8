"""``crossmargin cascade``: liquidations feeding on each other across venues after a shock."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from crossmargin.app.portfolio import load_portfolio
from crossmargin.cli.output import (
    CsvOption,
    Outputs,
    ParquetOption,
    PngOption,
    ReportOption,
    emit,
    progress,
)
from crossmargin.cli.render import JsonOption, console, exit_on_bad_input, fmt, pct
from crossmargin.lab.cascade import (
    CascadeConfig,
    CascadeResult,
    VenueSpec,
    load_config,
    run_cascade,
)
from crossmargin.lab.report import Chart, Report, Section, Series, cascade_price_path
from crossmargin.model import CrossMarginError
from crossmargin.rules.venue import bundled_venues, load_venue

__all__ = ["cascade", "cascade_report", "cascade_rows", "parse_shock"]

_DEFAULT_SIGMA = 0.045
"""Daily volatility given to a book's underlyings that the configuration does not name."""


def parse_shock(text: str, underlyings: tuple[str, ...]) -> dict[str, float]:
    """``-0.1`` (every underlying) or ``BTC=-0.1,ETH=-0.13`` as moves by underlying."""
    try:
        if "=" not in text:
            return dict.fromkeys(underlyings, float(text))
        pairs = [item.split("=", 1) for item in text.split(",") if item.strip()]
        return {name.strip(): float(value) for name, value in pairs}
    except ValueError:
        raise CrossMarginError("--shock", f"not a move or NAME=move list: {text!r}") from None


def _names(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())


def _book_venue(rulebook: str) -> str:
    """The liquidation rulebook whose margin rulebook is ``rulebook``."""
    for name in bundled_venues():
        if load_venue(name).margin_rulebook == rulebook:
            return name
    raise CrossMarginError("--venues", f"no liquidation rulebook for {rulebook}; name one")


def cascade_rows(result: CascadeResult) -> list[dict[str, Any]]:
    """One row per step and venue: notional liquidated, fund balance, traded price and mark
    of each underlying, and the index (the CSV and Parquet rows)."""
    rows: list[dict[str, Any]] = []
    for venue in result.venues:
        for t, done in enumerate(venue.liquidated_per_step):
            row: dict[str, Any] = {
                "step": t,
                "venue": venue.venue,
                "liquidated": done,
                "insurance": venue.insurance_path[t],
            }
            for name in venue.prices:
                row[f"price.{name}"] = venue.prices[name][t]
                row[f"mark.{name}"] = venue.marks[name][t]
                row[f"index.{name}"] = result.index[name][t]
            rows.append(row)
    return rows


def _summary(result: CascadeResult) -> list[dict[str, Any]]:
    return [
        {
            "venue": v.venue,
            "accounts": v.accounts,
            "liquidated accounts": v.liquidated_accounts,
            "liquidated": v.liquidated_notional,
            "long share": v.long_notional / v.liquidated_notional if v.liquidated_notional else 0,
            "fund start": v.insurance_start,
            "fund end": v.insurance_end,
            "ADL": v.adl_amount,
            "ADL overshoot": v.adl_overshoot,
            "ADL counterparties": v.adl_counterparties,
            "bad debt": v.bad_debt,
        }
        for v in result.venues
    ]


def print_cascade(result: CascadeResult) -> None:
    """The venues side by side, then the run's totals."""
    table = Table(title=f"cascade: {result.steps} steps, {result.rounds} rounds liquidating")
    rows = _summary(result)
    for key in rows[0]:
        table.add_column(key, justify="left" if key == "venue" else "right", no_wrap=key == "venue")
    for row in rows:
        cells = [
            pct(v) if k == "long share" else fmt(v) if isinstance(v, float) else str(v)
            for k, v in row.items()
        ]
        table.add_row(*cells)
    console.print(table)
    drops = ", ".join(f"{n} {pct(d)}" for n, d in result.drawdown.items())
    end = "fixed point" if result.fixed_point else "horizon"
    console.print(
        f"lowest index: {drops}; liquidated {fmt(result.liquidated_notional)} = "
        f"{pct(result.liquidated_share)} of open interest {fmt(result.open_interest)}, "
        f"{pct(result.long_share)} longs; stopped at the {end}"
    )


def cascade_report(result: CascadeResult) -> Report:
    """Price paths per underlying (index and venues), notional liquidated and insurance fund
    step by step, and the venues' figures."""
    steps = list(range(result.steps))
    sections = []
    for name in result.index:
        paths = {"index": result.index[name]}
        paths.update({f"{v.venue} traded": v.prices[name] for v in result.venues})
        paths.update({f"{v.venue} mark": v.marks[name] for v in result.venues})
        chart = cascade_price_path(
            steps, paths, title=f"{name} price through the cascade", slug=f"cascade-{name.lower()}"
        )
        sections.append(Section(f"{name} price", chart))
    liquidated = Chart(
        "cascade-liquidated",
        "Notional liquidated per step",
        "step",
        "notional",
        tuple(Series(v.venue, tuple(steps), v.liquidated_per_step, "bar") for v in result.venues),
    )
    fund = Chart(
        "cascade-insurance",
        "Insurance fund",
        "step",
        "balance",
        tuple(Series(v.venue, tuple(steps), v.insurance_path) for v in result.venues),
    )
    sections.append(Section("Liquidations", liquidated))
    sections.append(Section("Insurance funds", fund, rows=tuple(_summary(result))))
    c = result.config
    subtitle = (
        f"seed {c.seed}; shock {dict(c.shock)}; depth {c.depth}; throughput {c.throughput}; "
        f"lag {c.lag}; venues {', '.join(v.rules for v in c.venues)}"
    )
    return Report("Liquidation cascade", tuple(sections), subtitle)


def _config(case: str | None, overrides: Mapping[str, Any], shock: str | None) -> CascadeConfig:
    """The configuration ``--case`` names (default: the defaults) with the options given; a
    bad value names its option."""
    try:
        if case is not None:
            config, _ = load_config(case, **overrides)
        else:
            config = CascadeConfig(**{k: v for k, v in overrides.items() if v is not None})
        if shock is not None:
            config = replace(config, shock=parse_shock(shock, config.underlyings))
    except CrossMarginError as error:
        head = error.path.split(".")[0].split("[")[0]
        if head in overrides or head == "shock":
            raise CrossMarginError(f"--{error.path}", error.reason) from None
        raise
    return config


def cascade(
    case: Annotated[
        str | None,
        typer.Option("--case", help="A cascade TOML: the bundled oct-2025, or a file's path."),
    ] = None,
    accounts: Annotated[
        int | None, typer.Option("--accounts", min=1, help="Synthetic accounts (all venues).")
    ] = None,
    book: Annotated[
        Path | None,
        typer.Option("--book", help="A portfolio document: its accounts are the population."),
    ] = None,
    venues: Annotated[
        str | None,
        typer.Option("--venues", help="Liquidation rulebooks, comma-separated (binance,...)."),
    ] = None,
    underlyings: Annotated[
        str | None, typer.Option("--underlyings", help="Underlyings, comma-separated (BTC,ETH).")
    ] = None,
    shock: Annotated[
        str | None,
        typer.Option("--shock", help="Initial move: -0.1 for every underlying, or BTC=-0.1,..."),
    ] = None,
    depth: Annotated[
        float | None, typer.Option("--depth", min=0.0, help="Multiple of normal depth (0.02).")
    ] = None,
    throughput: Annotated[
        float | None,
        typer.Option("--throughput", min=0.0, help="Most notional liquidated per step / OI."),
    ] = None,
    lag: Annotated[
        int | None, typer.Option("--lag", min=0, help="Steps the marks trail the index.")
    ] = None,
    steps: Annotated[int | None, typer.Option("--steps", min=1, help="Horizon in steps.")] = None,
    leverage: Annotated[
        float | None, typer.Option("--leverage", min=0.0, help="Position sizes times this.")
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Random seed (same seed, same result).")
    ] = None,
    as_json: JsonOption = False,
    csv: CsvOption = None,
    parquet: ParquetOption = None,
    report: ReportOption = None,
    png: PngOption = None,
) -> None:
    """Run a liquidation cascade: rounds, liquidated notional per step, price paths, insurance
    funds and ADL overshoot."""
    outputs = Outputs(as_json, csv, parquet, report, png)
    with exit_on_bad_input():
        outputs.check()
        overrides: dict[str, Any] = {
            "accounts": accounts,
            "depth": depth,
            "throughput": throughput,
            "lag": lag,
            "steps": steps,
            "leverage": leverage,
            "seed": seed,
        }
        if venues is not None:
            overrides["venues"] = tuple(VenueSpec(v) for v in _names(venues))
        if underlyings is not None:
            overrides["underlyings"] = _names(underlyings)
        population = None
        if book is not None:
            portfolio = load_portfolio(book)
            market = portfolio.market
            priced = {
                i.underlying
                for s, i in market.instruments.items()
                if i.is_derivative and s in market.prices
            }
            names = overrides.get("underlyings") or tuple(sorted(priced))
            overrides["underlyings"] = names
            overrides.setdefault("venues", (VenueSpec(_book_venue(portfolio.rulebook.name)),))
            sigma = dict(CascadeConfig().sigma_daily)
            overrides["sigma_daily"] = {n: sigma.get(n, _DEFAULT_SIGMA) for n in names}
            population = (portfolio.market, portfolio.accounts)
        config = _config(case, overrides, shock)
        with progress("cascade") as bar:
            task = bar.add_task("steps", total=config.steps)
            result = run_cascade(
                config, population, progress=lambda n: bar.update(task, completed=n)
            )
        emit(
            result,
            outputs,
            rows=cascade_rows(result),
            table=lambda: print_cascade(result),
            report=lambda: cascade_report(result),
        )
