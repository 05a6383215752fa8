"""``crossmargin venues``: one trader's accounts on several venues, each margined by its own
venue; the hedges across venues and what each venue's liquidation leaves on the others."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from crossmargin.app.venues import MultiVenueResult, load_venues
from crossmargin.cli.render import (
    JsonOption,
    console,
    emit_json,
    exit_on_bad_input,
    fmt,
    pct,
    status_markup,
)

__all__ = ["print_venues", "venues"]

DocumentArgument = Annotated[Path, typer.Argument(help="Multi-venue document (JSON).")]


def print_venues(result: MultiVenueResult) -> None:
    """Accounts by venue, the cross-venue hedges, then each venue-liquidation scenario."""
    title = f"trader {result.trader}" if result.trader else "accounts"
    table = Table(title=title, show_header=True)
    for column in (
        "venue",
        "account",
        "rulebook",
        "equity",
        "IM",
        "MM",
        "ratio",
        "crash",
        "status",
    ):
        table.add_column(column, justify="left" if column in {"venue", "account"} else "right")
    for account in result.accounts:
        h = account.result.health
        table.add_row(
            account.venue,
            h.id,
            account.rulebook.name,
            f"{fmt(h.equity)} {h.currency}",
            fmt(h.initial_margin),
            fmt(h.maintenance_margin),
            pct(h.margin_ratio),
            pct(h.crash_distance),
            status_markup(h.status),
        )
    console.print(table)
    totals = ", ".join(f"{fmt(v)} {c}" for c, v in result.equity_by_currency.items())
    console.print(f"equity: {totals}; worst status {status_markup(result.worst_status)}")
    for hedge in result.hedges:
        console.print(
            f"hedge {hedge.underlying}: long {hedge.long_coins:g} on "
            f"{', '.join(hedge.long_venues)}, short {-hedge.short_coins:g} on "
            f"{', '.join(hedge.short_venues)}; hedged {hedge.hedged_coins:g}, "
            f"net {hedge.net_coins:+g}"
        )
    for case in result.liquidations:
        console.print(
            f"if {case.venue} liquidates {case.symbol} at {fmt(case.trigger_price)} "
            f"({pct(case.move)}): {case.underlying} exposure {case.net_coins_before:+g} -> "
            f"{case.net_coins_after:+g}"
        )
        for naked in case.naked_legs:
            console.print(
                f"  naked {naked.coins:+g} {naked.symbol} on {naked.venue}, "
                f"liq. price {fmt(naked.liquidation_price)}"
            )
        for left in case.survivors:
            console.print(
                f"  {left.venue} {left.account_id}: equity {fmt(left.equity)} {left.currency}, "
                f"MM {fmt(left.maintenance_margin)}, {status_markup(left.status)}, "
                f"crash {pct(left.crash_distance)}"
            )


def venues(document: DocumentArgument, as_json: JsonOption = False) -> None:
    """Accounts of one trader on several venues (each its own rulebook and collateral), the
    hedges that span venues and, for each venue, what its liquidation of a leg leaves naked."""
    with exit_on_bad_input():
        result = load_venues(document)
    if as_json:
        emit_json(result)
    else:
        print_venues(result)
