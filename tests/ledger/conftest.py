"""Database fixtures: every ledger test runs on SQLite, and on PostgreSQL when configured.

PostgreSQL: set CROSSMARGIN_TEST_POSTGRES_URL (``postgresql://user@host:port/db``); each test
gets its own schema, dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

PG_ENV = "CROSSMARGIN_TEST_POSTGRES_URL"


@dataclass(frozen=True)
class Database:
    """Where a test's ledger lives."""

    url: str
    schema: str | None


def postgres_url() -> str | None:
    """The PostgreSQL URL from the environment, with the psycopg 3 driver."""
    raw = os.environ.get(PG_ENV)
    if not raw:
        return None
    return raw.replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A fresh, empty database of each backend."""
    if request.param == "sqlite":
        yield Database(f"sqlite:///{tmp_path / 'ledger.db'}", None)
        return
    url = postgres_url()
    if url is None:
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (e.g. postgresql://postgres@127.0.0.1/test)")
    schema = f"cm_test_{uuid.uuid4().hex[:12]}"
    yield Database(url, schema)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()
