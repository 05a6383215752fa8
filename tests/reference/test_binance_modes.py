"""Binance USDⓈ-M account modes: the official two-position cross example (from the bundled
rulebook, and from its brackets pasted as ccxt returns them), Single-Asset versus Multi-Assets
collateral, and Multi-Assets refusing isolated positions."""

from __future__ import annotations

import math
from typing import Any

import pytest

from crossmargin import Account, CrossMarginError, MarginMode, Position, evaluate, parse_portfolio
from crossmargin.app.portfolio import evaluate_portfolio
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


# The example's brackets as GET /fapi/v1/leverageBracket returns them: (floor, cap, MMR,
# leverage, cum), from the 2021 snapshot the FAQ's figures use (BTCUSDT: venues.md 1.2, in full;
# ETHUSDT: floors, MMR and cum as published, caps the next floor, the per-bracket leverage of
# the ETH/USDT rows of freqtrade 2022.4's API snapshot). The snapshot gives the last ETH bracket
# no cap, so its row carries none and ccxt returns maxNotional None (an open tier).
PUBLISHED_BRACKETS: dict[str, list[tuple[float, float | None, float, float, float]]] = {
    "BTCUSDT": [
        (0, 50_000, 0.004, 125, 0),
        (50_000, 250_000, 0.005, 100, 50),
        (250_000, 1_000_000, 0.01, 50, 1_300),
        (1_000_000, 5_000_000, 0.025, 20, 16_300),
        (5_000_000, 20_000_000, 0.05, 10, 141_300),
        (20_000_000, 50_000_000, 0.1, 5, 1_141_300),
        (50_000_000, 100_000_000, 0.125, 4, 2_391_300),
        (100_000_000, 200_000_000, 0.15, 3, 4_891_300),
        (200_000_000, 300_000_000, 0.25, 2, 24_891_300),
        (300_000_000, 500_000_000, 0.5, 1, 99_891_300),
    ],
    "ETHUSDT": [
        (0, 10_000, 0.005, 100, 0),
        (10_000, 100_000, 0.0065, 75, 15),
        (100_000, 500_000, 0.01, 50, 365),
        (500_000, 1_000_000, 0.02, 25, 5_365),
        (1_000_000, 2_000_000, 0.05, 10, 35_365),
        (2_000_000, 5_000_000, 0.1, 5, 135_365),
        (5_000_000, 10_000_000, 0.125, 4, 260_365),
        (10_000_000, 20_000_000, 0.15, 3, 510_365),
        (20_000_000, None, 0.25, 2, 2_510_365),
    ],
}


def _ccxt_leverage_tiers() -> dict[str, Any]:
    """``binanceusdm().fetch_leverage_tiers()`` of the published brackets, made offline by
    ccxt's own parser (``parse_leverage_tiers`` of the raw response, markets set by hand)."""
    ccxt = pytest.importorskip("ccxt")
    exchange = ccxt.binanceusdm()
    exchange.set_markets(
        [
            {
                "id": f"{base}USDT",
                "symbol": f"{base}/USDT:USDT",
                "base": base,
                "quote": "USDT",
                "settle": "USDT",
                "baseId": base,
                "quoteId": "USDT",
                "settleId": "USDT",
                "type": "swap",
                "spot": False,
                "margin": False,
                "swap": True,
                "future": False,
                "option": False,
                "contract": True,
                "linear": True,
                "inverse": False,
                "contractSize": 1.0,
                "active": True,
                "precision": {"amount": 0.001, "price": 0.01},
                "limits": {},
                "info": {},
            }
            for base in ("BTC", "ETH")
        ]
    )
    raw = [
        {
            "symbol": venue_id,
            "brackets": [
                {
                    "bracket": k + 1,
                    "initialLeverage": lev,
                    "notionalFloor": floor,
                    "maintMarginRatio": mmr,
                    "cum": float(cum),
                    **({} if cap is None else {"notionalCap": cap}),
                }
                for k, (floor, cap, mmr, lev, cum) in enumerate(brackets)
            ],
        }
        for venue_id, brackets in PUBLISHED_BRACKETS.items()
    ]
    return dict(exchange.parse_leverage_tiers(raw, None, "symbol"))


def test_two_position_cross_example_reproduces_from_brackets_pasted_from_ccxt() -> None:
    """The same example from a document: ``leverage_tiers`` is ccxt's output keyed by unified
    symbol (it replaces the rulebook's brackets), positions and prices name the unified
    symbols too; both liquidation prices match the published formula to 1e-7."""
    tiers = _ccxt_leverage_tiers()
    assert list(tiers) == ["BTC/USDT:USDT", "ETH/USDT:USDT"]
    assert tiers["BTC/USDT:USDT"][-1]["maxNotional"] == 500_000_000
    assert tiers["ETH/USDT:USDT"][-1]["maxNotional"] is None
    assert "maintenanceAmount" not in tiers["ETH/USDT:USDT"][0]
    document = {
        "rulebook": "binance-usdm",
        "prices": {"BTC/USDT:USDT": MARKS["BTCUSDT"], "ETH/USDT:USDT": MARKS["ETHUSDT"]},
        "leverage_tiers": tiers,
        "accounts": [
            {
                "id": "faq",
                "balances": {"USDT": WALLET},
                "positions": [
                    {"symbol": "BTC/USDT:USDT", "qty": BTC.qty, "entry_price": BTC.entry_price},
                    {"symbol": "ETH/USDT:USDT", "qty": ETH.qty, "entry_price": ETH.entry_price},
                ],
            }
        ],
    }
    portfolio = parse_portfolio(document)
    for venue_id, brackets in PUBLISHED_BRACKETS.items():
        schedule = portfolio.market.instruments[venue_id].margin
        assert schedule is not None
        assert [t.maintenance_amount for t in schedule.tiers] == [b[4] for b in brackets]
        assert schedule.position_limit == (brackets[-1][1] or math.inf)
    (account,) = evaluate_portfolio(portfolio).accounts
    btc, eth = account.health.positions
    assert (btc.symbol, eth.symbol) == ("BTCUSDT", "ETHUSDT")
    assert account.health.collateral_value == WALLET
    assert btc.maintenance_margin == pytest.approx(71_200.81144, abs=1e-5)
    assert eth.maintenance_margin == pytest.approx(356_512.508, abs=1e-3)
    btc_lp = _published(356_512.508, -448_192.89, 16_300.0, 109.488, 32_481.98, 0.025)
    eth_lp = _published(71_200.81144, -56_354.57, 135_365.0, 3_683.979, 1_456.84, 0.10)
    assert btc.liquidation_price == pytest.approx(btc_lp, rel=1e-7)
    assert eth.liquidation_price == pytest.approx(eth_lp, rel=1e-7)


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
