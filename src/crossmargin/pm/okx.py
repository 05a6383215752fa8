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

import numpy as np
from numpy.typing import ArrayLike, NDArray

from crossmargin.maths.scenarios import worst
from crossmargin.model import CrossMarginError, Kind
from crossmargin.pm.risk import AccountRisk, UnitMargin
from crossmargin.rules import PmRulebook

__all__ = ["PLUGGABLE", "Component", "banded", "okx_margin", "unit_charges", "unit_mmr"]

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
    a = risk.compiled.arrays
    kinds = np.array(rulebook.grid.kind)
    out = []
    for k, u in enumerate(risk.units):
        rows = risk.rows_of(u)
        pnl = risk.unit_pnl[k]
        delta = risk.qty[rows] * risk.greeks["delta_usd"][rows]
        years = np.where(a.t[rows] > 0, a.t[rows], 1.0 / 365.0)
        instruments = [risk.instruments[r] for r in rows]
        futures = np.array([i.kind in (Kind.FUTURE, Kind.PERPETUAL) for i in instruments])
        settles = [i.quote if i.inverse else i.settle for i in instruments]
        arrays = unit_charges(pnl, kinds, delta, years, futures, settles, u, rulebook)
        charges = {name: float(v) for name, v in arrays.items()}
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


def unit_charges(
    pnl: Float,
    kinds: NDArray[np.str_],
    delta: Float,
    years: Float,
    futures: NDArray[np.bool_],
    settles: Sequence[str],
    underlying: str,
    rulebook: PmRulebook,
) -> dict[str, Float]:
    """MR1, MR6, MR4, MR7 and MR9 of one risk unit (USD): ``pnl`` (..., scenarios) is its
    scenario P&L, ``kinds`` the grid kind of each scenario, ``delta`` (..., rows) its rows'
    USD deltas (qty x delta_usd), ``years`` their time to expiry (a day at least),
    ``futures`` the delta-one derivative rows and ``settles`` each row's settle currency (the
    quote of an inverse row); leading axes are accounts (or paths) margined at once."""
    mr7_floors, mr7_mult = _bands(rulebook, "mr7", "multipliers")
    mr9_floors, mr9_rates = _bands(rulebook, "mr9", "rates")
    mr7_rate = float(rulebook.tables["mr7"].get("notional_rate", 0.0))
    extreme = kinds == "extreme"
    mr6 = worst(pnl[..., extreme])[0] if extreme.any() else np.zeros(pnl.shape[:-1])
    basis = np.sum(np.where(futures, delta * years, 0.0), axis=-1)
    keys = sorted(set(settles))
    by_settle = np.stack(
        [np.sum(delta[..., np.array([s == key for s in settles])], axis=-1) for key in keys],
        axis=-1,
    )
    longs = np.sum(np.maximum(by_settle, 0.0), axis=-1)
    shorts = -np.sum(np.minimum(by_settle, 0.0), axis=-1)
    return {
        "MR1": worst(pnl[..., kinds == "standard"])[0],
        "MR6": mr6,
        "MR4": rulebook.param(underlying, "basis_move") * np.abs(basis),
        "MR7": banded(mr7_rate * np.sum(np.abs(delta), axis=-1), mr7_floors, mr7_mult),
        "MR9": banded(np.minimum(longs, shorts), mr9_floors, mr9_rates),
    }
