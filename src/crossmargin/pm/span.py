"""CME SPAN: scan risk, intra-commodity spread charge, inter-commodity credit, short option
minimum and net option value (methodology 1.1-1.2).

Per combined commodity (here: one underlying) ``risk = max(scan + intra - inter, SOM)``; the
account total is ``max(sum(risk) - NOV, 0)`` with ``NOV = long option value - short option
value`` when the rulebook takes net option value; MM = total, IM = MM x ``im_ratio``.
Scenario P&L is > 0 for a gain; the scan risk is the largest loss over the 16 scenarios.
"""

from __future__ import annotations

import numpy as np

from crossmargin.maths.scenarios import worst
from crossmargin.maths.spreads import inter_spread_credit, intra_spread_charge
from crossmargin.pm.risk import AccountRisk, UnitMargin, option_values
from crossmargin.rules import PmRulebook

__all__ = ["span_margin"]


def span_margin(risk: AccountRisk, rulebook: PmRulebook) -> tuple[list[UnitMargin], float]:
    """Per-underlying SPAN risk (USD; MM = risk, IM = risk x im_ratio) and the account's net
    option value (long minus short option value; 0 unless the rulebook takes it).

    Composite deltas are the base deltas. Intra-commodity: each row's net delta joins its
    expiry's tier of the rulebook's ``[intra]`` schedule (undated rows the first tier) and the
    schedule's spreads match opposite tier deltas in priority order, each at its own charge per
    coin; an underlying without a schedule is one tier (no intra charge). SOM is
    ``short_option_minimum x forward`` per coin of short options.
    """
    g = risk.greeks
    a = risk.compiled.arrays
    scan, idx = worst(risk.unit_pnl)
    deltas = risk.unit_sum(g["delta_coin"])
    legs = {u: (float(deltas[k]), float(scan[k])) for k, u in enumerate(risk.units)}
    inter = inter_spread_credit(legs, rulebook.inter_spreads)
    nov = 0.0
    if rulebook.header.get("net_option_value", False):
        nov = float(np.sum(risk.qty * option_values(a)))
    ratio = rulebook.number("im_ratio")
    units = []
    for k, u in enumerate(risk.units):
        f = float(risk.unit_forward[k])
        rows = risk.rows_of(u)
        schedule = rulebook.intra_schedule(u)
        intra = 0.0
        if schedule is not None:
            tiers: dict[str, float] = {}
            for r in rows:
                tier = schedule.tier_of(float(a.t[r]) * 365.0).name
                tiers[tier] = tiers.get(tier, 0.0) + float(risk.qty[r] * g["delta_coin"][r])
            intra = intra_spread_charge(tiers, schedule.charges(f))
        short = a.is_option[rows] & (risk.qty[rows] < 0)
        short_coins = float(np.sum(-risk.qty[rows][short] * a.contract_size[rows][short]))
        som = rulebook.param(u, "short_option_minimum") * f * short_coins
        scanned = float(scan[k]) + intra - inter[u]
        total = max(scanned, som)
        add_ons = {
            "intra_spread": intra,
            "inter_spread_credit": -inter[u],
            "short_option_minimum": total - scanned,
        }
        units.append(
            UnitMargin(
                u,
                "USD",
                f,
                risk.unit_pnl[k],
                float(scan[k]),
                int(idx[k]),
                add_ons,
                total * ratio,
                total,
            )
        )
    return units, nov
