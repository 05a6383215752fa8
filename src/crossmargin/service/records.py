"""The service's own tables in the ledger database: API keys and the alert record.

They sit beside the journal's tables (same database, same schema) but belong to the service,
so they are declared and created here, in one place, idempotently on start-up; the journal's
migrations stay the ledger's. Keys are stored as SHA-256 digests only (a key is 256 random
bits, so a fast hash is enough; what matters is that the database never holds the secret).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Index,
    MetaData,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)

from crossmargin.ledger.store import Store
from crossmargin.model import CrossMarginError

__all__ = ["KeyRow", "Records"]

metadata = MetaData()

api_keys = Table(
    "service_api_keys",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("prefix", String(16), nullable=False),
    Column("role", String(16), nullable=False),
    Column("account_id", String(64), nullable=True),
    Column("label", String(200), nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("revoked", Boolean, nullable=False, default=False),
)
alerts = Table(
    "service_alerts",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("account_id", String(64), nullable=True),
    Column("at", String(40), nullable=False),
    Column("body", Text, nullable=False),
)
Index("service_alerts_account", alerts.c.account_id, alerts.c.at)


@dataclass(frozen=True)
class KeyRow:
    """A stored key: its digest, the prefix shown to people, its role and account."""

    digest: str
    prefix: str
    role: str
    account_id: str | None
    label: str
    created_at: str
    revoked: bool


class Records:
    """The service tables in the ledger's database (created on first use)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        store.create_tables(metadata)

    def add_key(self, row: KeyRow) -> None:
        """Store a new key's digest."""
        with self.store.changing() as conn:
            taken = conn.execute(select(api_keys.c.digest).where(api_keys.c.digest == row.digest))
            if taken.first() is not None:
                raise CrossMarginError("key", "a key with this digest exists")
            conn.execute(insert(api_keys).values(**row.__dict__))

    def key(self, digest: str) -> KeyRow | None:
        """The key stored under ``digest``, if any."""
        with self.store.reading() as conn:
            found = conn.execute(select(api_keys).where(api_keys.c.digest == digest)).first()
        return None if found is None else KeyRow(**found._mapping)

    def list_keys(self) -> list[KeyRow]:
        """Every stored key (digests and prefixes only), oldest first."""
        with self.store.reading() as conn:
            rows = conn.execute(select(api_keys).order_by(api_keys.c.created_at)).all()
        return [KeyRow(**r._mapping) for r in rows]

    def revoke(self, prefix: str) -> int:
        """Revoke the keys whose prefix is ``prefix``; how many were revoked."""
        with self.store.changing() as conn:
            done = conn.execute(
                update(api_keys)
                .where(api_keys.c.prefix == prefix, api_keys.c.revoked.is_(False))
                .values(revoked=True)
            )
        return int(done.rowcount)

    def record_alerts(self, batch: Sequence[Mapping[str, Any]]) -> None:
        """Keep the alerts of ``batch`` (JSON-ready, each with a unique ``id`` and an ISO
        ``at``) in one transaction; an id already kept, or repeated, is kept once."""
        rows: dict[str, dict[str, Any]] = {}
        for alert in batch:
            rows.setdefault(
                str(alert["id"]),
                {
                    "id": str(alert["id"]),
                    "account_id": alert.get("account_id"),
                    "at": str(alert["at"]),
                    "body": json.dumps(dict(alert), sort_keys=True, separators=(",", ":")),
                },
            )
        if not rows:
            return
        with self.store.changing() as conn:
            kept = conn.execute(select(alerts.c.id).where(alerts.c.id.in_(list(rows)))).scalars()
            for done in kept.all():
                rows.pop(done, None)
            if rows:
                conn.execute(insert(alerts), list(rows.values()))

    def fired(self) -> dict[str, int]:
        """How many times each rule fired by the record: for each rule id, the largest ``n``
        of its alerts' ids ``{rule_id}-{n}`` (one pass over the ids, at start-up)."""
        counts: dict[str, int] = {}
        with self.store.reading() as conn:
            for alert_id in conn.execute(select(alerts.c.id)).scalars():
                rule_id, _, n = alert_id.rpartition("-")
                if rule_id and n.isdigit():
                    counts[rule_id] = max(counts.get(rule_id, 0), int(n))
        return counts

    def alerts(self, account_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The newest ``limit`` alerts (of ``account_id`` if given), newest first."""
        query = select(alerts.c.body).order_by(alerts.c.at.desc(), alerts.c.id.desc())
        if account_id is not None:
            query = query.where(alerts.c.account_id == account_id)
        with self.store.reading() as conn:
            rows = conn.execute(query.limit(limit)).scalars().all()
        return [json.loads(r) for r in rows]
