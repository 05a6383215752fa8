"""Simulation apart from the engine: seeded synthetic books, sharded stress runs on Dask,
stress paths (real windows, hypothetical grids), historical replays through the ledger, the
benchmark harness and offline reports."""

from crossmargin.lab.distributed import Scenario, StressResult, run_stress
from crossmargin.lab.synthetic import synthetic_book, synthetic_market

__all__ = ["Scenario", "StressResult", "run_stress", "synthetic_book", "synthetic_market"]
