"""Alert rules and webhooks kept in the ledger database, so they survive a restart and every
service process on one database reads the same ones.

Two tables beside the service's own (``service_alert_rules``, ``service_webhooks``), created
idempotently on first use. A webhook's secret is stored as given: it signs every delivery, so
it must be readable (it never leaves the database in an answer or a log). Rule states (armed,
last firing) stay in each process.
"""

from __future__ import annotations

import time

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    MetaData,
    String,
    Table,
    delete,
    insert,
    select,
)

from crossmargin.ledger.store import Store
from crossmargin.service.alerts import AlertRule, RuleKind
from crossmargin.service.webhooks import Webhook

__all__ = ["AlertStore"]

metadata = MetaData()

rules = Table(
    "service_alert_rules",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("account_id", String(64), nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("threshold", Float, nullable=False),
    Column("band", Float, nullable=False),
    Column("cooldown_s", Float, nullable=False),
    Column("horizon_days", Float, nullable=False),
    Column("added_ns", BigInteger, nullable=False),
)
webhooks = Table(
    "service_webhooks",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("url", String(2000), nullable=False),
    Column("secret", String(200), nullable=False),
    Column("account_id", String(64), nullable=True),
    Column("added_ns", BigInteger, nullable=False),
)


class AlertStore:
    """Rules and webhooks in the ledger's database."""

    def __init__(self, store: Store) -> None:
        self.store = store
        store.create_tables(metadata)

    def add_rule(self, rule: AlertRule) -> None:
        """Keep a new rule."""
        row = {**rule.as_dict(), "added_ns": time.time_ns()}
        with self.store.changing() as conn:
            conn.execute(insert(rules).values(**row))

    def delete_rules(self, ids: list[str]) -> None:
        """Forget the rules ``ids``."""
        with self.store.changing() as conn:
            conn.execute(delete(rules).where(rules.c.id.in_(ids)))

    def rules(self) -> list[AlertRule]:
        """Every rule kept."""
        with self.store.reading() as conn:
            found = conn.execute(select(rules).order_by(rules.c.added_ns)).all()
        out = []
        for row in found:
            data = dict(row._mapping)
            data.pop("added_ns")
            out.append(AlertRule(**{**data, "kind": RuleKind(data["kind"])}))
        return out

    def add_webhook(self, hook: Webhook) -> None:
        """Keep a new webhook (with its secret)."""
        with self.store.changing() as conn:
            conn.execute(
                insert(webhooks).values(
                    id=hook.id,
                    url=hook.url,
                    secret=hook.secret,
                    account_id=hook.account_id,
                    added_ns=time.time_ns(),
                )
            )

    def delete_webhook(self, webhook_id: str) -> None:
        """Forget a webhook."""
        with self.store.changing() as conn:
            conn.execute(delete(webhooks).where(webhooks.c.id == webhook_id))

    def webhooks(self) -> list[Webhook]:
        """Every webhook kept."""
        with self.store.reading() as conn:
            found = conn.execute(select(webhooks).order_by(webhooks.c.added_ns)).all()
        return [Webhook(row.id, row.url, row.secret, row.account_id) for row in found]
