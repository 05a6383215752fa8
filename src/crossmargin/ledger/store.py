"""Durable storage of the journal: SQLAlchemy 2 tables, SQLite (default) or PostgreSQL.

Tables (created by the Alembic migrations in ``migrations/``, run on open):

- ``commands``: one row per accepted command: idempotency key, digest of its body, and the
  range of events it wrote.
- ``events``: the append-only journal (``seq`` from 1, kind, canonical JSON body).
- ``postings``: the double-entry legs of each event, amounts exact (:class:`Amount`).
- ``snapshots``: derived state at some ``seq``, to open quickly.

Writes happen in :meth:`Store.writing` transactions, one writer at a time: SQLite takes its
write lock at ``BEGIN IMMEDIATE``, PostgreSQL a transaction-scoped advisory lock of the schema.
A writer therefore reads the newest committed journal before it decides, and a crash keeps all
of a transaction or none of it: the schema itself is created in one transaction (SQLite's DDL is
transactional once the driver stops committing on its own). SQLite runs in WAL mode with
``synchronous=FULL``: a committed transaction survives power loss.

Every driver error leaves this module as a :class:`~crossmargin.model.CrossMarginError`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from crossmargin.ledger.journal import Event, Posting
from crossmargin.model import CrossMarginError
from crossmargin.model.extras import needs_extra

with needs_extra("ledger", "crossmargin.ledger"):
    from alembic import command as alembic_command
    from alembic.config import Config
    from sqlalchemy import (
        BigInteger,
        Column,
        Connection,
        Dialect,
        Integer,
        MetaData,
        Numeric,
        String,
        Table,
        Text,
        bindparam,
        create_engine,
        event,
        func,
        insert,
        select,
    )
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError
    from sqlalchemy.schema import CreateSchema
    from sqlalchemy.types import TypeDecorator, TypeEngine

__all__ = [
    "MAX_ID_LENGTH",
    "Amount",
    "Store",
    "StoredCommand",
    "check_schema",
    "metadata",
]

MAX_ID_LENGTH = 200
"""Longest ledger account name and idempotency key the tables hold (characters)."""

_SCHEMA = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


class Amount(TypeDecorator[Decimal]):
    """An exact decimal amount with 8 decimal places and up to 30 integer digits.

    PostgreSQL: ``NUMERIC(38, 8)``. SQLite has no exact decimal type, so the canonical decimal
    text is stored instead (summed in Python by :meth:`Store.account_sums`).
    """

    impl = Numeric(38, 8)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(48))
        return dialect.type_descriptor(Numeric(38, 8, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return format(value, "f") if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


metadata = MetaData()

commands = Table(
    "commands",
    metadata,
    Column("key", String(MAX_ID_LENGTH), primary_key=True),
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
    Column("source", String(MAX_ID_LENGTH), nullable=False),
    Column("target", String(MAX_ID_LENGTH), nullable=False),
    Column("amount", Amount, nullable=False),
)
snapshots = Table(
    "snapshots",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("state", Text, nullable=False),
)

# Every write transaction looks up its keys and catches up on other writers' events: these
# statements are built once, not per transaction.
_ACCEPTED = select(commands).where(commands.c.key.in_(bindparam("keys", expanding=True)))
_EVENTS_AFTER = (
    select(events.c.kind, events.c.body)
    .where(events.c.seq > bindparam("after"))
    .order_by(events.c.seq)
)
_EVENTS_BETWEEN = _EVENTS_AFTER.where(events.c.seq <= bindparam("upto"))


@dataclass(frozen=True)
class StoredCommand:
    """An accepted command: its body digest and the events it wrote (inclusive range)."""

    key: str
    digest: str
    first_seq: int
    last_seq: int


@dataclass(frozen=True)
class Written:
    """The rows of one accepted command, ready to insert."""

    key: str
    digest: str
    first_seq: int
    events: Sequence[tuple[str, str]]
    postings: Sequence[Sequence[Posting]]


def check_schema(schema: str | None) -> str | None:
    """``schema`` if it is a plain SQL identifier (letters, digits, ``_``; at most 63)."""
    if schema is None:
        return None
    if not isinstance(schema, str) or _SCHEMA.fullmatch(schema) is None:
        raise CrossMarginError(
            "schema", f"must be a letter or _ then letters, digits or _ (<= 63), got {schema!r}"
        )
    return schema


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    """Transactions begin here, not in the driver: DDL joins them, and a writer takes the
    write lock at its first statement."""
    write = conn.get_execution_options().get("crossmargin_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _error(error: SQLAlchemyError) -> CrossMarginError:
    reason = str(getattr(error, "orig", None) or error).strip().splitlines()
    return CrossMarginError("database", reason[0] if reason else type(error).__name__)


class Store:
    """The journal's tables behind one engine (``sqlite:///path`` or
    ``postgresql+psycopg://...``); ``schema`` (PostgreSQL only) holds every table, created if
    missing."""

    def __init__(self, url: str, schema: str | None = None) -> None:
        schema = check_schema(schema)
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise CrossMarginError("url", f"not a database URL: {url!r}") from None
        self.sqlite = parsed.get_backend_name() == "sqlite"
        self.schema = None if self.sqlite else schema
        options = {} if self.schema is None else {"schema_translate_map": {None: self.schema}}
        try:
            engine = create_engine(parsed)
        except (ArgumentError, ImportError) as error:
            raise CrossMarginError("url", str(error).splitlines()[0]) from None
        if self.sqlite:
            event.listen(engine, "connect", _sqlite_connect)
            event.listen(engine, "begin", _sqlite_begin)
        self.engine = engine.execution_options(**options)
        self._lock = int.from_bytes(
            hashlib.sha256(f"crossmargin:{self.schema or 'public'}".encode()).digest()[:8],
            "big",
            signed=True,
        )
        self._migrate()

    def close(self) -> None:
        """Release the connections."""
        self.engine.dispose()

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """One write transaction holding the writers' lock; committed on a clean exit."""
        try:
            with (
                self.engine.connect().execution_options(crossmargin_write=True) as conn,
                conn.begin(),
            ):
                if not self.sqlite:
                    conn.execute(select(func.pg_advisory_xact_lock(self._lock)))
                yield conn
        except SQLAlchemyError as error:
            raise _error(error) from None

    @contextmanager
    def changing(self) -> Iterator[Connection]:
        """A plain transaction, without the writers' lock, for tables kept beside the journal
        (committed on a clean exit; driver errors become :class:`CrossMarginError`)."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as error:
            raise _error(error) from None

    def create_tables(self, metadata: MetaData) -> None:
        """Create ``metadata``'s tables where missing (idempotent)."""
        with self.changing() as conn:
            metadata.create_all(conn, checkfirst=True)

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection for reads; driver errors become :class:`CrossMarginError`."""
        try:
            with self.engine.connect() as conn:
                yield conn
        except SQLAlchemyError as error:
            raise _error(error) from None

    def _migrate(self) -> None:
        """Create the schema if needed and bring it to the newest Alembic revision, all in
        one locked transaction (idempotent; concurrent first opens wait for each other)."""
        config = Config()
        config.set_main_option("script_location", "crossmargin.ledger:migrations")
        with self.writing() as conn:
            if self.schema is not None:
                conn.execute(CreateSchema(self.schema, if_not_exists=True))
            config.attributes["connection"] = conn
            config.attributes["schema"] = self.schema
            alembic_command.upgrade(config, "head")

    def commands(self, conn: Connection, keys: Sequence[str]) -> dict[str, StoredCommand]:
        """The accepted commands among ``keys``."""
        if not keys:
            return {}
        rows = conn.execute(_ACCEPTED, {"keys": sorted(set(keys))})
        return {r.key: StoredCommand(r.key, r.digest, r.first_seq, r.last_seq) for r in rows}

    def command(self, key: str) -> StoredCommand | None:
        """The accepted command with idempotency ``key``, if any."""
        with self.reading() as conn:
            return self.commands(conn, [key]).get(key)

    def append(self, conn: Connection, written: Sequence[Written]) -> None:
        """Insert the rows of accepted commands (inside :meth:`writing`)."""
        command_rows: list[Mapping[str, object]] = []
        event_rows: list[Mapping[str, object]] = []
        posting_rows: list[Mapping[str, object]] = []
        for w in written:
            command_rows.append(
                {
                    "key": w.key,
                    "digest": w.digest,
                    "first_seq": w.first_seq,
                    "last_seq": w.first_seq + len(w.events) - 1,
                }
            )
            for i, ((kind, body), legs) in enumerate(zip(w.events, w.postings, strict=True)):
                seq = w.first_seq + i
                event_rows.append({"seq": seq, "kind": kind, "body": body})
                posting_rows.extend(
                    {
                        "seq": seq,
                        "leg": j,
                        "source": p.source,
                        "target": p.target,
                        "amount": p.amount,
                    }
                    for j, p in enumerate(legs)
                )
        if command_rows:
            conn.execute(insert(commands), command_rows)
        if event_rows:
            conn.execute(insert(events), event_rows)
        if posting_rows:
            conn.execute(insert(postings), posting_rows)

    def events_on(
        self, conn: Connection, after: int = 0, upto: int | None = None
    ) -> Iterator[Event]:
        """Events with ``after < seq <= upto`` in order, read on ``conn``."""
        if upto is None:
            rows = conn.execute(_EVENTS_AFTER, {"after": after})
        else:
            rows = conn.execute(_EVENTS_BETWEEN, {"after": after, "upto": upto})
        for row in rows:
            yield Event.from_json(row.kind, row.body)

    def events(self, after: int = 0, upto: int | None = None) -> Iterator[Event]:
        """Events with ``after < seq <= upto`` in order."""
        with self.reading() as conn:
            yield from self.events_on(conn, after, upto)

    def last_seq(self, conn: Connection | None = None) -> int:
        """Number of events in the journal."""
        query = select(func.coalesce(func.max(events.c.seq), 0))
        if conn is not None:
            return int(conn.execute(query).scalar_one())
        with self.reading() as fresh:
            return int(fresh.execute(query).scalar_one())

    def save_snapshot(self, seq: int, state: str) -> None:
        """Store derived state as of ``seq`` (ignored if one exists)."""
        with self.writing() as conn:
            if conn.execute(select(snapshots.c.seq).where(snapshots.c.seq == seq)).first() is None:
                conn.execute(insert(snapshots), [{"seq": seq, "state": state}])

    def snapshot(self, upto: int | None = None) -> tuple[int, str] | None:
        """The newest snapshot at or before ``upto`` (default: any)."""
        query = select(snapshots.c.seq, snapshots.c.state)
        if upto is not None:
            query = query.where(snapshots.c.seq <= upto)
        with self.reading() as conn:
            row = conn.execute(query.order_by(snapshots.c.seq.desc()).limit(1)).first()
        return None if row is None else (int(row.seq), str(row.state))

    def account_sums(self) -> dict[str, Decimal]:
        """Balance of every ledger account summed from the stored postings (independent check)."""
        result: dict[str, Decimal] = {}
        query = select(postings.c.source, postings.c.target, postings.c.amount)
        with self.reading() as conn:
            for source, target, amount in conn.execute(query):
                result[source] = result.get(source, Decimal(0)) - amount
                result[target] = result.get(target, Decimal(0)) + amount
        return result
