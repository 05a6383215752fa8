"""Durable storage of the journal: SQLAlchemy 2 tables, SQLite (default) or PostgreSQL.

Tables (created by the Alembic migrations in ``migrations/``, run on open):

- ``commands``: one row per accepted command: idempotency key, digest of its body, and the
  range of events it wrote.
- ``events``: the append-only journal (``seq`` from 1, kind, canonical JSON body).
- ``postings``: the double-entry legs of each event, amounts in integer units of 1e-8.
- ``snapshots``: derived state at some ``seq``, to open quickly.

A command's rows are written in one transaction, so a crash keeps all of it or none of it.
SQLite runs in WAL mode with ``synchronous=FULL``: a committed command survives power loss.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from crossmargin.ledger.journal import Event, Posting
from crossmargin.maths.money import QUANTUM
from crossmargin.model.extras import needs_extra

with needs_extra("ledger", "crossmargin.ledger"):
    from alembic import command as alembic_command
    from alembic.config import Config
    from sqlalchemy import (
        BigInteger,
        Column,
        Engine,
        Integer,
        MetaData,
        String,
        Table,
        Text,
        create_engine,
        event,
        func,
        insert,
        select,
        text,
    )
    from sqlalchemy.engine import make_url

__all__ = ["Store", "StoredCommand", "metadata"]

metadata = MetaData()

commands = Table(
    "commands",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("first_seq", BigInteger, nullable=False),
    Column("last_seq", BigInteger, nullable=False),
)
events = Table(
    "events",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("kind", String(32), nullable=False),
    Column("body", Text, nullable=False),
)
postings = Table(
    "postings",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("leg", Integer, primary_key=True, autoincrement=False),
    Column("source", String(200), nullable=False),
    Column("target", String(200), nullable=False),
    Column("units", BigInteger, nullable=False),
)
snapshots = Table(
    "snapshots",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("state", Text, nullable=False),
)


@dataclass(frozen=True)
class StoredCommand:
    """An accepted command: its body digest and the events it wrote (inclusive range)."""

    key: str
    digest: str
    first_seq: int
    last_seq: int


def units(amount: Decimal) -> int:
    """``amount`` in integer units of 1e-8 (amounts are already quantized)."""
    return int(amount / QUANTUM)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _search_path(schema: str) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f'SET search_path TO "{schema}"')
        cursor.close()
        dbapi_connection.commit()

    return on_connect


def make_engine(url: str, schema: str | None = None) -> Engine:
    """An engine for ``url`` (``sqlite:///path`` or ``postgresql+psycopg://...``).

    ``schema`` (PostgreSQL only) puts every table in that schema, created if missing.
    """
    parsed = make_url(url)
    engine = create_engine(url)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    elif schema is not None:
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        engine.dispose()
        event.listen(engine, "connect", _search_path(schema))
    return engine


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (idempotent)."""
    config = Config()
    config.set_main_option("script_location", "crossmargin.ledger:migrations")
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        alembic_command.upgrade(config, "head")


class Store:
    """The journal's tables behind one engine; every write is one transaction."""

    def __init__(self, url: str, schema: str | None = None) -> None:
        self.engine = make_engine(url, schema)
        migrate(self.engine)

    def close(self) -> None:
        """Release the connections."""
        self.engine.dispose()

    def command(self, key: str) -> StoredCommand | None:
        """The accepted command with idempotency ``key``, if any."""
        with self.engine.connect() as conn:
            row = conn.execute(select(commands).where(commands.c.key == key)).first()
        return (
            None if row is None else StoredCommand(row.key, row.digest, row.first_seq, row.last_seq)
        )

    def append(
        self,
        key: str,
        digest: str,
        first_seq: int,
        written: Sequence[tuple[Event, Sequence[Posting]]],
    ) -> None:
        """Write one command with its events (numbered from ``first_seq``) atomically.

        Raises the driver's integrity error if the key or a sequence number already exists.
        """
        last = first_seq + len(written) - 1
        event_rows = [
            {"seq": first_seq + i, "kind": str(e.kind), "body": e.to_json()}
            for i, (e, _) in enumerate(written)
        ]
        posting_rows = [
            {
                "seq": first_seq + i,
                "leg": j,
                "source": p.source,
                "target": p.target,
                "units": units(p.amount),
            }
            for i, (_, legs) in enumerate(written)
            for j, p in enumerate(legs)
        ]
        with self.engine.begin() as conn:
            conn.execute(
                insert(commands),
                [{"key": key, "digest": digest, "first_seq": first_seq, "last_seq": last}],
            )
            if event_rows:
                conn.execute(insert(events), event_rows)
            if posting_rows:
                conn.execute(insert(postings), posting_rows)

    def events(self, after: int = 0, upto: int | None = None) -> Iterator[Event]:
        """Events with ``after < seq <= upto`` in order."""
        query = select(events.c.kind, events.c.body).where(events.c.seq > after)
        if upto is not None:
            query = query.where(events.c.seq <= upto)
        with self.engine.connect() as conn:
            for row in conn.execute(query.order_by(events.c.seq)):
                yield Event.from_json(row.kind, row.body)

    def last_seq(self) -> int:
        """Number of events in the journal."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.coalesce(func.max(events.c.seq), 0))).scalar_one())

    def save_snapshot(self, seq: int, state: str) -> None:
        """Store derived state as of ``seq`` (ignored if one exists)."""
        with self.engine.begin() as conn:
            if conn.execute(select(snapshots.c.seq).where(snapshots.c.seq == seq)).first() is None:
                conn.execute(insert(snapshots), [{"seq": seq, "state": state}])

    def snapshot(self, upto: int | None = None) -> tuple[int, str] | None:
        """The newest snapshot at or before ``upto`` (default: any)."""
        query = select(snapshots.c.seq, snapshots.c.state)
        if upto is not None:
            query = query.where(snapshots.c.seq <= upto)
        with self.engine.connect() as conn:
            row = conn.execute(query.order_by(snapshots.c.seq.desc()).limit(1)).first()
        return None if row is None else (int(row.seq), str(row.state))

    def account_sums(self) -> dict[str, Decimal]:
        """Balance of every ledger account summed from the stored postings (independent check)."""
        result: dict[str, Decimal] = {}
        with self.engine.connect() as conn:
            for column, sign in ((postings.c.target, 1), (postings.c.source, -1)):
                rows = conn.execute(select(column, func.sum(postings.c.units)).group_by(column))
                for name, total in rows:
                    result[name] = (
                        result.get(name, Decimal(0)) + sign * Decimal(int(total)) * QUANTUM
                    )
        return result
