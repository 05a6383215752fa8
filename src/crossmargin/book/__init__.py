"""The exchange-scale risk book: many accounts as columns, re-margined per tick.

``RiskBook`` keeps every account's equity, margins and status current under price ticks and
position edits; ``portfolio`` aggregates scenario risk arrays through a sparse exposure matrix;
``distributed`` runs sharded stress tests on Dask; ``synthetic`` makes seeded test books.
"""

from crossmargin.book.distributed import Scenario, StressResult, run_stress
from crossmargin.book.portfolio import (
    PortfolioLoss,
    exposure_matrix,
    uniform_risk_array,
    worst_losses,
)
from crossmargin.book.riskbook import (
    BookColumns,
    BookParams,
    CrashDistances,
    Liquidations,
    RiskBook,
    TickResult,
    Valuation,
)
from crossmargin.book.synthetic import synthetic_book, synthetic_market

__all__ = [
    "BookColumns",
    "BookParams",
    "CrashDistances",
    "Liquidations",
    "PortfolioLoss",
    "RiskBook",
    "Scenario",
    "StressResult",
    "TickResult",
    "Valuation",
    "exposure_matrix",
    "run_stress",
    "synthetic_book",
    "synthetic_market",
    "uniform_risk_array",
    "worst_losses",
]
