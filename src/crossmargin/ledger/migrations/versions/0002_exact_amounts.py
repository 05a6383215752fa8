"""Postings keep exact decimal amounts instead of 64-bit integer units of 1e-8.

Integer units overflowed above about 9.2e10; ``amount`` holds 30 integer digits and 8 decimals
(``NUMERIC(38, 8)`` on PostgreSQL, canonical decimal text on SQLite).

Revision ID: 0002
Revises: 0001
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

from crossmargin.ledger.store import Amount

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_UNIT = 100_000_000


def _schema() -> str | None:
    """The schema the store maps its tables to: Alembic's ALTER statements and lightweight
    tables do not go through the connection's schema translation."""
    mapping = op.get_bind().get_execution_options().get("schema_translate_map") or {}
    schema: str | None = mapping.get(None)
    return schema


def upgrade() -> None:
    """Add ``amount``, fill it from ``units`` exactly, drop ``units``."""
    with op.batch_alter_table("postings", schema=_schema()) as batch:
        batch.add_column(sa.Column("amount", Amount, nullable=True))
    table = sa.table(
        "postings",
        sa.column("units", sa.BigInteger),
        sa.column("amount", Amount),
        schema=_schema(),
    )
    units = table.c.units
    exact: sa.ColumnElement[Any]
    if op.get_bind().dialect.name == "sqlite":
        exact = sa.func.printf("%d.%08d", units / _UNIT, units % _UNIT)
    else:
        exact = sa.cast(units, sa.Numeric(38, 8)) / _UNIT
    op.execute(table.update().values(amount=exact))
    with op.batch_alter_table("postings", schema=_schema()) as batch:
        batch.alter_column("amount", existing_type=Amount, nullable=False)
        batch.drop_column("units")


def downgrade() -> None:
    """Back to integer units (amounts above the 64-bit range cannot go back)."""
    with op.batch_alter_table("postings", schema=_schema()) as batch:
        batch.add_column(sa.Column("units", sa.BigInteger, nullable=True))
    table = sa.table(
        "postings",
        sa.column("units", sa.BigInteger),
        sa.column("amount", Amount),
        schema=_schema(),
    )
    op.execute(table.update().values(units=sa.cast(table.c.amount * _UNIT, sa.BigInteger)))
    with op.batch_alter_table("postings", schema=_schema()) as batch:
        batch.alter_column("units", existing_type=sa.BigInteger, nullable=False)
        batch.drop_column("amount")
