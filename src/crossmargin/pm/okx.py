"""OKX portfolio margin per risk unit (underlying), in USD (venues.md 3.3).

    MMR = max( max(MR1, MR2, MR6) + MR3 + MR4 + MR5 + MR9, MR7 ),   IMR = imr_factor x MMR

MR1 is the largest loss over the spot-shock grid, MR6 over the extreme moves; MR4 (basis) is
``basis_move x |sum(qty x delta_usd x max(t, 1 day))|`` over delta-one rows; MR7 is a raw
minimum charge ``notional_rate x gross USD delta notional`` scaled band by band like a tax
schedule; MR9 charges the USD delta hedged across settle currencies (e.g. USDT- against
USDC-margined) band by band. MR2, MR3 and MR5 are unpublished and plug in as callables of the
unit's :class:`~crossmargin.pm.risk.AccountRisk` and underlying (0 when absent).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from crossmargin.maths.scenarios import worst
from crossmargin.model import CrossMarginError, Kind
from crossmargin.pm.risk import AccountRisk, UnitMargin
from crossmargin.rules import PmRulebook

__all__ = [
    "PLUGGABLE",
    "Component",
    "OkxLayout",
    "banded",
    "okx_charges",
    "okx_layout",
    "okx_margin",
    "unit_mmr",
]

Float = NDArray[np.float64]
Component = Callable[[AccountRisk, str], float]
PLUGGABLE = frozenset({"MR2", "MR3", "MR5"})


def banded(amount: ArrayLike, floors: Sequence[float], rates: Sequence[float]) -> Float:
    """Sum over bands of ``rate_k x`` the part of ``amount`` inside ``[floor_k, floor_k+1)``."""
    lo = np.asarray(floors, dtype=np.float64)
    hi = np.append(lo[1:], np.inf)
    x = np.asarray(amount, dtype=np.float64)[..., None]
    inside = np.clip(x, lo, hi) - lo
    return np.asarray(np.sum(inside * np.asarray(rates, dtype=np.float64), axis=-1))


def unit_mmr(charges: Mapping[str, ArrayLike]) -> Float:
    """The unit's MMR from its MR components (missing ones count 0; each a number or an array
    of one value per account)."""
    c = {
        k: np.asarray(charges.get(k, 0.0), dtype=np.float64)
        for k in ("MR1", "MR2", "MR3", "MR4", "MR5", "MR6", "MR7", "MR9")
    }
    core = np.maximum(np.maximum(c["MR1"], c["MR2"]), c["MR6"]) + c["MR3"] + c["MR4"] + c["MR5"]
    return np.maximum(core + c["MR9"], c["MR7"])


def _bands(rulebook: PmRulebook, name: str, rates: str) -> tuple[list[float], list[float]]:
    table = rulebook.tables.get(name)
    if not isinstance(table, dict) or "bands" not in table or rates not in table:
        raise CrossMarginError(name, f"needs bands and {rates}")
    return list(table["bands"]), list(table[rates])


def okx_margin(
    risk: AccountRisk, rulebook: PmRulebook, plugins: Mapping[str, Component] | None = None
) -> list[UnitMargin]:
    """One :class:`UnitMargin` per risk unit in USD; add-ons are the MR components."""
    unknown = set(plugins or {}) - PLUGGABLE
    if unknown:
        raise CrossMarginError(
            "plugins", f"only {sorted(PLUGGABLE)} plug in, got {sorted(unknown)}"
        )
    layout = okx_layout(risk)
    charges_of = okx_charges(
        layout, risk.unit_pnl, risk.qty * risk.greeks["delta_usd"], rulebook, risk.units
    )
    out = []
    for k, u in enumerate(risk.units):
        pnl = risk.unit_pnl[k]
        charges = {name: float(v[k]) for name, v in charges_of.items()}
        for name, plugin in (plugins or {}).items():
            charges[name] = float(plugin(risk, u))
        mmr = float(unit_mmr(charges))
        loss, idx = worst(pnl)
        out.append(
            UnitMargin(
                u,
                "USD",
                float(risk.unit_forward[k]),
                pnl,
                float(loss),
                int(idx),
                charges,
                rulebook.number("imr_factor") * mmr,
                mmr,
            )
        )
    return out


@dataclass(frozen=True)
class OkxLayout:
    """How an account's rows aggregate into its risk units: ``unit`` (rows, units) and
    ``pair`` (rows, unit-settle pairs) are 0/1 membership, ``pair_unit`` (pairs, units) the
    unit of each pair, ``basis_years`` each row's time to expiry in years (a day at least) on
    delta-one derivative rows, 0 elsewhere (MR4)."""

    unit: Float
    pair: Float
    pair_unit: Float
    basis_years: Float


def okx_layout(risk: AccountRisk) -> OkxLayout:
    """The rows' layout; a row's settle currency is its quote when inverse."""
    a = risk.compiled.arrays
    n, units = len(risk.qty), len(risk.units)
    unit = np.zeros((n, units))
    unit[np.arange(n), risk.unit_of_row] = 1.0
    keys = [
        (int(k), i.quote if i.inverse else i.settle)
        for k, i in zip(risk.unit_of_row, risk.instruments, strict=True)
    ]
    pairs = sorted(set(keys))
    pair = np.zeros((n, len(pairs)))
    pair[np.arange(n), [pairs.index(key) for key in keys]] = 1.0
    pair_unit = np.zeros((len(pairs), units))
    pair_unit[np.arange(len(pairs)), [k for k, _ in pairs]] = 1.0
    futures = np.array([i.kind in (Kind.FUTURE, Kind.PERPETUAL) for i in risk.instruments])
    years = np.where(a.t > 0, a.t, 1.0 / 365.0)
    return OkxLayout(unit, pair, pair_unit, np.where(futures, years, 0.0))


def okx_charges(
    layout: OkxLayout,
    pnl: Float,
    delta: Float,
    rulebook: PmRulebook,
    units: Sequence[str],
) -> dict[str, Float]:
    """MR1, MR6, MR4, MR7 and MR9 (USD, ..., units) of the risk units ``units``: ``pnl``
    (..., units, scenarios) is their scenario P&L, ``delta`` (..., rows) the rows' USD deltas
    (qty x delta_usd); leading axes are accounts (or price paths) margined at once."""
    mr7_floors, mr7_mult = _bands(rulebook, "mr7", "multipliers")
    mr9_floors, mr9_rates = _bands(rulebook, "mr9", "rates")
    mr7_rate = float(rulebook.tables["mr7"].get("notional_rate", 0.0))
    kinds = np.array(rulebook.grid.kind)
    extreme = kinds == "extreme"
    mr6 = worst(pnl[..., extreme])[0] if extreme.any() else np.zeros(pnl.shape[:-1])
    basis_move = np.array([rulebook.param(u, "basis_move") for u in units])
    by_pair = delta @ layout.pair
    longs = np.maximum(by_pair, 0.0) @ layout.pair_unit
    shorts = -np.minimum(by_pair, 0.0) @ layout.pair_unit
    return {
        "MR1": worst(pnl[..., kinds == "standard"])[0],
        "MR6": mr6,
        "MR4": basis_move * np.abs((delta * layout.basis_years) @ layout.unit),
        "MR7": banded(mr7_rate * (np.abs(delta) @ layout.unit), mr7_floors, mr7_mult),
        "MR9": banded(np.minimum(longs, shorts), mr9_floors, mr9_rates),
    }
