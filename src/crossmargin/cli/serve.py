"""``crossmargin serve`` (the risk service over HTTP) and ``crossmargin keys`` (its API keys)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from crossmargin.cli.render import console, exit_on_bad_input
from crossmargin.model import CrossMarginError
from crossmargin.model.extras import needs_extra

__all__ = ["DEFAULT_DB", "keys", "serve"]

DEFAULT_DB = "sqlite:///.data/crossmargin.db"
"""The ledger database when ``--db`` is not given: a SQLite file in ``.data/``."""

DbOption = Annotated[
    str, typer.Option("--db", help="Ledger database URL (sqlite:///FILE or postgresql://...).")
]
VenueOption = Annotated[
    str, typer.Option(help="Liquidation rulebook of the ledger (binance, hyperliquid, dydx).")
]


def _prepare_sqlite(url: str) -> None:
    """Create the folder of a SQLite file if it is missing."""
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        folder = Path(url.removeprefix("sqlite:///")).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise CrossMarginError("--db", f"cannot create {folder}: {error.strerror}") from None


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=0, max=65535)] = 8000,
    db: DbOption = DEFAULT_DB,
    venue: VenueOption = "binance",
    demo: Annotated[
        bool,
        typer.Option(
            help="Demo accounts replaying March 2020 BTC; requests without a key act as the "
            "operator (local use only). Prints a fresh operator key."
        ),
    ] = False,
    replay: Annotated[
        Path | None, typer.Option(help="Candle file (time,open,high,low,close) to replay.")
    ] = None,
    speed: Annotated[
        float, typer.Option(help="Replay speed: seconds of history per second.", min=1e-9)
    ] = 28_800.0,
    nats: Annotated[str | None, typer.Option("--nats", help="NATS server URL.")] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    view_interval: Annotated[
        float,
        typer.Option(help="Least seconds between two rounds of risk views to subscribers."),
    ] = 0.1,
) -> None:
    """Run the risk service: REST API, WebSocket risk channels, metrics and the dashboard."""
    with exit_on_bad_input():
        with needs_extra("service", "crossmargin serve"):
            import uvicorn

            from crossmargin.service.app import create_app
            from crossmargin.service.logs import configure
            from crossmargin.service.settings import Settings
            from crossmargin.service.state import ServiceState
        if log_level not in ("debug", "info", "warning", "error"):
            raise CrossMarginError("--log-level", "must be debug, info, warning or error")
        _prepare_sqlite(db)
        settings = Settings(
            db_url=db,
            venue=venue,
            host=host,
            port=port,
            demo=demo,
            replay=None if replay is None else str(replay),
            speed=speed,
            nats_url=nats,
            log_level=log_level,
            view_interval_s=view_interval,
        )
        configure(log_level)
        state = ServiceState(settings)
        app = create_app(state=state)
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::") else host
    if demo:
        key = app.state.keys.create("operator", label="demo")
        print(f"operator key (shown once): {key}", file=sys.stderr)
    print(f"crossmargin service at http://{shown}:{port}/  (API docs: /docs)", flush=True)
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False, log_level=log_level)


keys = typer.Typer(help="API keys of the service (stored hashed in the ledger database).")


def _ring(db: str):  # type: ignore[no-untyped-def]
    with needs_extra("service", "crossmargin keys"):
        from crossmargin.ledger.store import Store
        from crossmargin.service.records import Records
        from crossmargin.service.security import KeyRing
        from crossmargin.service.settings import database_url
    _prepare_sqlite(db)
    return KeyRing(Records(Store(database_url(db))))


@keys.command("create")
def create_key(
    operator: Annotated[bool, typer.Option("--operator", help="A key that sees the book.")] = False,
    account: Annotated[str | None, typer.Option(help="The account an account key sees.")] = None,
    label: Annotated[str, typer.Option(help="A note kept with the key.")] = "",
    db: DbOption = DEFAULT_DB,
) -> None:
    """Make a key and print it (once: only its digest is stored)."""
    with exit_on_bad_input():
        if operator == (account is not None):
            raise CrossMarginError("--operator", "give either --operator or --account ID")
        role = "operator" if operator else "account"
        print(_ring(db).create(role, account, label))


@keys.command("list")
def list_keys(db: DbOption = DEFAULT_DB) -> None:
    """List the keys: prefix, role, account, label, created, revoked (never the keys)."""
    with exit_on_bad_input():
        rows = _ring(db).records.list_keys()
    table = Table(title="API keys")
    for column in ("prefix", "role", "account", "label", "created", "revoked"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r.prefix, r.role, r.account_id or "", r.label, r.created_at, "yes" if r.revoked else ""
        )
    console.print(table)


@keys.command("revoke")
def revoke_key(
    prefix: Annotated[str, typer.Argument(help="The key's first 11 characters (cm_...).")],
    db: DbOption = DEFAULT_DB,
) -> None:
    """Revoke the keys with PREFIX."""
    with exit_on_bad_input():
        done = _ring(db).revoke(prefix)
        if done == 0:
            raise CrossMarginError("prefix", f"no key {prefix!r}")
    print(f"revoked {done}")
