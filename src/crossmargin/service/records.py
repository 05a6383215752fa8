"""The service's own tables in the ledger database: API keys and the alert record.

They sit beside the journal's tables (same database, same schema) but belong to the service,
so they are declared and created here, in one place, idempotently on start-up; the journal's
migrations stay the ledger's. Keys are stored as SHA-256 digests only (a key is 256 random
bits, so a fast hash is enough; what matters is that the database never holds the secret).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Engine,
    Index,
    MetaData,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

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


def _failed(error: SQLAlchemyError) -> CrossMarginError:
    reason = str(getattr(error, "orig", None) or error).strip().splitlines()
    return CrossMarginError("database", reason[0] if reason else type(error).__name__)


class Records:
    """The service tables behind the ledger's engine (created on first use)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        try:
            with engine.begin() as conn:
                metadata.create_all(conn, checkfirst=True)
        except SQLAlchemyError as error:
            raise _failed(error) from None

    def add_key(self, row: KeyRow) -> None:
        """Store a new key's digest."""
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(api_keys).values(**row.__dict__))
        except IntegrityError:
            raise CrossMarginError("key", "a key with this digest exists") from None
        except SQLAlchemyError as error:
            raise _failed(error) from None

    def key(self, digest: str) -> KeyRow | None:
        """The key stored under ``digest``, if any."""
        try:
            with self.engine.connect() as conn:
                found = conn.execute(select(api_keys).where(api_keys.c.digest == digest)).first()
        except SQLAlchemyError as error:
            raise _failed(error) from None
        return None if found is None else KeyRow(**found._mapping)

    def list_keys(self) -> list[KeyRow]:
        """Every stored key (digests and prefixes only), oldest first."""
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(select(api_keys).order_by(api_keys.c.created_at)).all()
        except SQLAlchemyError as error:
            raise _failed(error) from None
        return [KeyRow(**r._mapping) for r in rows]

    def revoke(self, prefix: str) -> int:
        """Revoke the keys whose prefix is ``prefix``; how many were revoked."""
        try:
            with self.engine.begin() as conn:
                done = conn.execute(
                    update(api_keys)
                    .where(api_keys.c.prefix == prefix, api_keys.c.revoked.is_(False))
                    .values(revoked=True)
                )
        except SQLAlchemyError as error:
            raise _failed(error) from None
        return int(done.rowcount)

    def record_alert(self, alert: Mapping[str, Any]) -> None:
        """Keep ``alert`` (JSON-ready, with a unique ``id`` and an ISO ``at``); a repeated id
        is kept once."""
        body = json.dumps(dict(alert), sort_keys=True, separators=(",", ":"))
        row = {
            "id": str(alert["id"]),
            "account_id": alert.get("account_id"),
            "at": str(alert["at"]),
            "body": body,
        }
        try:
            with self.engine.begin() as conn:
                exists = conn.execute(select(alerts.c.id).where(alerts.c.id == row["id"])).first()
                if exists is None:
                    conn.execute(insert(alerts).values(**row))
        except SQLAlchemyError as error:
            raise _failed(error) from None

    def alerts(self, account_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The newest ``limit`` alerts (of ``account_id`` if given), newest first."""
        query = select(alerts.c.body).order_by(alerts.c.at.desc(), alerts.c.id.desc())
        if account_id is not None:
            query = query.where(alerts.c.account_id == account_id)
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(query.limit(limit)).scalars().all()
        except SQLAlchemyError as error:
            raise _failed(error) from None
        return [json.loads(r) for r in rows]
