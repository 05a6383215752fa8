"""Portfolio margin at scale: per-account worst scenario loss through a sparse exposure matrix.

An (instrument x scenario) array holds the P&L of one contract of each instrument under each
scenario, in the account currency (computed elsewhere, e.g. by a risk-array engine, and
supplied per tick). Account P&L per scenario is ``E @ R`` with ``E`` the (account x
instrument) matrix of signed contracts, kept sparse (CSR) and multiplied in row chunks
(:func:`crossmargin.maths.scenarios.pnl_blocks`) so the dense (account x scenario) product
never exists whole.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import sparse

from crossmargin.book.riskbook import BookColumns, BookParams
from crossmargin.maths.pnl import unrealized_pnl
from crossmargin.maths.scenarios import ROW_BLOCK, pnl_blocks, position_matrix, worst
from crossmargin.model import CrossMarginError

__all__ = ["PortfolioLoss", "exposure_matrix", "uniform_risk_array", "worst_losses"]

Float = NDArray[np.float64]


@dataclass(frozen=True)
class PortfolioLoss:
    """Per account: worst-case loss over the scenarios (>= 0, account currency) and the index
    of the scenario that produces it."""

    loss: Float
    scenario: NDArray[np.intp]


def exposure_matrix(columns: BookColumns, instruments: int) -> sparse.csr_matrix:
    """(account x instrument) CSR matrix of signed contracts."""
    shape = (len(columns.account_ids), instruments)
    return position_matrix(columns.account, columns.instrument, columns.qty, shape)


def uniform_risk_array(params: BookParams, moves: ArrayLike) -> Float:
    """(instrument x scenario) P&L of one contract when every mark moves by ``moves``
    (fractions), valued with :func:`unrealized_pnl` and converted at today's settle price."""
    m = np.asarray(moves, dtype=np.float64)
    mark = params.mark[:, None]
    pnl = unrealized_pnl(
        1.0, params.contract_size[:, None], mark, mark * (1.0 + m), params.inverse[:, None]
    )
    risk: Float = np.nan_to_num(pnl * params.to_currency()[params.settle][:, None])
    return risk


def worst_losses(
    exposure: sparse.csr_matrix, risk: ArrayLike, chunk: int = ROW_BLOCK
) -> PortfolioLoss:
    """Worst loss and worst scenario of every account (rows of ``exposure``)."""
    r = np.ascontiguousarray(risk, dtype=np.float64)
    if r.ndim != 2 or r.shape[0] != exposure.shape[1] or r.shape[1] == 0:
        raise CrossMarginError(
            "risk", f"need an (instruments={exposure.shape[1]}, scenarios) array, got {r.shape}"
        )
    if not np.isfinite(r).all():
        raise CrossMarginError("risk", "must be finite")
    rows = exposure.shape[0]
    loss = np.empty(rows)
    scenario = np.empty(rows, dtype=np.intp)
    for block, pnl in pnl_blocks(exposure, r, chunk):
        loss[block], scenario[block] = worst(pnl)
    return PortfolioLoss(loss, scenario)
