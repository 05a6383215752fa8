"""``crossmargin margin``, ``what-if``, ``rulebooks`` and ``demo``: tables, or with ``--json``
the same result objects serialised."""

from __future__ import annotations

import gc
import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from crossmargin.app.portfolio import (
    AccountResult,
    OptionLeg,
    Portfolio,
    PortfolioResult,
    RulebookRef,
    check_finite,
    evaluate_account,
    evaluate_portfolio,
    load_portfolio,
)
from crossmargin.app.rulebooks import RulebookEntry, rulebook_catalog
from crossmargin.app.whatif import check_order
from crossmargin.cli.render import (
    JsonOption,
    console,
    emit_json,
    exit_on_bad_input,
    fmt,
    pct,
    status_markup,
)
from crossmargin.health import AccountHealth, evaluate_many
from crossmargin.io.results import to_json_bytes
from crossmargin.model import Account, CrossMarginError, MarginMode, Order
from crossmargin.orders import WhatIf, max_withdrawable
from crossmargin.pm import PortfolioMarginReport

__all__ = ["LARGE_DOCUMENT", "demo", "evaluate_large", "margin", "rulebooks", "what_if"]

LARGE_DOCUMENT = 1_000
"""Accounts from which ``margin`` takes the batched path (the risk book's many-account use of
the account-risk kernel) and shows its progress on a terminal."""
_BATCH = 5_000

RulebookOption = Annotated[
    str | None, typer.Option("--rulebook", "-r", help="Bundled rulebook name or TOML path.")
]
PortfolioArgument = Annotated[Path, typer.Argument(help="Portfolio document (JSON).")]

_POSITION_COLUMNS = (
    "symbol",
    "mode",
    "qty",
    "entry",
    "mark",
    "notional",
    "uPnL",
    "IM",
    "MM",
    "liq. price",
    "status",
)


_OPTION_COLUMNS = (
    "symbol",
    "type",
    "strike",
    "expiry",
    "qty",
    "vol",
    "value",
    "delta",
    "gamma",
    "vega",
    "theta",
)


def _leverage(value: float) -> str:
    """Gross notional / equity; ``n/a`` where the equity is not positive (never negative)."""
    return f"{fmt(value)}x" if math.isfinite(value) and value >= 0 else "n/a"


def collateral_table(h: AccountHealth) -> Table:
    """Each asset held: balance, price, the share of its value that counts, collateral value."""
    table = Table(title=f"collateral of {h.id} ({h.currency})")
    for column in ("asset", "balance", "price", "ratio", "value"):
        table.add_column(column, justify="left" if column == "asset" else "right")
    for c in h.collateral:
        table.add_row(c.asset, fmt(c.balance), fmt(c.price), pct(c.ratio), fmt(c.value))
    return table


def option_table(account: str, legs: tuple[OptionLeg, ...]) -> Table:
    """Option legs with value (settle asset) and Greeks: delta in coins, vega and theta in USD."""
    units = "value in settle asset, delta in coins, vega and theta in USD"
    table = Table(title=f"options of {account} ({units})")
    for column in _OPTION_COLUMNS:
        table.add_column(column, justify="left" if column in ("symbol", "type") else "right")
    for leg in legs:
        table.add_row(
            leg.symbol,
            leg.option_type,
            fmt(leg.strike),
            leg.expiry,
            f"{leg.qty:g}",
            pct(leg.vol),
            fmt(leg.value),
            fmt(leg.delta),
            fmt(leg.gamma),
            fmt(leg.vega),
            fmt(leg.theta),
        )
    return table


def account_tables(result: AccountResult) -> list[Table]:
    """Summary, collateral, positions and (under portfolio margin) the option legs and the PM
    figures of one account."""
    h = result.health
    pm = "" if result.portfolio_margin is None else " (PM)"
    summary = Table(title=f"account {h.id} ({h.currency})", show_header=False)
    summary.add_column("field")
    summary.add_column("value", justify="right")
    for name, value in (
        ("wallet balance", fmt(h.wallet_balance)),
        ("collateral value", fmt(h.collateral_value)),
        ("unrealized PnL", fmt(h.unrealized_pnl)),
        ("equity", fmt(h.equity)),
        (f"initial margin{pm}", fmt(h.initial_margin)),
        (f"maintenance margin{pm}", fmt(h.maintenance_margin)),
        ("margin ratio", pct(h.margin_ratio)),
        ("available balance", fmt(h.available_balance)),
        ("effective leverage", _leverage(h.effective_leverage)),
        ("crash distance", "not computed (PM)" if pm else pct(h.crash_distance)),
        ("status", status_markup(h.status)),
    ):
        summary.add_row(name, value)
    positions = Table(title=f"positions of {h.id}")
    for column in _POSITION_COLUMNS:
        positions.add_column(column, justify="left" if column in ("symbol", "mode") else "right")
    over_limit = any(p.over_limit for p in h.positions)
    if over_limit:
        positions.add_column("limit")
    for p in h.positions:
        limit = ("[red]exceeded[/]" if p.over_limit else "",) if over_limit else ()
        positions.add_row(
            p.symbol,
            p.margin_mode,
            f"{p.qty:g}",
            fmt(p.entry_price),
            fmt(p.mark_price),
            fmt(p.notional),
            fmt(p.unrealized_pnl),
            fmt(p.initial_margin),
            fmt(p.maintenance_margin),
            fmt(p.liquidation_price),
            status_markup(p.status),
            *limit,
        )
    tables = [summary, collateral_table(h), positions]
    if result.option_legs:
        tables.append(option_table(h.id, result.option_legs))
    if result.portfolio_margin is not None:
        tables.append(pm_table(h.id, result.portfolio_margin))
    return tables


def pm_table(account: str, pm: PortfolioMarginReport) -> Table:
    """Portfolio margin beside standard margin for one account (account currency)."""
    table = Table(title=f"portfolio margin of {account} ({pm.model}, {pm.currency})")
    table.add_column("figure")
    table.add_column("value", justify="right")
    worst = pm.worst_scenario
    move = f"{worst.underlying} price {100 * worst.price_move:+.1f}%, vol {worst.vol_move:+g}"
    for name, value in (
        ("worst case", fmt(pm.worst_case)),
        ("worst scenario", move),
        *((f"add-on: {name}", fmt(amount)) for name, amount in pm.add_ons.items()),
        ("PM initial margin", fmt(pm.initial_margin)),
        ("PM maintenance margin", fmt(pm.maintenance_margin)),
        ("standard initial margin", fmt(pm.standard_initial_margin)),
        ("standard maintenance margin", fmt(pm.standard_maintenance_margin)),
        ("saving (initial)", fmt(pm.saving)),
        ("option value", fmt(pm.option_value)),
        ("PM equity", fmt(pm.equity)),
        ("PM status", status_markup(pm.status)),
    ):
        table.add_row(name, value)
    return table


def print_portfolio(result: PortfolioResult) -> None:
    """The rulebook line, then every account's tables."""
    rulebook = result.rulebook
    console.print(f"[bold]{rulebook.title}[/] - rules as of {rulebook.as_of} ({rulebook.source})")
    for account in result.accounts:
        for table in account_tables(account):
            console.print(table)


def _batchable(account: Account, portfolio: Portfolio) -> bool:
    """Whether the batched path covers the account as ``evaluate_account`` would: no portfolio
    margin and only derivatives with a margin schedule (no spot, no options)."""
    instruments = portfolio.market.instruments
    return portfolio.pm is None and all(
        p.symbol in instruments
        and instruments[p.symbol].is_derivative
        and instruments[p.symbol].margin is not None
        for p in account.positions
    )


def evaluate_large(portfolio: Portfolio, progress: Progress | None = None) -> PortfolioResult:
    """``evaluate_portfolio`` for a large document: the same result, the accounts margined
    in batches of 5,000 through :func:`~crossmargin.health.evaluate_many` (accounts it does
    not cover one by one), reporting each batch to ``progress``."""
    market = portfolio.market
    accounts = portfolio.accounts
    task = None if progress is None else progress.add_task("margin", total=len(accounts))
    results: list[AccountResult] = []
    for lo in range(0, len(accounts), _BATCH):
        part = accounts[lo : lo + _BATCH]
        batched = [_batchable(a, portfolio) for a in part]
        with np.errstate(over="ignore", invalid="ignore"):
            chosen = [a for a, b in zip(part, batched, strict=True) if b]
            healths = iter(evaluate_many(chosen, market))
        for i, (account, in_batch) in enumerate(zip(part, batched, strict=True), start=lo):
            try:
                if in_batch:
                    health = next(healths)
                    check_finite(account, health)
                    results.append(AccountResult(health, max_withdrawable(account, market, health)))
                else:
                    results.append(evaluate_account(portfolio, account))
            except CrossMarginError as error:
                located = error.path.startswith(("positions", "balances"))
                raise (error.at(f"accounts[{i}]") if located else error) from None
        if progress is not None and task is not None:
            progress.advance(task, len(part))
    ref = portfolio.rulebook
    return PortfolioResult(
        RulebookRef(ref.name, ref.title or ref.name, ref.source, ref.as_of), tuple(results)
    )


def _evaluate_with_progress(portfolio: Portfolio) -> PortfolioResult:
    """A large document through :func:`evaluate_large`, with a progress bar on stderr when it
    is a terminal."""
    terminal = Console(stderr=True)
    with Progress(
        TextColumn("[bold]margining accounts"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=terminal,
        disable=not terminal.is_terminal,
        transient=True,
    ) as progress:
        return evaluate_large(portfolio, progress)


@contextmanager
def _without_cycle_collector() -> Iterator[None]:
    """The cyclic garbage collector paused: a large document's accounts, results and their
    JSON data are millions of acyclic objects, which its passes would scan again and again
    (reference counting still frees them)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def margin(
    portfolio: PortfolioArgument,
    rulebook: RulebookOption = None,
    as_json: JsonOption = False,
) -> None:
    """Account health, margins and liquidation prices of every account in PORTFOLIO (large
    documents in batches, with a progress bar on a terminal, and their JSON unindented)."""
    with _without_cycle_collector():
        with exit_on_bad_input():
            loaded = load_portfolio(portfolio, rulebook)
            if len(loaded.accounts) >= LARGE_DOCUMENT:
                result = _evaluate_with_progress(loaded)
            else:
                result = evaluate_portfolio(loaded)
            del loaded
        if as_json and len(result.accounts) >= LARGE_DOCUMENT:
            sys.stdout.flush()
            sys.stdout.buffer.write(to_json_bytes(result))
            sys.stdout.buffer.write(b"\n")
            sys.stdout.flush()
        elif as_json:
            emit_json(result)
        else:
            print_portfolio(result)


def print_what_if(result: WhatIf, order: Order, account: str) -> None:
    """The verdict, then equity, margins, available balance and status before and after."""
    verdict = "[green]accepted[/]" if result.accepted else f"[red]rejected[/]: {result.reason}"
    console.print(f"order {order.qty:g} {order.symbol} on {account}: {verdict}")
    table = Table(show_header=True)
    for column in ("", "equity", "IM", "MM", "available", "status"):
        table.add_column(column, justify="right")
    for name, h in (("before", result.before), ("after", result.after)):
        table.add_row(
            name,
            fmt(h.equity),
            fmt(h.initial_margin),
            fmt(h.maintenance_margin),
            fmt(h.available_balance),
            h.status.label,
        )
    console.print(table)


def what_if(
    portfolio: PortfolioArgument,
    account: Annotated[str, typer.Option(help="Account id.")],
    symbol: Annotated[str, typer.Option(help="Instrument to trade.")],
    qty: Annotated[float, typer.Option(help="Signed quantity in contracts (> 0 buys).")],
    price: Annotated[float | None, typer.Option(help="Fill price (default: mark).")] = None,
    leverage: Annotated[float | None, typer.Option(help="Chosen leverage.")] = None,
    isolated: Annotated[bool, typer.Option(help="Open in isolated margin mode.")] = False,
    isolated_margin: Annotated[float | None, typer.Option(help="Isolated margin to post.")] = None,
    fee_rate: Annotated[float, typer.Option(help="Fee rate on the fill notional.")] = 0.0,
    rulebook: RulebookOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check an order before sending it: accepted or rejected, and the account after it."""
    with exit_on_bad_input():
        mode = MarginMode.ISOLATED if isolated else MarginMode.CROSS
        order = Order(symbol, qty, price, mode, leverage, isolated_margin, fee_rate)
        result = check_order(load_portfolio(portfolio, rulebook), account, order)
    if as_json:
        emit_json(result)
    else:
        print_what_if(result, order, account)


def print_rulebooks(entries: tuple[RulebookEntry, ...]) -> None:
    """Margin rulebooks in one table, portfolio-margin and liquidation rulebooks in another."""
    table = Table(title="margin rulebooks")
    for column in ("name", "model", "currency", "as of", "markets", "source"):
        table.add_column(column)
    others = Table(title="portfolio-margin and liquidation rulebooks")
    for column in ("kind", "name", "model / venue", "as of", "source"):
        others.add_column(column)
    for e in entries:
        if e.kind == "margin":
            markets = ", ".join(e.markets or ())
            table.add_row(e.name, e.model, e.currency or "", e.as_of, markets, e.source)
        else:
            others.add_row(e.kind, e.name, e.model, e.as_of, e.source)
    console.print(table)
    console.print(others)


def rulebooks(as_json: JsonOption = False) -> None:
    """List the bundled rulebooks (margin, portfolio margin, liquidation) with source and date."""
    with exit_on_bad_input():
        entries = rulebook_catalog()
    if as_json:
        emit_json(entries)
    else:
        print_rulebooks(entries)


DEMOS = ("demo-hyperliquid.json", "demo-binance.json", "demo-deribit-pm.json")


def demo() -> None:
    """Show the three bundled demo documents: Hyperliquid, Binance (multi-asset and a pasted
    ccxt position) and Deribit portfolio margin with options."""
    folder = resources.files("crossmargin.io") / "examples"
    for name in DEMOS:
        console.rule(f"[bold]crossmargin margin {name}")
        with resources.as_file(folder / name) as path, exit_on_bad_input():
            print_portfolio(evaluate_portfolio(load_portfolio(path)))
