"""OKX portfolio margin (venues.md 3.3): vectors O1 (MR7 scaling) and O2 (MR9 bands), the MMR
assembly, and MR1/MR4/MR6/MR7/MR9 on small portfolios computed by hand."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

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
from crossmargin.pm import PortfolioMarginReport, portfolio_margin_report
from crossmargin.pm.okx import banded, unit_mmr
from crossmargin.pm.standard_options import option_margin_rates
from crossmargin.rules import load_pm_rulebook

F = 60_000.0


def test_vector_o1_mr7_scaling() -> None:
    """MR = 40,000, raw MR7 = 30,000 on tiers 0-10k x1, 10-70k x2: MR7 = 50,000 = MMR."""
    mr7 = float(banded(30_000.0, [0.0, 10_000.0, 70_000.0, 170_000.0], [1.0, 2.0, 4.0, 6.0]))
    assert mr7 == pytest.approx(50_000.0)
    assert unit_mmr({"MR1": 40_000.0, "MR7": mr7}) == pytest.approx(50_000.0)


def test_vector_o2_mr9_bands() -> None:
    """A 10M hedge over 1M / 4M / 5M bands at 0.75% / 1.75% / 2.5%: MR9 = 202,500."""
    rules = load_pm_rulebook("okx-pm").tables["mr9"]
    assert float(banded(10_000_000.0, rules["bands"], rules["rates"])) == pytest.approx(202_500.0)


def test_mmr_assembly() -> None:
    """max(max(MR1, MR2, MR6) + MR3 + MR4 + MR5 + MR9, MR7)."""
    c = {"MR1": 10.0, "MR2": 12.0, "MR6": 11.0, "MR3": 1.0, "MR4": 2.0, "MR5": 3.0, "MR9": 4.0}
    assert unit_mmr(c) == 22.0
    assert unit_mmr({**c, "MR7": 30.0}) == 30.0


def perp(symbol: str, settle: str) -> Instrument:
    return Instrument(
        symbol,
        Kind.PERPETUAL,
        "BTC",
        settle,
        settle,
        MarginSchedule.size_scaled(0.02, 0.01),
        contract_size=0.01,
    )


def report(positions: list[Position]) -> PortfolioMarginReport:
    insts = [perp("BTC-USDT-SWAP", "USDT"), perp("BTC-USDC-SWAP", "USDC")]
    prices = {"BTC-USDT-SWAP": F, "BTC-USDC-SWAP": F, "USDT": 1.0, "USDC": 1.0}
    market = Market({i.symbol: i for i in insts}, prices, "USD")
    account = Account("o", {"USD": 100_000.0}, positions)
    data = OptionData(datetime(2026, 1, 1, tzinfo=UTC))
    return portfolio_margin_report(account, market, load_pm_rulebook("okx-pm"), data)


def test_naked_perp_mr1_binds() -> None:
    """Long 1 BTC: MR1 = 12% x F, MR6 = 24% x 0.35 x F, MR4 = 5% x F / 365, MR7 = 0.2% x F."""
    r = report([Position("BTC-USDT-SWAP", 100.0, F)])
    mr = r.units[0].add_ons
    assert mr["MR1"] == pytest.approx(0.12 * F)
    assert mr["MR6"] == pytest.approx(0.24 * 0.35 * F)
    assert mr["MR4"] == pytest.approx(0.05 * F / 365)
    assert mr["MR7"] == pytest.approx(0.002 * F)
    assert r.maintenance_margin == pytest.approx(0.12 * F + 0.05 * F / 365)
    assert r.initial_margin == pytest.approx(1.3 * r.maintenance_margin)


def test_cross_stablecoin_hedge_pays_mr9() -> None:
    """Long USDT perp vs short USDC perp: no price risk; MR9 = 0.75% of the 60k hedge."""
    r = report([Position("BTC-USDT-SWAP", 100.0, F), Position("BTC-USDC-SWAP", -100.0, F)])
    mr = r.units[0].add_ons
    assert mr["MR1"] == pytest.approx(0.0, abs=1e-9)
    assert mr["MR9"] == pytest.approx(0.0075 * F)
    assert r.maintenance_margin == pytest.approx(0.0075 * F)


def test_optional_capped_correlation_credit(tmp_path: Path) -> None:
    """Long 1 BTC vs short 20 ETH (ratio 1:20) at 30%, cap 1,000: the credit is the SPAN WPR
    credit on each unit's MMR x 1.3, scaled to the cap; none without ``[[inter_spreads]]``."""
    eth = Instrument(
        "ETH-USDT-SWAP",
        Kind.PERPETUAL,
        "ETH",
        "USDT",
        "USDT",
        MarginSchedule.size_scaled(0.02, 0.01),
        contract_size=0.1,
    )
    insts = [perp("BTC-USDT-SWAP", "USDT"), eth]
    prices = {"BTC-USDT-SWAP": F, "ETH-USDT-SWAP": 3_000.0, "USDT": 1.0}
    market = Market({i.symbol: i for i in insts}, prices, "USD")
    positions = [Position("BTC-USDT-SWAP", 100.0, F), Position("ETH-USDT-SWAP", -200.0, 3_000.0)]
    account = Account("x", {"USD": 1e6}, positions)
    data = OptionData(datetime(2026, 1, 1, tzinfo=UTC))
    plain = portfolio_margin_report(account, market, load_pm_rulebook("okx-pm"), data)
    text = (Path(__file__).parents[2] / "src/crossmargin/rules/pm/okx-pm.toml").read_text()
    path = tmp_path / "okx-corr.toml"
    extra = '[[inter_spreads]]\nlegs = ["BTC", "ETH"]\nratios = [1.0, 20.0]\nrate = 0.3\n'
    path.write_text(text + extra)
    credited = portfolio_margin_report(account, market, load_pm_rulebook(path), data)
    btc, eth_im = (u.initial_margin for u in plain.units)
    assert credited.initial_margin == pytest.approx(plain.initial_margin - 0.3 * (btc + eth_im))
    assert "correlation_credit" not in plain.add_ons
    path.write_text(text + extra + "cap = 1000.0\n")
    capped = portfolio_margin_report(account, market, load_pm_rulebook(path), data)
    assert capped.initial_margin == pytest.approx(plain.initial_margin - 1000.0)
    assert capped.add_ons["correlation_credit"] == pytest.approx(-1000.0)


def test_unpublished_components_plug_in() -> None:
    """An MR3 callable adds to the MMR (vega is outside the max); unknown names are refused."""
    insts = [perp("BTC-USDT-SWAP", "USDT")]
    market = Market({i.symbol: i for i in insts}, {"BTC-USDT-SWAP": F, "USDT": 1.0}, "USD")
    account = Account("p", {"USD": 1e5}, [Position("BTC-USDT-SWAP", 100.0, F)])
    data = OptionData(datetime(2026, 1, 1, tzinfo=UTC))
    rulebook = load_pm_rulebook("okx-pm")
    base = portfolio_margin_report(account, market, rulebook, data)
    plugged = portfolio_margin_report(account, market, rulebook, data, {"MR3": lambda r, u: 123.0})
    assert plugged.maintenance_margin == pytest.approx(base.maintenance_margin + 123.0)
    with pytest.raises(CrossMarginError) as err:
        portfolio_margin_report(account, market, rulebook, data, {"MR8": lambda r, u: 1.0})
    assert err.value.path == "plugins"


def test_okx_standard_short_option_rates() -> None:
    """venues.md 3.2: IMR = max(0.1, 0.15 - OTM/F) x factor + mark; MMR call = c x factor +
    mark, put = max(c, c x mark) x factor + mark (c = 0.05); no put IM floor at the MM."""
    params = load_pm_rulebook("okx-pm").standard_options
    im, mm = option_margin_rates(60_000.0, [63_000.0, 40_000.0], 0.02, [True, False], params)
    assert im.tolist() == pytest.approx([0.15 - 3_000 / 60_000 + 0.02, 0.10 + 0.02])
    assert mm.tolist() == pytest.approx([0.05 + 0.02, 0.05 + 0.02])
