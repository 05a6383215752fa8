"""The population path (one risk array, sparse aggregation over all accounts) gives the same
Deribit PM numbers as the account-by-account path, on random BTC/ETH option portfolios."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from crossmargin.model import (
    Account,
    CrossMarginError,
    Instrument,
    Kind,
    MarginSchedule,
    Market,
    OptionData,
    Position,
)
from crossmargin.pm.deribit import deribit_margin
from crossmargin.pm.population import deribit_population
from crossmargin.pm.risk import account_risk
from crossmargin.rules import load_pm_rulebook

NOW = datetime(2026, 11, 25, 8, tzinfo=UTC)
PRICES = {"BTC": 60_000.0, "ETH": 3_000.0}


def market() -> tuple[Market, OptionData]:
    insts = []
    vols = {}
    for u, f in PRICES.items():
        insts.append(
            Instrument(
                f"{u}-PERPETUAL",
                Kind.PERPETUAL,
                u,
                "USD",
                u,
                MarginSchedule.size_scaled(0.02, 0.01),
                contract_size=10.0,
                inverse=True,
            )
        )
        for j, m in enumerate((0.8, 0.9, 1.0, 1.1, 1.25)):
            for kind in ("call", "put"):
                symbol = f"{u}-{j}-{kind}"
                insts.append(
                    Instrument(
                        symbol,
                        Kind.OPTION,
                        u,
                        "USD",
                        u,
                        inverse=True,
                        expiry="2027-01-29" if j % 2 else "2026-12-04",
                        strike=f * m,
                        option_type=kind,
                    )
                )
                vols[symbol] = 0.5 + 0.1 * j
    prices = {**PRICES, "BTC-PERPETUAL": 60_100.0, "ETH-PERPETUAL": 2_990.0}
    return Market({i.symbol: i for i in insts}, prices, "USD"), OptionData(NOW, vols=vols)


def test_population_matches_account_by_account() -> None:
    mkt, data = market()
    rulebook = load_pm_rulebook("deribit-pm")
    rng = np.random.default_rng(5)
    symbols = sorted(mkt.instruments)
    accounts = []
    for a in range(25):
        picks = rng.choice(len(symbols), rng.integers(1, 8), replace=False)
        positions = [Position(symbols[i], float(rng.normal(0, 3)) or 1.0, 1.0) for i in picks]
        accounts.append(Account(str(a), {"BTC": 1.0}, positions))
    pop = deribit_population(accounts, mkt, rulebook, data)
    for a, account in enumerate(accounts):
        for unit in deribit_margin(account_risk(account, mkt, rulebook, data), rulebook):
            row = pop.of(a, unit.underlying)
            assert pop.margins.worst_case[row] == pytest.approx(unit.worst_case, rel=1e-10)
            assert pop.margins.initial[row] == pytest.approx(unit.initial, rel=1e-10)
            assert pop.margins.maintenance[row] == pytest.approx(unit.maintenance, rel=1e-10)
            assert int(pop.margins.worst_scenario[row]) == unit.worst_scenario


def test_population_names_bad_positions() -> None:
    mkt, data = market()
    accounts = [Account("x", {}, [Position("NOPE", 1.0, 1.0)])]
    with pytest.raises(CrossMarginError) as err:
        deribit_population(accounts, mkt, load_pm_rulebook("deribit-pm"), data)
    assert err.value.path == "accounts[0].positions[0].symbol"
    with pytest.raises(CrossMarginError):
        deribit_population(accounts, mkt, load_pm_rulebook("okx-pm"), data)
