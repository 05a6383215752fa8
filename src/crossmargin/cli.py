"""Command line: ``crossmargin margin``, ``what-if``, ``scenarios``, ``stress``, ``bench``,
``replay``, ``rulebooks`` and ``demo``."""

from __future__ import annotations

import json
import sys
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from crossmargin.book.commands import bench, stress
from crossmargin.console import exit_on_bad_input
from crossmargin.io.document import Portfolio, load_portfolio
from crossmargin.io.report import account_report, evaluate_portfolio, portfolio_report
from crossmargin.ledger.commands_cli import replay
from crossmargin.model import CrossMarginError, MarginMode, Order
from crossmargin.orders import what_if
from crossmargin.pm.commands import scenarios
from crossmargin.pm.rules import bundled_pm_rulebooks, load_pm_rulebook
from crossmargin.rules import bundled_rulebooks
from crossmargin.rules.venue import bundled_venues, load_venue

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Cross-margin risk engine: account health, margin and liquidation prices.",
)
console = Console(width=None if sys.stdout.isatty() else 132)

RulebookOption = Annotated[
    str | None, typer.Option("--rulebook", "-r", help="Bundled rulebook name or TOML path.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def _fmt(value: float | None) -> str:
    """Amounts and prices: whole units from 1,000 up, cents below, 6 significant under 1."""
    if value is None:
        return "-"
    size = abs(value)
    if size >= 1_000:
        return f"{value:,.0f}"
    if size >= 1 or value == 0:
        return f"{value:,.2f}"
    return f"{value:.6g}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


_STATUS_STYLE = {
    "healthy": "green",
    "margin_call": "yellow",
    "liquidatable": "red",
    "bankrupt": "bold red",
}


def _print_tables(portfolio: Portfolio) -> None:
    book = portfolio.rulebook
    console.print(f"[bold]{book.title or book.name}[/] - rules as of {book.as_of} ({book.source})")
    for result in evaluate_portfolio(portfolio):
        report = account_report(result.health, result.withdrawable, result.portfolio_margin)
        ccy = report["currency"]
        style = _STATUS_STYLE[report["status"]]
        summary = Table(title=f"account {report['id']} ({ccy})", show_header=False)
        summary.add_column("field")
        summary.add_column("value", justify="right")
        rows = [
            ("wallet balance", _fmt(report["wallet_balance"])),
            ("collateral value", _fmt(report["collateral_value"])),
            ("unrealized PnL", _fmt(report["unrealized_pnl"])),
            ("equity", _fmt(report["equity"])),
            ("initial margin", _fmt(report["initial_margin"])),
            ("maintenance margin", _fmt(report["maintenance_margin"])),
            ("margin ratio", _pct(report["margin_ratio"])),
            ("available balance", _fmt(report["available_balance"])),
            ("effective leverage", _fmt(report["effective_leverage"]) + "x"),
            ("crash distance", _pct(report["crash_distance"])),
            ("status", f"[{style}]{report['status']}[/]"),
        ]
        for name, value in rows:
            summary.add_row(name, value)
        console.print(summary)
        positions = Table(title=f"positions of {report['id']}")
        for column in (
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
        ):
            positions.add_column(
                column, justify="left" if column in ("symbol", "mode") else "right"
            )
        for p in report["positions"]:
            positions.add_row(
                p["symbol"],
                p["margin_mode"],
                f"{p['qty']:g}",
                _fmt(p["entry_price"]),
                _fmt(p["mark_price"]),
                _fmt(p["notional"]),
                _fmt(p["unrealized_pnl"]),
                _fmt(p["initial_margin"]),
                _fmt(p["maintenance_margin"]),
                _fmt(p["liquidation_price"]),
                f"[{_STATUS_STYLE[p['status']]}]{p['status']}[/]",
            )
        console.print(positions)
        if result.portfolio_margin is not None:
            console.print(_pm_table(report["id"], result.portfolio_margin))


def _pm_table(account: str, pm: dict[str, Any]) -> Table:
    """Portfolio margin beside standard margin for one account."""
    table = Table(title=f"portfolio margin of {account} ({pm['model']}, {pm['currency']})")
    table.add_column("figure")
    table.add_column("value", justify="right")
    worst = pm["worst_scenario"]
    move = (
        f"{worst.get('underlying', '')} price {100 * worst['price_move']:+.1f}%, "
        f"vol {worst['vol_move']:+g}"
        if worst
        else "-"
    )
    rows = [
        ("worst case", _fmt(pm["worst_case"])),
        ("worst scenario", move),
        *((f"add-on: {name}", _fmt(amount)) for name, amount in pm["add_ons"].items()),
        ("PM initial margin", _fmt(pm["initial_margin"])),
        ("PM maintenance margin", _fmt(pm["maintenance_margin"])),
        ("standard initial margin", _fmt(pm["standard_initial_margin"])),
        ("standard maintenance margin", _fmt(pm["standard_maintenance_margin"])),
        ("saving (initial)", _fmt(pm["saving"])),
        ("option value", _fmt(pm["option_value"])),
        ("PM equity", _fmt(pm["equity"])),
        ("PM status", f"[{_STATUS_STYLE[pm['status']]}]{pm['status']}[/]"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def _show(path: Path) -> None:
    _print_tables(load_portfolio(path))


def _emit(payload: Any) -> None:
    print(json.dumps(payload, indent=2))


@app.command()
def margin(
    portfolio: Annotated[Path, typer.Argument(help="Portfolio document (JSON).")],
    rulebook: RulebookOption = None,
    as_json: JsonOption = False,
) -> None:
    """Account health, margins and liquidation prices of every account in PORTFOLIO."""

    with exit_on_bad_input():
        parsed = load_portfolio(portfolio, rulebook)
        if as_json:
            _emit(portfolio_report(parsed))
        else:
            _print_tables(parsed)


@app.command("what-if")
def what_if_command(
    portfolio: Annotated[Path, typer.Argument(help="Portfolio document (JSON).")],
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
        parsed = load_portfolio(portfolio, rulebook)
        chosen = next((a for a in parsed.accounts if a.id == account), None)
        if chosen is None:
            raise CrossMarginError("--account", f"no account {account!r} in the document")
        mode = MarginMode.ISOLATED if isolated else MarginMode.CROSS
        order = Order(symbol, qty, price, mode, leverage, isolated_margin, fee_rate)
        result = what_if(chosen, parsed.market, order)
        payload = {
            "accepted": result.accepted,
            "reason": result.reason,
            "before": account_report(result.before, {}),
            "after": account_report(result.after, {}),
        }
        if as_json:
            _emit(payload)
            return
        verdict = "[green]accepted[/]" if result.accepted else f"[red]rejected[/]: {result.reason}"
        console.print(f"order {qty:g} {symbol} on {account}: {verdict}")
        table = Table(show_header=True)
        for column in ("", "equity", "IM", "MM", "available", "status"):
            table.add_column(column, justify="right")
        for name, h in (("before", result.before), ("after", result.after)):
            table.add_row(
                name,
                _fmt(h.equity),
                _fmt(h.initial_margin),
                _fmt(h.maintenance_margin),
                _fmt(h.available_balance),
                h.status.label,
            )
        console.print(table)


@app.command()
def rulebooks(as_json: JsonOption = False) -> None:
    """List the bundled rulebooks (margin, portfolio margin, liquidation) with source and date."""
    with exit_on_bad_input():
        books = bundled_rulebooks()
        others = [
            ("portfolio_margin", pm.name, pm.model, pm.as_of, pm.source)
            for pm in map(load_pm_rulebook, bundled_pm_rulebooks())
        ] + [
            ("liquidation", v.name, v.venue, v.as_of, " ".join(v.sources))
            for v in map(load_venue, bundled_venues())
        ]
        if as_json:
            margin = [
                {
                    "kind": "margin",
                    "name": b.name,
                    "title": b.title,
                    "model": b.model,
                    "currency": b.currency,
                    "as_of": b.as_of,
                    "version": b.version,
                    "source": b.source,
                    "markets": sorted(b.instruments),
                }
                for b in books
            ]
            rest = [
                {"kind": kind, "name": name, "model": model, "as_of": as_of, "source": source}
                for kind, name, model, as_of, source in others
            ]
            _emit(margin + rest)
            return
        table = Table(title="margin rulebooks")
        for column in ("name", "model", "currency", "as of", "markets", "source"):
            table.add_column(column)
        for b in books:
            table.add_row(
                b.name, b.model, b.currency, b.as_of, ", ".join(sorted(b.instruments)), b.source
            )
        console.print(table)
        table = Table(title="portfolio-margin and liquidation rulebooks")
        for column in ("kind", "name", "model / venue", "as of", "source"):
            table.add_column(column)
        for row in others:
            table.add_row(*row)
        console.print(table)


@app.command()
def demo() -> None:
    """Show the bundled demo portfolios (Hyperliquid, Binance multi-asset, Deribit PM options)."""
    folder = resources.files("crossmargin.io") / "examples"
    for name in ("demo-hyperliquid.json", "demo-binance.json", "demo-deribit-pm.json"):
        console.rule(f"[bold]crossmargin margin {name}")
        with resources.as_file(folder / name) as path, exit_on_bad_input():
            _show(path)


app.command("scenarios")(scenarios)
app.command("replay")(replay)
app.command("stress")(stress)
app.command("bench")(bench)


def main() -> None:
    """Entry point of the ``crossmargin`` command."""
    app()
