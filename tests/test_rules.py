"""Bundled rulebooks load, carry their sources, and compile to the published parameters."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.helpers import BINANCE_BTC_FLOORS, BINANCE_BTC_RATES

from crossmargin import CrossMarginError, bundled_rulebooks, load_rulebook
from crossmargin.model import continuity_amounts


def test_every_bundled_rulebook_has_source_date_and_markets() -> None:
    books = {b.name: b for b in bundled_rulebooks()}
    assert {"binance-usdm", "bybit-linear", "hyperliquid", "deribit-standard", "dydx-v4"} <= set(
        books
    )
    for book in books.values():
        assert book.source.startswith("https://")
        assert len(book.as_of) == 10
        assert book.instruments


def test_binance_btc_brackets_match_the_published_table() -> None:
    """Bundled BTCUSDT brackets carry the published rates and ``cum`` amounts (venues.md 1.2)."""
    margin = load_rulebook("binance-usdm").instruments["BTCUSDT"].margin
    assert margin is not None
    assert [t.min_notional for t in margin.tiers] == BINANCE_BTC_FLOORS
    assert [t.maintenance_margin_rate for t in margin.tiers] == BINANCE_BTC_RATES
    assert [t.maintenance_amount for t in margin.tiers] == pytest.approx(
        continuity_amounts(BINANCE_BTC_FLOORS, BINANCE_BTC_RATES)
    )


def test_hyperliquid_maintenance_is_half_initial_at_max_leverage() -> None:
    margin = load_rulebook("hyperliquid").instruments["BTC-PERP"].margin
    assert margin is not None
    assert margin.tiers[0].max_leverage == 40
    assert margin.tiers[0].maintenance_margin_rate == pytest.approx(1 / 80)


def test_deribit_rates_scale_with_size() -> None:
    margin = load_rulebook("deribit-standard").instruments["BTC_USDC-PERPETUAL"].margin
    assert margin is not None
    assert (margin.initial_rate, margin.initial_rate_per_size) == (0.02, 0.00005)
    assert (margin.tiers[0].maintenance_margin_rate, margin.maintenance_rate_per_size) == (
        0.01,
        0.00005,
    )


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "venue.toml"
    path.write_text(
        '[rulebook]\nname = "venue"\nmodel = "tiered"\ncurrency = "USDT"\n'
        'source = "https://example.org"\nas_of = 2025-01-01\n' + body
    )
    return path


def test_load_by_path_derives_maintenance_amounts(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
[[markets]]
symbol = "XUSDT"
underlying = "X"
quote = "USDT"
tiers = [
  { min_notional = 0, max_notional = 1000, maintenance_margin_rate = 0.01, max_leverage = 50 },
  { min_notional = 1000, maintenance_margin_rate = 0.02, max_leverage = 25 },
]
""",
    )
    book = load_rulebook(path)
    margin = book.instruments["XUSDT"].margin
    assert margin is not None and margin.tiers[1].maintenance_amount == pytest.approx(10.0)
    assert book.as_of == "2025-01-01"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            '[[markets]]\nsymbol = "X"\nunderlying = "X"\nquote = "USDT"\ncolour = 1\n',
            "venue.toml:markets[0].colour: unknown field",
        ),
        (
            '[[markets]]\nsymbol = "X"\nunderlying = "X"\nquote = "USDT"\n'
            "tiers = [{ min_notional = 0, max_notional = 10, maintenance_margin_rate = 0.01,"
            " max_leverage = 5 }, { min_notional = 20, maintenance_margin_rate = 0.02,"
            " max_leverage = 5 }]\n",
            "venue.toml:markets[0].tiers[1].min_notional: tiers must be contiguous",
        ),
        (
            '[[markets]]\nsymbol = "X"\nunderlying = "X"\nquote = "USDT"\n',
            "venue.toml:markets[0].tiers: required by the tiered margin model",
        ),
        (
            "[collateral.BTC]\nratio = 1.5\n",
            "venue.toml:collateral.BTC.tiers[0].ratio: must be within",
        ),
        ("oops = [", "venue.toml: not valid TOML"),
    ],
)
def test_bad_rulebooks_name_the_field(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(CrossMarginError) as caught:
        load_rulebook(_write(tmp_path, body))
    assert str(caught.value).startswith(message), str(caught.value)


def test_a_left_out_amount_continues_from_the_given_amount_below(tmp_path: Path) -> None:
    """Given 5 at the 1,000 floor (rates 1% -> 2% -> 4%), the 5,000 floor's amount is
    5 + 5,000 x 2% = 105, not the 0-based chain's 110: MM is continuous at 5,000."""
    tiers = [
        "{ max_notional = 1000, maintenance_margin_rate = 0.01, max_leverage = 50 }",
        "{ min_notional = 1000, max_notional = 5000, maintenance_margin_rate = 0.02,"
        " max_leverage = 25, maintenance_amount = 5 }",
        "{ min_notional = 5000, maintenance_margin_rate = 0.04, max_leverage = 10 }",
    ]
    path = _write(
        tmp_path,
        '[[markets]]\nsymbol = "XUSDT"\nunderlying = "X"\nquote = "USDT"\n'
        f"tiers = [{', '.join(tiers)}]\n",
    )
    margin = load_rulebook(path).instruments["XUSDT"].margin
    assert margin is not None
    assert [t.maintenance_amount for t in margin.tiers] == pytest.approx([0.0, 5.0, 105.0])
    low, high = margin.tiers[1], margin.tiers[2]
    assert 5_000 * low.maintenance_margin_rate - low.maintenance_amount == pytest.approx(
        5_000 * high.maintenance_margin_rate - high.maintenance_amount
    )


def test_bundled_account_modes_default_to_the_venue_default() -> None:
    binance = load_rulebook("binance-usdm")
    assert binance.account_mode == "single_asset"
    assert set(binance.account_modes) == {"single_asset", "multi_assets", "portfolio_margin"}
    assert binance.collateral["USDT"].ratios == (1.0,)
    assert binance.mode("multi_assets").margin_modes == ("cross",)
    bybit = load_rulebook("bybit-linear")
    assert bybit.account_mode == "cross"
    assert bybit.mode("isolated").margin_modes == ("isolated",)
    assert load_rulebook("hyperliquid").mode().name == "default"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            'account_mode = "x"\n',
            "venue.toml:rulebook.account_mode: no [account_modes] to choose from",
        ),
        (
            '[account_modes.a]\nsource = "https://example.org"\nmargin_modes = ["cross"]\n',
            "venue.toml:rulebook.account_mode: must name one of a",
        ),
        (
            'account_mode = "a"\n[account_modes.a]\nsource = "https://example.org"\n'
            'margin_modes = ["hedge"]\n',
            "venue.toml:account_modes.a.margin_modes[0]: must be 'cross' or 'isolated'",
        ),
        (
            'account_mode = "a"\n[account_modes.a]\nmargin_modes = ["cross"]\n',
            "venue.toml:account_modes.a.source: required",
        ),
    ],
)
def test_bad_account_modes_name_the_field(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(CrossMarginError) as caught:
        load_rulebook(_write(tmp_path, body))
    assert str(caught.value).startswith(message), str(caught.value)
