"""Bad input names its field; rulebooks load with sources and dates; options validate."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from crossmargin.io.document import parse_options
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
from crossmargin.pm.report import PortfolioMarginReport, portfolio_margin_report
from crossmargin.rules import bundled_pm_rulebooks, load_pm_rulebook
from crossmargin.rules.grid import grid_from_table
from crossmargin.rules.portfolio import intra_schedule_from_table

NOW = datetime(2026, 11, 25, 8, tzinfo=UTC)


def option(**kw: object) -> Instrument:
    fields: dict[str, object] = {
        "symbol": "BTC-C",
        "kind": Kind.OPTION,
        "underlying": "BTC",
        "quote": "USD",
        "settle": "BTC",
        "inverse": True,
        "expiry": "2026-12-25",
        "strike": 70_000.0,
        "option_type": "call",
    }
    fields.update(kw)
    return Instrument(**fields)  # type: ignore[arg-type]


def margin(inst: Instrument, vols: dict[str, float]) -> PortfolioMarginReport:
    market = Market({inst.symbol: inst}, {"BTC": 60_000.0}, "USD")
    account = Account("a", {"BTC": 1.0}, [Position(inst.symbol, -1.0, 0.01)])
    return portfolio_margin_report(
        account, market, load_pm_rulebook("deribit-pm"), OptionData(NOW, vols=vols)
    )


@pytest.mark.parametrize(
    ("kw", "path"),
    [
        ({"strike": 0.0}, "strike"),
        ({"strike": -5.0}, "strike"),
        ({"strike": None}, "strike"),
        ({"option_type": "straddle"}, "option_type"),
        ({"expiry": None}, "expiry"),
    ],
)
def test_option_fields_are_checked(kw: dict[str, object], path: str) -> None:
    with pytest.raises(CrossMarginError) as err:
        option(**kw)
    assert err.value.path == path


def test_non_options_carry_no_strike() -> None:
    with pytest.raises(CrossMarginError) as err:
        Instrument(
            "P",
            Kind.PERPETUAL,
            "BTC",
            "USD",
            "USD",
            MarginSchedule.size_scaled(0.02, 0.01),
            strike=1.0,
        )
    assert err.value.path == "strike"


def test_expired_option_names_its_expiry() -> None:
    with pytest.raises(CrossMarginError) as err:
        margin(option(expiry="2026-11-01"), {"BTC-C": 0.6})
    assert err.value.path == "instruments.BTC-C.expiry"
    assert "expired" in err.value.reason


@pytest.mark.parametrize("vol", [0.0, -0.2])
def test_non_positive_vol(vol: float) -> None:
    with pytest.raises(CrossMarginError) as err:
        OptionData(NOW, vols={"BTC-C": vol})
    assert err.value.path == "vols.BTC-C"


def test_missing_vol() -> None:
    with pytest.raises(CrossMarginError) as err:
        margin(option(), {})
    assert err.value.path == "vols.BTC-C"


@pytest.mark.parametrize(
    ("table", "path"),
    [
        ({"price_moves": [], "vol_moves": [0.0]}, "grid.price_moves"),
        ({"price_moves": [0.1], "vol_moves": []}, "grid.vol_moves"),
        ({"price_steps": 0}, "grid.price_steps"),
        ({"price_moves": [0.1], "extended": {"moves": [-1.0]}}, "grid.extended.moves[0]"),
        ({"price_moves": [0.1], "extended": {"cap_delta_one": 1}}, "grid.extended.cap_delta_one"),
    ],
)
def test_empty_or_bad_grid(table: dict[str, object], path: str) -> None:
    with pytest.raises(CrossMarginError) as err:
        grid_from_table(table)
    assert err.value.path == path


@pytest.mark.parametrize(
    ("spread", "path"),
    [
        ('legs = ["BTC", "BTC"]', "inter_spreads[0].legs"),
        ('legs = ["BTC", "ETH"]\nratios = [1.0]', "inter_spreads[0].ratios"),
        ('legs = ["BTC", "ETH"]\nratios = [0.0, 1.0]', "inter_spreads[0].ratios[0]"),
        ('legs = ["BTC", "ETH"]\nrate = 1.5', "inter_spreads[0].rate"),
        ('legs = ["BTC", "ETH"]\nrate = 0.3\ncap = -1.0', "inter_spreads[0].cap"),
    ],
)
def test_bad_inter_spread(spread: str, path: str, tmp_path: Path) -> None:
    """A bad ``[[inter_spreads]]`` entry in a PM rulebook names its field."""
    text = (Path(__file__).parents[2] / "src/crossmargin/rules/pm/okx-pm.toml").read_text()
    file = tmp_path / "okx-bad.toml"
    file.write_text(f"{text}\n[[inter_spreads]]\n{spread}\n")
    with pytest.raises(CrossMarginError) as err:
        load_pm_rulebook(file)
    assert err.value.path == path


@pytest.mark.parametrize(
    ("table", "path"),
    [
        ({}, "intra.X.tiers"),
        ({"tiers": [{"name": "a"}, {"name": "b"}]}, "intra.X.tiers[0].up_to_days"),
        (
            {"tiers": [{"name": "a", "up_to_days": 30, "price_range": 0.1}, {"name": "a"}]},
            "intra.X.tiers[1].name",
        ),
        (
            {
                "tiers": [
                    {"name": "a", "up_to_days": 30, "price_range": 0.1},
                    {"name": "b", "up_to_days": 20, "price_range": 0.1},
                ]
            },
            "intra.X.tiers[1].up_to_days",
        ),
        ({"tiers": [{"name": "a", "price_range": 0.0}]}, "intra.X.tiers[0].price_range"),
        (
            {"tiers": [{"name": "a", "price_range": 0.1}], "spreads": [{"legs": ["a", "z"]}]},
            "intra.X.spreads[0].legs[1]",
        ),
        (
            {"tiers": [{"name": "a", "price_range": 0.1}], "spreads": [{"legs": ["a", "a"]}]},
            "intra.X.spreads[0].legs",
        ),
        (
            {
                "tiers": [
                    {"name": "a", "up_to_days": 9, "price_range": 0.1},
                    {"name": "b", "price_range": 0.1},
                ],
                "spreads": [{"legs": ["a", "b"], "rate": -0.1}],
            },
            "intra.X.spreads[0].rate",
        ),
    ],
)
def test_bad_intra_schedule(table: dict[str, object], path: str) -> None:
    """A bad ``[intra.X]`` table of a SPAN rulebook names its field."""
    with pytest.raises(CrossMarginError) as err:
        intra_schedule_from_table(table, "intra.X")
    assert err.value.path == path


def test_bundled_rulebooks_have_sources_and_dates() -> None:
    names = bundled_pm_rulebooks()
    assert names == ["cme-span", "deribit-pm", "okx-pm"]
    for name in names:
        rulebook = load_pm_rulebook(name)
        assert rulebook.model == name and rulebook.source and rulebook.as_of == "2026-11-24"
        assert rulebook.standard_options["im_base"] == 0.15


def test_unknown_rulebook() -> None:
    with pytest.raises(CrossMarginError) as err:
        load_pm_rulebook("nope")
    assert err.value.path == "rulebook"


def test_parse_option_data_from_a_document() -> None:
    doc = {
        "valuation_time": "2026-11-25T08:00:00+00:00",
        "vols": {"BTC-C": 0.6},
        "surfaces": {"ETH": {"days": [7, 30], "atm": [0.8, 0.6], "skew": -0.2}},
    }
    data = parse_options(doc)
    assert data.valuation_time == NOW
    assert data.vols == {"BTC-C": 0.6}
    assert data.surfaces["ETH"].atm_vol(30.0) == pytest.approx(0.6)
    for bad, path in [
        ({}, "options.valuation_time"),
        ({**doc, "valuation_time": "2026-11-25T08:00:00"}, "options.valuation_time"),
        ({**doc, "vols": {"BTC-C": -1.0}}, "options.vols.BTC-C"),
        ({**doc, "surfaces": {"ETH": {"days": [7], "atm": [0.0]}}}, "options.surfaces.ETH.atm[0]"),
        ({**doc, "surfaces": {"ETH": {"atm": [0.5]}}}, "options.surfaces.ETH"),
    ]:
        with pytest.raises(CrossMarginError) as err:
            parse_options(bad)
        assert err.value.path == path
