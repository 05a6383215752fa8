"""Deribit PM for many accounts at once: one compiled instrument set and one risk array for
every instrument any account holds, sparse aggregation per (account, currency) row
(:func:`crossmargin.maths.scenarios.aggregate`, by row blocks), then the row-wise kernel.

This is the throughput path (re-margin a whole population after a price tick); it gives the
same numbers as :func:`crossmargin.pm.deribit.deribit_margin` account by account.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from crossmargin.maths.scenarios import aggregate, position_matrix, risk_array, to_numeraire
from crossmargin.model import Account, CrossMarginError, Market, OptionData
from crossmargin.pm.deribit import (
    PARAMS,
    DeribitMargins,
    deribit_rows,
    extended_columns,
    roll_moves,
)
from crossmargin.pm.greeks import contract_greeks
from crossmargin.pm.instruments import build_instruments
from crossmargin.pm.risk import check_ranges, vol_shock
from crossmargin.rules import PmRulebook

__all__ = ["PopulationMargins", "deribit_population"]


@dataclass(frozen=True)
class PopulationMargins:
    """Row ``a * len(currencies) + c`` is account ``a`` in currency ``c`` (coin amounts)."""

    accounts: tuple[str, ...]
    currencies: tuple[str, ...]
    margins: DeribitMargins

    def of(self, account: int, currency: str) -> int:
        """Row of one account and currency."""
        return account * len(self.currencies) + self.currencies.index(currency)


def deribit_population(
    accounts: Sequence[Account], market: Market, rulebook: PmRulebook, data: OptionData
) -> PopulationMargins:
    """Deribit PM (coin accounting) of every account's positions, per currency."""
    if rulebook.model != "deribit-pm" or not rulebook.coin_accounting:
        raise CrossMarginError(
            "rulebook.model", "the population path is for coin-settled deribit-pm"
        )
    col: dict[str, int] = {}
    inst_list: list[int] = []
    qty_list: list[float] = []
    counts: list[int] = []
    for a, account in enumerate(accounts):
        for i, position in enumerate(account.positions):
            if position.symbol not in col:
                if position.symbol not in market.instruments:
                    raise CrossMarginError(
                        f"accounts[{a}].positions[{i}].symbol",
                        f"unknown instrument {position.symbol!r}",
                    )
                col[position.symbol] = len(col)
            inst_list.append(col[position.symbol])
            qty_list.append(position.qty)
        counts.append(len(account.positions))
    if not col:
        raise CrossMarginError("accounts", "nothing to margin: no positions")
    instruments = [market.instrument(s) for s in col]
    currencies = tuple(sorted({i.underlying for i in instruments}))
    compiled = build_instruments(
        instruments, market, data, rulebook.scan_range, rulebook.sticky_delta
    )
    check_ranges(rulebook, compiled)
    arrays = compiled.arrays
    grid = rulebook.grid.arrays
    risk = to_numeraire(
        risk_array(arrays, grid, vol_shock(rulebook, compiled.underlyings)), arrays, grid, True
    )
    cur = np.array([currencies.index(u) for u in compiled.underlyings], dtype=np.intp)
    inst = np.array(inst_list, dtype=np.intp)
    owner = np.repeat(np.arange(len(accounts)), counts)
    rows = owner * len(currencies) + cur[inst]
    positions = position_matrix(
        rows, inst, qty_list, (len(accounts) * len(currencies), arrays.size)
    )
    unders = compiled.underlyings
    moves = roll_moves(
        arrays.t,
        [rulebook.param(u, "annualised_move_risk") for u in unders],
        [rulebook.param(u, "min_annualised_move") for u in unders],
    )
    delta = contract_greeks(arrays)["delta_coin"]
    sums = aggregate(positions, np.column_stack([risk, delta]))
    pnl, net_delta = sums[:, : grid.size], sums[:, -1]
    roll = aggregate(abs(positions), (np.abs(delta) * moves)[:, None])[:, 0]
    per_row = np.tile(np.arange(len(currencies)), len(accounts))
    params = {k: np.array([rulebook.param(u, k) for u in currencies])[per_row] for k in PARAMS}
    forward = np.array([market.asset_price(u) for u in currencies])[per_row]
    mm_factor = rulebook.number("mm_factor")
    margins = deribit_rows(
        pnl, extended_columns(rulebook), roll, net_delta, forward, params, mm_factor
    )
    return PopulationMargins(tuple(a.id for a in accounts), currencies, margins)
