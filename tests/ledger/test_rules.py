"""Liquidation rulebooks: the bundled TOML files, the strict loader, and venue defaults.

Figures: Binance liquidation fee 1.25% (venues.md 1.6); Hyperliquid 20% chunks above 100k USDC,
backstop below 2/3 of maintenance, no fee, MMR = 1/(2 x max leverage) (venues.md 4.1); dYdX
MaxLiquidationFeePpm 15,000 capped at the surplus, deleveraging without ranking (engines.md 1(c)).
"""

from __future__ import annotations

import json
from decimal import Decimal as D
from importlib import resources
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crossmargin.cli import app
from crossmargin.ledger import Ledger, bundled_venues, load_venue
from crossmargin.model import CrossMarginError
from crossmargin.rules import load_rulebook


def bundled_text(name: str) -> str:
    folder = resources.files("crossmargin.rules") / "liquidation"
    return (folder / f"{name}.toml").read_text(encoding="utf-8")


def test_bundled_rulebooks_load_with_the_published_parameters() -> None:
    """Each bundled file loads, names its margin rulebook and a BTC perpetual in it."""
    assert bundled_venues() == ["binance", "dydx", "hyperliquid"]
    rules = {name: load_venue(name) for name in bundled_venues()}
    for name, r in rules.items():
        assert r.name == name and r.sources and r.as_of and r.version
        assert all(s.startswith("https://") for s in r.sources)
        assert r.btc_symbol in load_rulebook(r.margin_rulebook).instruments
    b, h, d = rules["binance"], rules["hyperliquid"], rules["dydx"]
    assert (b.penalty_rate, b.adl, b.chunk_fraction, b.backstop_ratio) == (
        D("0.0125"),
        "pnl_leverage",
        None,
        None,
    )
    assert (h.penalty_rate, h.chunk_fraction, h.chunk_above) == (0, D("0.2"), 100_000)
    assert h.backstop_ratio == D(2) / D(3)
    assert (d.penalty_rate, d.adl) == (D("0.015"), "pro_rata")
    assert {r.margin_rulebook for r in rules.values()} == {"binance-usdm", "hyperliquid", "dydx-v4"}
    assert all((r.trigger, r.target, r.insurance_covers) == (1, 1, True) for r in rules.values())


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("[partial]\n", "[partial]\ncolour = 1\n", "bad.toml:partial.colour: unknown field"),
        ("[adl]\n", "[auction]\nx = 1\n[adl]\n", "bad.toml:auction: unknown section"),
        ('ranking = "pnl_leverage"', 'ranking = "random"', "bad.toml:adl.ranking: must be one of"),
        ("rate = 0.0125", "rate = 1.5", "bad.toml:penalty.rate: must be [0, 1)"),
        ("rate = 0.0125", 'rate = "lots"', "bad.toml:penalty.rate: must be a number"),
        ("maker = 0.0002\n", "", "bad.toml:fees.maker: required"),
        ('btc_symbol = "BTCUSDT"', "btc_symbol = true", "bad.toml:margin.btc_symbol: must be"),
        (
            "[trigger]",
            "[backstop]\nbelow_maintenance_multiple = 2\n[trigger]",
            "bad.toml:backstop.below_maintenance_multiple: must be within (0, 1]",
        ),
        ("version", "version = [", "bad.toml: not valid TOML"),
    ],
)
def test_bad_file_names_the_field(tmp_path: Path, old: str, new: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    text = bundled_text("binance")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(CrossMarginError) as caught:
        load_venue(path)
    assert str(caught.value).startswith(message)
    with pytest.raises(CrossMarginError):
        Ledger("sqlite://", venue=str(path))


def test_unknown_venue_is_refused() -> None:
    with pytest.raises(CrossMarginError, match=r"^venue: no bundled liquidation rules"):
        Ledger("sqlite://", venue="nasdaq")


def test_venue_by_path_without_insurance_cover(tmp_path: Path) -> None:
    """A file by path: Binance rules, but the fund does not pay bankruptcies.

    Long 0.1 @ 60,000 with 100 (fee 0.05% = 3): at 50,000 the wallet is 97 - 1,000 = -903.
    Nobody holds the other side, so all 903 is bad debt and the 5,000 fund is untouched.
    """
    path = tmp_path / "no-cover.toml"
    path.write_text(
        bundled_text("binance").replace("covers_bankruptcy = true", "covers_bankruptcy = false"),
        encoding="utf-8",
    )
    with Ledger("sqlite://", venue=path) as ledger:
        assert ledger.ctx.rules.insurance_covers is False
        ledger.deposit_insurance("f", 5_000)
        ledger.deposit("d", "a", 100)
        ledger.price("p0", "BTCUSDT", 60_000)
        ledger.trade("t", "a", "BTCUSDT", "0.1")
        ledger.price("p1", "BTCUSDT", 50_000)
        assert ledger.state.bad_debt == D(903)
        assert ledger.state.balance("insurance") == D(5_000)
        assert ledger.state.imbalance() == 0


def test_hyperliquid_trades_its_own_btc_perp_at_the_published_liquidation_price() -> None:
    """Hyperliquid BTC-PERP (40x, MMR 1/80) in USDC; venues.md 4.1 liquidation price:
    liq = entry - margin_available / size / (1 - 1/80).

    Long 1 @ 100,000 with 10,000, less the 0.045% fee of 45: margin available 9,955 - 1,250 =
    8,705, liq = 100,000 - 8,705 x 80 / 79 = 91,184.81. At 91,190 equity 1,145 >= MM 1,139.875;
    at 91,180 equity 1,135 < MM 1,139.75 (above the 2/3 backstop line 759.83), the whole
    91,180 of notional (under 100k, no chunks) closes at the mark with no fee: wallet 1,135.
    """
    with Ledger("sqlite://", venue="hyperliquid") as ledger:
        assert ledger.ctx.currency == "USDC"
        assert "BTCUSDT" not in ledger.ctx.instruments
        ledger.deposit("d", "a", 10_000)
        ledger.price("p0", "BTC-PERP", 100_000)
        ledger.trade("t", "a", "BTC-PERP", 1)
        assert ledger.state.balance("trader:a") == D(9_955)
        assert round(ledger.health("a").positions[0].liquidation_price, 2) == 91_184.81
        assert [e.kind for e in ledger.price("p1", "BTC-PERP", 91_190).events] == ["price"]
        events = ledger.price("p2", "BTC-PERP", 91_180).events
        assert [str(e.kind) for e in events] == ["price", "liquidation_fill"]
        assert "a" not in ledger.state.positions
        assert ledger.state.balance("trader:a") == D(1_135)


def test_dydx_fee_is_capped_by_the_surplus() -> None:
    """dYdX BTC-USD (MMF 1.2%) in USDC. Long 1 @ 100,000 with 10,000, fee 0.05% = 50.

    Liquidatable below P = (100,000 - 9,950) / (1 - 0.012) = 91,143.72. At 91,140 equity 1,090
    < MM 1,093.68: the position closes; the fee 1.5% x 91,140 = 1,367.10 is capped at the
    1,090 of equity, which goes to the fund.
    """
    with Ledger("sqlite://", venue="dydx") as ledger:
        assert (ledger.ctx.currency, "BTC-USD" in ledger.ctx.instruments) == ("USDC", True)
        ledger.deposit("d", "a", 10_000)
        ledger.price("p0", "BTC-USD", 100_000)
        ledger.trade("t", "a", "BTC-USD", 1)
        assert [e.kind for e in ledger.price("p1", "BTC-USD", 91_150).events] == ["price"]
        ledger.price("p2", "BTC-USD", 91_140)
        assert ledger.state.balance("insurance") == D(1_090)
        assert ledger.state.balance("trader:a") == 0


@pytest.mark.parametrize("venue", ["dydx", "path"])
def test_replay_accepts_a_venue_name_or_path(venue: str, tmp_path: Path) -> None:
    """The synthetic book trades the venue's BTC market; money is conserved exactly."""
    if venue == "path":
        path = tmp_path / "hl.toml"
        path.write_text(bundled_text("hyperliquid"), encoding="utf-8")
        venue = str(path)
    window = ["--from", "2020-03-12", "--to", "2020-03-12T06:00"]
    result = CliRunner().invoke(
        app, ["replay", "--accounts", "20", *window, "--venue", venue, "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["imbalance"] == "0" and report["replay_matches"] is True
    assert report["candles"] == 4


def test_replay_unknown_venue_exits_2() -> None:
    result = CliRunner().invoke(app, ["replay", "--venue", "nasdaq"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: venue: no bundled liquidation rules")
