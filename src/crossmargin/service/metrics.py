"""Prometheus metrics of one service instance (its own registry, served at ``/metrics``).

- ``crossmargin_prices_processed_total``: marks applied (one per symbol per tick);
- ``crossmargin_tick_to_alert_seconds``: from a tick's arrival to an alert's delivery
  (:meth:`Metrics.observe_tick_to_alert`, called by whatever delivers alerts);
- ``crossmargin_accounts``: accounts per status after the last tick;
- ``crossmargin_liquidations_total``: liquidation fills the ledger wrote;
- ``crossmargin_webhook_failures_total``: webhook deliveries that failed (incremented by the
  webhook sender);
- ``crossmargin_http_requests_total``: requests by route template and status code.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from crossmargin.maths.status import Status

__all__ = ["LATENCY_BUCKETS", "Metrics"]

LATENCY_BUCKETS = (
    0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0,
    5.0,
)  # fmt: skip
"""Histogram bounds of the tick-to-alert latency (seconds): fine around the 50 ms goal."""


class Metrics:
    """The service's counters, gauges and histograms in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.prices_processed = Counter(
            "crossmargin_prices_processed", "Mark prices applied.", registry=self.registry
        )
        self.tick_to_alert = Histogram(
            "crossmargin_tick_to_alert_seconds",
            "Time from a tick's arrival to an alert's delivery.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.accounts = Gauge(
            "crossmargin_accounts", "Accounts per status.", ["status"], registry=self.registry
        )
        self.liquidations = Counter(
            "crossmargin_liquidations", "Liquidation fills written.", registry=self.registry
        )
        self.webhook_failures = Counter(
            "crossmargin_webhook_failures",
            "Webhook deliveries that failed.",
            registry=self.registry,
        )
        self.requests = Counter(
            "crossmargin_http_requests",
            "HTTP requests by route and status code.",
            ["route", "code"],
            registry=self.registry,
        )

    def observe_tick_to_alert(self, received_ns: int, now_ns: int | None = None) -> float:
        """Record an alert delivered for the tick that arrived at ``received_ns``
        (``time.perf_counter_ns()``); the latency in seconds."""
        now = time.perf_counter_ns() if now_ns is None else now_ns
        seconds = max(now - received_ns, 0) / 1e9
        self.tick_to_alert.observe(seconds)
        return seconds

    def set_statuses(self, counts: Mapping[str, int]) -> None:
        """Accounts per status (statuses absent from ``counts`` read 0)."""
        for status in set(counts) | {s.label for s in Status}:
            self.accounts.labels(status=status).set(counts.get(status, 0))

    def render(self) -> bytes:
        """The registry in Prometheus' text format."""
        return generate_latest(self.registry)
