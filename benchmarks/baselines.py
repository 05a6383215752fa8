"""Baselines the risk book is measured against, written plainly here (no dependency on the
engines they imitate), each checked against the book's own figures before it is timed.

- :func:`per_position_margin`: the per-position style of nautilus_trader's margin accounts: one
  Python object per position, each asked in turn for its notional value and maintenance and
  initial margin (bracket rate times notional less the bracket's amount; notional over the
  bracket's leverage cap), summed into a dict per account.
- :func:`numpy_multipass`: plain numpy as a vectorised script would write it: one pass per
  quantity (notional, bracket, MM, IM, PnL) over the whole position columns, then one weighted
  ``bincount`` per account sum.

Both cover what the synthetic books hold (linear contracts settled in the account currency,
leverage at the bracket maximum, no fee to close), cross and isolated alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from crossmargin.book.riskbook import BookColumns, BookParams
from crossmargin.maths.tiers import AMOUNT, CAP, FLOOR, RATE

Float = NDArray[np.float64]


@dataclass
class Bracket:
    floor: float
    rate: float
    amount: float
    cap: float


@dataclass
class InstrumentSpec:
    contract_size: float
    mark: float
    brackets: list[Bracket]

    def notional_value(self, qty: float) -> float:
        return abs(qty) * self.contract_size * self.mark

    def bracket(self, notional: float) -> Bracket:
        chosen = self.brackets[0]
        for b in self.brackets:
            if notional >= b.floor:
                chosen = b
        return chosen


@dataclass
class PositionObject:
    account: int
    instrument: InstrumentSpec
    qty: float
    entry: float

    def margin_maint(self) -> float:
        notional = self.instrument.notional_value(self.qty)
        b = self.instrument.bracket(notional)
        return notional * b.rate - b.amount

    def margin_init(self) -> float:
        notional = self.instrument.notional_value(self.qty)
        return notional / self.instrument.bracket(notional).cap

    def unrealized_pnl(self) -> float:
        return self.qty * self.instrument.contract_size * (self.instrument.mark - self.entry)


def position_objects(params: BookParams, columns: BookColumns, rows: slice) -> list[PositionObject]:
    """One object per position of ``rows`` (the per-position baseline's input)."""
    specs = []
    for i in range(len(params.symbols)):
        table = params.schedule.brackets[i]
        brackets = [
            Bracket(
                float(table[FLOOR, k]),
                float(table[RATE, k]),
                float(table[AMOUNT, k]),
                float(table[CAP, k]),
            )
            for k in range(table.shape[1])
            if np.isfinite(table[FLOOR, k])
        ]
        specs.append(
            InstrumentSpec(float(params.contract_size[i]), float(params.mark[i]), brackets)
        )
    return [
        PositionObject(a, specs[i], q, e)
        for a, i, q, e in zip(
            columns.account[rows].tolist(),
            columns.instrument[rows].tolist(),
            columns.qty[rows].tolist(),
            columns.entry[rows].tolist(),
            strict=True,
        )
    ]


def per_position_margin(positions: list[PositionObject]) -> dict[int, list[float]]:
    """Per account: [PnL, IM, MM] summed over its positions, one position at a time."""
    sums: dict[int, list[float]] = {}
    for p in positions:
        row = sums.setdefault(p.account, [0.0, 0.0, 0.0])
        row[0] += p.unrealized_pnl()
        row[1] += p.margin_init()
        row[2] += p.margin_maint()
    return sums


def numpy_multipass(params: BookParams, columns: BookColumns) -> tuple[Float, ...]:
    """Per account, by numpy passes over the columns: cross PnL, IM, MM and isolated
    margin + PnL, IM, MM (the account records' position sums)."""
    inst = columns.instrument
    brackets = params.schedule.brackets
    notional = np.abs(columns.qty) * params.contract_size[inst] * params.mark[inst]
    bracket = np.zeros(len(inst), dtype=np.intp)
    for k in range(1, brackets.shape[2]):
        bracket += notional >= brackets[inst, FLOOR, k]
    mm = notional * brackets[inst, RATE, bracket] - brackets[inst, AMOUNT, bracket]
    im = notional / brackets[inst, CAP, bracket]
    pnl = columns.qty * params.contract_size[inst] * (params.mark[inst] - columns.entry)
    n = len(columns.account_ids)
    iso = columns.isolated
    out = []
    for weights, mask in ((pnl, ~iso), (im, ~iso), (mm, ~iso)):
        out.append(np.bincount(columns.account[mask], weights[mask], minlength=n))
    for weights, mask in ((pnl + columns.isolated_margin, iso), (im, iso), (mm, iso)):
        out.append(np.bincount(columns.account[mask], weights[mask], minlength=n))
    return tuple(out)
