"""Binance USDⓈ-M account modes: the official two-position cross example, Single-Asset versus
Multi-Assets collateral, and Multi-Assets refusing isolated positions."""

from __future__ import annotations

import pytest

from crossmargin import Account, CrossMarginError, MarginMode, Position, evaluate, parse_portfolio
from crossmargin.rules import load_rulebook

# Binance FAQ "How to Calculate Liquidation Price of USDⓈ-M Futures Contracts"
# (https://www.binance.com/en/support/faq/b3c689c1f50a44cabb3a84e663b81d93), cross margin,
# one-way mode; the same inputs and results are the cross cases of freqtrade's
# tests/leverage/test_liquidation_price.py. Wallet balance 1,535,443.01 USDT;
# BTCUSDT long 109.488 @ 32,481.98 (2.5%, cum 16,300), ETHUSDT long 3,683.979 @ 1,456.84
# (10%, cum 135,365); the other contract's MM and UPnL: 71,200.81144 / -56,354.57 (seen from
# ETH) and 356,512.508 / -448,192.89 (seen from BTC), i.e. marks 31,967.27 and 1,335.18.
WALLET = 1_535_443.01
BTC = Position("BTCUSDT", 109.488, 32_481.98)
ETH = Position("ETHUSDT", 3_683.979, 1_456.84)
MARKS = {"BTCUSDT": 31_967.27, "ETHUSDT": 1_335.18}


def _published(
    tmm1: float, upnl1: float, cum: float, size: float, entry: float, mmr: float
) -> float:
    """LP = (WB - TMM1 + UPNL1 + cumB - P * EP) / (P * MMR - P) for a one-way long."""
    return (WALLET - tmm1 + upnl1 + cum - size * entry) / (size * mmr - size)


def test_two_position_cross_example_reproduces_from_the_bundled_rulebook() -> None:
    """Single-Asset mode (the default) counts the USDT wallet in full; both liquidation prices
    match the published formula on the published inputs to 1e-7 (the FAQ rounds them to
    26,316.89 and 1,153.26)."""
    market = load_rulebook("binance-usdm").market(MARKS)
    health = evaluate(Account("faq", {"USDT": WALLET}, [BTC, ETH]), market)
    btc, eth = health.positions
    assert health.collateral_value == WALLET
    assert btc.maintenance_margin == pytest.approx(71_200.81144, abs=1e-5)
    assert eth.maintenance_margin == pytest.approx(356_512.508, abs=1e-3)
    btc_lp = _published(356_512.508, -448_192.89, 16_300.0, 109.488, 32_481.98, 0.025)
    eth_lp = _published(71_200.81144, -56_354.57, 135_365.0, 3_683.979, 1_456.84, 0.10)
    assert btc.liquidation_price == pytest.approx(btc_lp, rel=1e-7)
    assert eth.liquidation_price == pytest.approx(eth_lp, rel=1e-7)
    assert round(btc_lp, 2) == 26_316.89
    assert round(eth_lp, 2) == 1_153.26


def test_multi_assets_mode_counts_usdt_at_its_collateral_ratio() -> None:
    """Multi-Assets mode values USDT at 99.99% (2021 table): the same book liquidates
    earlier, about 5e-5 relative away from the published price."""
    book = load_rulebook("binance-usdm")
    market = book.market(MARKS, account_mode="multi_assets")
    health = evaluate(Account("faq", {"USDT": WALLET}, [BTC, ETH]), market)
    assert health.collateral_value == pytest.approx(WALLET * 0.9999)
    published = _published(356_512.508, -448_192.89, 16_300.0, 109.488, 32_481.98, 0.025)
    assert health.positions[0].liquidation_price == pytest.approx(published, rel=1e-4)
    assert health.positions[0].liquidation_price != pytest.approx(published, rel=1e-5)


def test_single_asset_mode_ignores_other_assets_and_multi_assets_counts_them() -> None:
    """BNB is no margin in Single-Asset mode; in Multi-Assets mode BNB worth $1,000 counts $950
    (Binance FAQ 29b45c485d664028b9ca1cdf90b24f6f)."""
    book = load_rulebook("binance-usdm")
    account = Account("bnb", {"USDT": 100.0, "BNB": 2.0})
    single = evaluate(account, book.market({"BNB": 500.0}))
    multi = evaluate(account, book.market({"BNB": 500.0}, account_mode="multi_assets"))
    assert single.collateral_value == pytest.approx(100.0)
    assert multi.collateral_value == pytest.approx(100.0 * 0.9999 + 950.0)


def _document(mode: str | None, margin_mode: str) -> dict[str, object]:
    position = {"symbol": "BTCUSDT", "qty": 0.1, "entry_price": 60_000.0}
    if margin_mode == "isolated":
        position |= {"margin_mode": "isolated", "isolated_margin": 600.0}
    doc: dict[str, object] = {
        "rulebook": "binance-usdm",
        "prices": {"BTCUSDT": 60_000.0},
        "accounts": [{"id": "a", "balances": {"USDT": 1_000.0}, "positions": [position]}],
    }
    if mode is not None:
        doc["account_mode"] = mode
    return doc


def test_a_document_chooses_the_account_mode() -> None:
    single = parse_portfolio(_document(None, "cross"))
    multi = parse_portfolio(_document("multi_assets", "cross"))
    assert single.market.collateral["USDT"].ratios == (1.0,)
    assert multi.market.collateral["USDT"].ratios == (0.9999,)


def test_multi_assets_mode_refuses_isolated_positions() -> None:
    """Multi-Assets mode works with cross margin only (Binance FAQ
    29b45c485d664028b9ca1cdf90b24f6f)."""
    assert parse_portfolio(_document(None, "isolated")).accounts[0].positions[0].margin_mode == (
        MarginMode.ISOLATED
    )
    with pytest.raises(CrossMarginError) as caught:
        parse_portfolio(_document("multi_assets", "isolated"))
    assert str(caught.value).startswith("accounts[0].positions[0].margin_mode: isolated margin")


def test_an_unknown_account_mode_names_the_field() -> None:
    with pytest.raises(CrossMarginError) as caught:
        parse_portfolio(_document("hedge", "cross"))
    assert str(caught.value).startswith("account_mode: no account mode 'hedge' in binance-usdm")
