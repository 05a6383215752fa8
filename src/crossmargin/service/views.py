"""Engine results shaped for the API: scenario grids and the PM heat map as JSON-ready data."""

from __future__ import annotations

from typing import Any

import numpy as np

from crossmargin.app.scenarios import ScenarioPnl, account_scenarios
from crossmargin.io.results import to_data
from crossmargin.model import Account, Market

__all__ = ["pm_heatmap", "scenario_data"]


def scenario_data(view: ScenarioPnl) -> dict[str, Any]:
    """The rulebook's grid (moves scaled by the underlying's price range) with, when the view
    has an account, each scenario's P&L as revalued and as the model counts it, and the worst."""
    rulebook = view.rulebook
    rows = []
    for row in rulebook.grid.rows(rulebook.param(view.underlying, "price_range")):
        s = int(row["scenario"]) - 1
        item = {
            "scenario": int(row["scenario"]),
            "kind": str(row["kind"]),
            "price_move": float(row["price_move"]),
            "vol_move": float(row["vol_move"]),
            "weight": float(row["weight"]),
        }
        if view.pnl is not None:
            counted = view.pnl if view.counted is None else view.counted
            item["pnl"] = float(view.pnl[s])
            item["counted"] = float(counted[s])
        rows.append(item)
    out: dict[str, Any] = {
        "rulebook": rulebook.name,
        "title": rulebook.title,
        "as_of": str(rulebook.as_of),
        "source": rulebook.source,
        "underlying": view.underlying,
        "currency": view.currency,
        "worst": None if view.worst is None else int(view.worst) + 1,
        "scenarios": rows,
    }
    return to_data(out)  # type: ignore[no-any-return]


def pm_heatmap(account: Account, market: Market, rulebook: str) -> dict[str, Any]:
    """The account's counted scenario P&L as a heat map: ``price_moves`` across, ``vol_moves``
    down, ``cells[i][j]`` the P&L at vol move i and price move j (``null`` where the grid has no
    such scenario), for the standard scenarios; the whole grid in ``scenarios``."""
    view = account_scenarios(account, market, rulebook)
    data = scenario_data(view)
    standard = [r for r in data["scenarios"] if r["kind"] == "standard"]
    prices = sorted({r["price_move"] for r in standard})
    vols = sorted({r["vol_move"] for r in standard}, reverse=True)
    cells = np.full((len(vols), len(prices)), np.nan)
    for r in standard:
        cells[vols.index(r["vol_move"]), prices.index(r["price_move"])] = r["counted"]
    data.update(
        {
            "account_id": account.id,
            "price_moves": prices,
            "vol_moves": vols,
            "cells": to_data(cells),
        }
    )
    return data
