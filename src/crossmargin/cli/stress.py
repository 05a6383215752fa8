"""``crossmargin stress``: a portfolio document's book or a synthetic book under uniform and
historical price shocks, sharded over Dask; with ``--window``/``--grid``, along real crash
windows and hypothetical grids, account by account (options under portfolio margin)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from crossmargin.app.portfolio import load_portfolio
from crossmargin.app.stress import document_book
from crossmargin.book.riskbook import RiskBook
from crossmargin.cli.margin import RulebookOption
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
from crossmargin.lab.distributed import HISTORICAL, Scenario, StressResult, run_stress
from crossmargin.lab.path_stress import (
    AccountOutcome,
    Evaluator,
    PathStressReport,
    book_evaluator,
    portfolio_evaluator,
    run_paths,
)
from crossmargin.lab.report import Chart, Report, Section, Series, loss_histogram, venue_bars
from crossmargin.lab.shocks import DEFAULT_BETAS, GRIDS, StressPath, grid_paths, window_stress_path
from crossmargin.lab.synthetic import synthetic_book, synthetic_market
from crossmargin.lab.windows import WINDOWS
from crossmargin.model import CrossMarginError, Market
from crossmargin.model.extras import needs_extra

__all__ = [
    "ScenarioRow",
    "StressReport",
    "WorstAccount",
    "default_scenarios",
    "parse_betas",
    "select_paths",
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


def _shock_report(report: StressReport) -> Report:
    names = [r.name for r in report.scenarios]
    return Report(
        f"Stress: {report.accounts} accounts",
        (
            Section(
                "Shortfall by scenario",
                venue_bars(
                    names,
                    {"shortfall": [r.shortfall for r in report.scenarios]},
                    title="Shortfall by scenario",
                    x_label="scenario",
                    y_label="shortfall",
                    slug="scenario-shortfall",
                ),
                rows=tuple(
                    {"scenario": r.name, "liquidated": r.liquidated} for r in report.scenarios
                ),
            ),
        ),
    )


def _choose(given: list[str], catalogue: tuple[str, ...], option: str) -> list[str]:
    if "all" in given:
        return list(catalogue)
    for name in given:
        if name not in catalogue:
            have = ", ".join(catalogue)
            raise CrossMarginError(option, f"no {option} {name!r}; have {have}, all")
    return list(dict.fromkeys(given))


def select_paths(
    windows: list[str], grids: list[str], market: Market, options: bool
) -> list[StressPath]:
    """The chosen windows (names of :data:`WINDOWS` or ``all``) then the chosen grids."""
    paths = [window_stress_path(w) for w in _choose(windows, tuple(WINDOWS), "window")]
    for grid in _choose(grids, GRIDS, "grid"):
        paths.extend(grid_paths(grid, market, options))
    return paths


def parse_betas(items: list[str]) -> dict[str, float]:
    """``ASSET=BETA`` items over :data:`DEFAULT_BETAS`."""
    betas = dict(DEFAULT_BETAS)
    for item in items:
        asset, sep, text = item.partition("=")
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not sep or not asset or not (value == value and abs(value) < 1e6):
            raise CrossMarginError("beta", f"expected ASSET=NUMBER, got {item!r}")
        betas[asset.upper()] = value
    return betas


def _worst_by_account(report: PathStressReport) -> list[tuple[str, AccountOutcome, int, float]]:
    """Per account: its lowest-equity outcome, paths liquidated and the largest shortfall,
    largest shortfall first."""
    by: dict[str, list[AccountOutcome]] = {}
    for o in report.outcomes:
        by.setdefault(o.account, []).append(o)
    rows = []
    for account, items in by.items():
        worst = min(items, key=lambda o: o.worst_equity)
        rows.append(
            (account, worst, sum(o.liquidated for o in items), max(o.shortfall for o in items))
        )
    rows.sort(key=lambda r: (-r[3], r[1].worst_equity - r[1].base_equity))
    return rows


def print_paths(report: PathStressReport, top: int) -> None:
    """One row per path, then the ``top`` accounts by largest shortfall."""
    pm = f", PM {report.portfolio_margin}" if report.portfolio_margin else ""
    table = Table(
        title=f"Stress paths: {report.accounts} accounts, {report.rulebook}{pm} ({report.currency})"
    )
    for column in ("scenario", "kind", "steps", "BTC low", "liquidated", "shortfall"):
        table.add_column(column, justify="left" if column in ("scenario", "kind") else "right")
    for s in report.scenarios:
        table.add_row(
            s.name, s.kind, str(s.steps), pct(s.btc_low), str(s.liquidated), fmt(s.shortfall)
        )
    console.print(table)
    accounts = Table(title="Accounts by largest shortfall")
    for column in ("account", "base equity", "worst equity", "worst path", "paths liquidated"):
        left = column in ("account", "worst path")
        accounts.add_column(column, justify="left" if left else "right")
    accounts.add_column("max shortfall", justify="right")
    for account, worst, liquidated, shortfall in _worst_by_account(report)[:top]:
        accounts.add_row(
            account,
            fmt(worst.base_equity),
            fmt(worst.worst_equity),
            worst.scenario,
            f"{liquidated}/{len(report.scenarios)}",
            fmt(shortfall),
        )
    console.print(accounts)


_CHART_ACCOUNTS = 8


def _paths_report(
    report: PathStressReport, paths: list[StressPath], equity: dict[str, Any], source: str
) -> Report:
    """Charts: BTC along each window, equity along the first window, shortfall per path,
    worst equity per window by account, the distribution of worst losses."""
    windows = [p for p in paths if p.kind == "window"]
    shown = list(dict.fromkeys(o.account for o in report.outcomes))[:_CHART_ACCOUNTS]
    index = {a: j for j, a in enumerate(dict.fromkeys(o.account for o in report.outcomes))}
    sections = []
    if windows:
        sections.append(
            Section(
                "BTC through the windows",
                Chart(
                    "window-paths",
                    "BTC through each window (first open = 1)",
                    "point (a third of a candle)",
                    "BTC / first open",
                    tuple(
                        Series(p.name, tuple(range(p.steps)), tuple(s.driver for s in p.shocks))
                        for p in windows
                    ),
                ),
                text="Other coins move by beta: "
                + ", ".join(f"{a} {b:g}" for a, b in report.betas.items())
                + f", any other {report.alt_beta:g}.",
            )
        )
        first = windows[0]
        sections.append(
            Section(
                f"Equity through {first.name}",
                Chart(
                    "window-equity",
                    f"Account equity through {first.name} ({report.currency})",
                    "point",
                    f"equity ({report.currency})",
                    tuple(
                        Series(
                            a,
                            tuple(range(first.steps)),
                            tuple(float(v) for v in equity[first.name][:, index[a]]),
                        )
                        for a in shown
                    ),
                ),
            )
        )
        sections.append(
            Section(
                "Worst equity by window",
                venue_bars(
                    [p.name for p in windows],
                    {
                        a: [
                            o.worst_equity
                            for p in windows
                            for o in report.outcomes
                            if o.scenario == p.name and o.account == a
                        ]
                        for a in shown
                    },
                    title=f"Worst equity by window ({report.currency})",
                    x_label="window",
                    y_label=f"worst equity ({report.currency})",
                    slug="window-worst-equity",
                ),
            )
        )
    sections.append(
        Section(
            "Shortfall and liquidations by path",
            venue_bars(
                [s.name for s in report.scenarios],
                {"shortfall": [s.shortfall for s in report.scenarios]},
                title=f"Shortfall by path ({report.currency})",
                x_label="path",
                y_label=f"shortfall ({report.currency})",
                slug="path-shortfall",
            ),
            rows=tuple(
                {
                    "path": s.name,
                    "kind": s.kind,
                    "steps": s.steps,
                    "BTC low": s.btc_low,
                    "liquidated": s.liquidated,
                    "shortfall": s.shortfall,
                }
                for s in report.scenarios
            ),
        )
    )
    sections.append(
        Section(
            "Worst losses",
            loss_histogram(
                {"accounts x paths": [o.base_equity - o.worst_equity for o in report.outcomes]},
                title=f"Worst loss on a path ({report.currency})",
                x_label=f"base equity - worst equity ({report.currency})",
            ),
        )
    )
    return Report(
        f"Stress: {source}",
        tuple(sections),
        subtitle=f"{report.accounts} accounts, rulebook {report.rulebook}"
        + (f", portfolio margin {report.portfolio_margin}" if report.portfolio_margin else ""),
    )


def _run_paths(
    portfolio: Path | None,
    synthetic: int | None,
    seed: int,
    rulebook: str | None,
    windows: list[str],
    grids: list[str],
    betas: dict[str, float],
) -> tuple[PathStressReport, list[StressPath], dict[str, Any], str]:
    evaluate: Evaluator
    if portfolio is not None:
        loaded = load_portfolio(portfolio, rulebook)
        market = loaded.market
        ids = [a.id for a in loaded.accounts]
        pm = loaded.pm
        if pm is None:
            book = RiskBook.from_accounts(loaded.accounts, market)
            evaluate = book_evaluator(book, market, betas)
        else:
            evaluate = portfolio_evaluator(loaded, betas)
        name, source = loaded.rulebook.name, portfolio.name
        pm_name = None if pm is None else pm.name
        has_options = any(i.is_option for i in market.instruments.values())
    else:
        market = synthetic_market()
        params, columns = synthetic_book(market, synthetic or 0, seed=seed)
        book = RiskBook(params, columns)
        ids = book.account_ids
        evaluate = book_evaluator(book, market, betas)
        name, pm_name, source = "binance-usdm", None, f"synthetic book of {synthetic} accounts"
        has_options = False
    paths = select_paths(windows, grids, market, has_options)
    with progress("stressing") as bar:
        task = bar.add_task("paths", total=sum(p.steps for p in paths) * max(len(ids), 1))
        report, equity = run_paths(
            ids,
            evaluate,
            paths,
            rulebook=name,
            currency=market.currency,
            portfolio_margin=pm_name,
            betas=betas,
            progress=lambda k: bar.advance(task, k * len(ids)),
        )
    return report, paths, equity, source


def stress(
    portfolio: Annotated[
        Path | None, typer.Argument(help="Portfolio document (JSON); or use --synthetic.")
    ] = None,
    synthetic: Annotated[
        int | None, typer.Option("--synthetic", help="Stress a synthetic book of N accounts.")
    ] = None,
    window: Annotated[
        list[str] | None,
        typer.Option(
            "--window", help=f"Real window along its price path: {', '.join(WINDOWS)} or all."
        ),
    ] = None,
    grid: Annotated[
        list[str] | None,
        typer.Option("--grid", help=f"Hypothetical grid: {', '.join(GRIDS)} or all."),
    ] = None,
    beta: Annotated[
        list[str] | None,
        typer.Option("--beta", help="ASSET=BETA: the asset's log-return per BTC log-return."),
    ] = None,
    rulebook: RulebookOption = None,
    scheduler: Annotated[
        str | None, typer.Option("--scheduler", help="Dask scheduler address (tcp://host:port).")
    ] = None,
    shards: Annotated[int, typer.Option("--shards", help="Account shards.")] = 4,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the synthetic book.")] = 0,
    top: Annotated[int, typer.Option("--top", help="Accounts listed by worst loss.")] = 10,
    as_json: JsonOption = False,
    csv: CsvOption = None,
    parquet: ParquetOption = None,
    report: ReportOption = None,
    png: PngOption = None,
) -> None:
    """Stress PORTFOLIO (or a synthetic book) under uniform and historical price shocks, or
    with --window/--grid along real crash windows and hypothetical grids, per account."""
    outputs = Outputs(as_json, csv, parquet, report, png)
    with exit_on_bad_input(), needs_extra("distributed", "crossmargin stress"):
        if (portfolio is None) == (synthetic is None):
            raise CrossMarginError("portfolio", "give a PORTFOLIO file or --synthetic N")
        if shards < 1:
            raise CrossMarginError("shards", f"must be >= 1, got {shards}")
        if top < 0:
            raise CrossMarginError("top", f"must be >= 0, got {top}")
        if synthetic is not None and synthetic < 1:
            raise CrossMarginError("synthetic", f"must be >= 1, got {synthetic}")
        outputs.check()
        if window or grid:
            betas = parse_betas(beta or [])
            paths_report, paths, equity, source = _run_paths(
                portfolio, synthetic, seed, rulebook, window or [], grid or [], betas
            )
            emit(
                paths_report,
                outputs,
                rows=paths_report.outcomes,
                table=lambda: print_paths(paths_report, top),
                report=lambda: _paths_report(paths_report, paths, equity, source),
            )
            return
        scenarios = default_scenarios()
        left_out = 0
        if synthetic is not None:
            params, columns = synthetic_book(synthetic_market(), synthetic, seed=seed)
            result = run_stress(columns, params, scenarios, scheduler, shards)
        elif portfolio is not None:
            book = document_book(portfolio, rulebook)
            left_out = book.options_left_out
            result = run_stress(list(book.accounts), book.market, scenarios, scheduler, shards)
        shock = stress_report(result, scenarios, top, left_out)
        emit(
            shock,
            outputs,
            rows=shock.scenarios,
            table=lambda: print_stress(shock),
            report=lambda: _shock_report(shock),
        )
