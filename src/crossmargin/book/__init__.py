"""The exchange-scale risk book: many accounts as columns, re-margined per tick.

``RiskBook`` keeps every account's equity, margins and status current under price ticks and
position edits; ``portfolio`` aggregates scenario risk arrays through a sparse exposure matrix.
"""

from crossmargin.book.portfolio import (
    PortfolioLoss,
    exposure_matrix,
    uniform_risk_array,
    worst_losses,
)
from crossmargin.book.riskbook import (
    AccountAnalysis,
    AccountRisk,
    BookColumns,
    BookParams,
    CrashDistances,
    Liquidations,
    PositionRisk,
    RiskBook,
    TickResult,
    Valuation,
)

__all__ = [
    "AccountAnalysis",
    "AccountRisk",
    "BookColumns",
    "BookParams",
    "CrashDistances",
    "Liquidations",
    "PortfolioLoss",
    "PositionRisk",
    "RiskBook",
    "TickResult",
    "Valuation",
    "exposure_matrix",
    "uniform_risk_array",
    "worst_losses",
]
