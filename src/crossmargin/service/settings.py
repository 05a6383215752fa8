"""The service's settings: one frozen value built by ``crossmargin serve`` (or a test)."""

from __future__ import annotations

from dataclasses import dataclass

from crossmargin.model import CrossMarginError

__all__ = ["Settings", "database_url"]


def database_url(url: str) -> str:
    """``url`` with PostgreSQL's driver named: ``postgresql://`` means psycopg 3 here."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url.removeprefix(plain)
    return url


@dataclass(frozen=True)
class Settings:
    """How the service runs.

    ``db_url`` is the ledger database (SQLite file or ``postgresql://``); ``venue`` the
    ledger's liquidation rulebook. ``demo`` seeds demo accounts, replays the bundled BTC history
    and lets requests without a key act as the operator (for a local look only: the demo binds
    to loopback). ``max_body_bytes`` bounds a request body (413 above it); a key may make
    ``rate_per_second`` requests a second on average with bursts of ``rate_burst`` (429 beyond).
    ``replay`` names a candle file (time, open, high, low, close) to replay on start-up at
    ``speed`` seconds of history per second (the demo replays the bundled March 2020 candles at
    that speed). ``nats_url`` (optional) names the broker the bus uses; without it the
    in-process hub is the only queue. ``view_interval_s`` is the least time between two rounds
    of risk views to subscribers (each round shows the latest state; alerts never wait for it).
    ``gc_interval_s`` is how often the cyclic collector's full pass runs, between ticks
    (:mod:`crossmargin.service.collector`).
    """

    db_url: str = "sqlite:///.data/crossmargin.db"
    venue: str = "binance"
    host: str = "127.0.0.1"
    port: int = 8000
    demo: bool = False
    max_body_bytes: int = 1_048_576
    rate_per_second: float = 50.0
    rate_burst: int = 200
    replay: str | None = None
    speed: float = 28_800.0
    nats_url: str | None = None
    log_level: str = "info"
    view_interval_s: float = 0.1
    gc_interval_s: float = 300.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "db_url", database_url(self.db_url))
        if not 0 <= self.port <= 65_535:
            raise CrossMarginError("port", f"must be 0-65535, got {self.port}")
        if not (self.speed > 0 and self.speed < float("inf")):
            raise CrossMarginError("speed", f"must be > 0, got {self.speed}")
        if self.max_body_bytes < 1:
            raise CrossMarginError("max_body_bytes", f"must be >= 1, got {self.max_body_bytes}")
        if not self.rate_per_second > 0:
            raise CrossMarginError("rate_per_second", f"must be > 0, got {self.rate_per_second}")
        if not 0 <= self.view_interval_s <= 60:
            raise CrossMarginError("view_interval_s", f"must be 0-60, got {self.view_interval_s}")
        if not 1 <= self.gc_interval_s <= 86_400:
            raise CrossMarginError("gc_interval_s", f"must be 1-86400, got {self.gc_interval_s}")
        if self.rate_burst < 1:
            raise CrossMarginError("rate_burst", f"must be >= 1, got {self.rate_burst}")
