"""ccxt structures pasted as ccxt returns them, made offline by ccxt's own parsers.

ccxt's exchange classes turn a venue's raw response into unified structures without the network
once a market is set (``set_markets``); these tests feed them Binance's documented raw shapes and
paste the output into portfolio documents. Each expected figure is a plain computation written
here or a value the venue itself reports in the same payload.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from crossmargin import CrossMarginError, evaluate, parse_portfolio, what_if
from crossmargin.app.portfolio import evaluate_portfolio
from crossmargin.cli import app
from crossmargin.model import Order

ccxt = pytest.importorskip("ccxt")


def _market(
    venue_id: str, symbol: str, base: str, quote: str, settle: str, size: float, inverse: bool
) -> dict[str, Any]:
    return {
        "id": venue_id,
        "symbol": symbol,
        "base": base,
        "quote": quote,
        "settle": settle,
        "baseId": base,
        "quoteId": quote,
        "settleId": settle,
        "type": "swap",
        "spot": False,
        "margin": False,
        "swap": True,
        "future": False,
        "option": False,
        "contract": True,
        "linear": not inverse,
        "inverse": inverse,
        "contractSize": size,
        "active": True,
        "precision": {"amount": 0.001, "price": 0.1, "base": 1e-8, "quote": 1e-8},
        "limits": {},
        "info": {},
    }


def _usdm() -> Any:
    exchange = ccxt.binanceusdm()
    exchange.set_markets(
        [_market("BTCUSDT", "BTC/USDT:USDT", "BTC", "USDT", "USDT", 1.0, inverse=False)]
    )
    return exchange


# BTCUSDT brackets as GET /fapi/v1/leverageBracket returns them: (floor, cap, MMR, leverage, cum).
# Values of the bundled binance-usdm rulebook (a 2021 snapshot); the venue caps the last bracket
# at 500,000,000 USDT (rulebook notes), which the rulebook itself leaves open.
BTCUSDT_BRACKETS = [
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
]


def _raw_brackets() -> list[dict[str, Any]]:
    return [
        {
            "symbol": "BTCUSDT",
            "brackets": [
                {
                    "bracket": k + 1,
                    "initialLeverage": lev,
                    "notionalCap": cap,
                    "notionalFloor": floor,
                    "maintMarginRatio": mmr,
                    "cum": float(cum),
                }
                for k, (floor, cap, mmr, lev, cum) in enumerate(BTCUSDT_BRACKETS)
            ],
        }
    ]


def _tiers() -> dict[str, Any]:
    """``fetch_leverage_tiers()`` output: keyed by the unified symbol, the last tier capped."""
    return dict(_usdm().parse_leverage_tiers(_raw_brackets(), None, "symbol"))


def _doc(positions: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "rulebook": "binance-usdm",
        "prices": {"BTCUSDT": 60_000.0},
        "leverage_tiers": _tiers(),
        "accounts": [{"id": "a", "balances": {"USDT": 1e9}, "positions": positions}],
        **extra,
    }


def _plain_mm(notional: float) -> float:
    """Binance: MM = notional x MMR - cum of the bracket the notional is in (the last one
    past the cap)."""
    for floor, _cap, mmr, _, cum in reversed(BTCUSDT_BRACKETS):
        if notional >= floor:
            return notional * mmr - cum
    raise AssertionError(notional)


def test_capped_tiers_keyed_by_unified_symbol_load_as_the_position_limit() -> None:
    tiers = _tiers()
    assert list(tiers) == ["BTC/USDT:USDT"]
    assert tiers["BTC/USDT:USDT"][-1]["maxNotional"] == 500_000_000
    portfolio = parse_portfolio(_doc([]))
    schedule = portfolio.market.instruments["BTCUSDT"].margin
    assert schedule is not None
    assert schedule.position_limit == 500_000_000
    assert [t.maintenance_amount for t in schedule.tiers] == [b[4] for b in BTCUSDT_BRACKETS]


@pytest.mark.parametrize("qty", [0.5, 3.0, 40.0, 4_000.0, 9_000.0, 10_000.0])
def test_maintenance_margin_of_pasted_tiers_matches_the_plain_bracket_formula(qty: float) -> None:
    """Notional 30k .. 600M: every bracket, and past the cap the last bracket still applies."""
    doc = _doc([{"symbol": "BTCUSDT", "qty": qty, "entry_price": 60_000.0}])
    portfolio = parse_portfolio(doc)
    (row,) = evaluate(portfolio.accounts[0], portfolio.market).positions
    notional = qty * 60_000.0
    assert row.maintenance_margin == pytest.approx(_plain_mm(notional), rel=1e-12)
    assert row.over_limit == (notional > 500_000_000)


def test_a_position_past_the_cap_is_flagged_in_json_and_table(tmp_path: Path) -> None:
    doc = _doc([{"symbol": "BTCUSDT", "qty": 10_000.0, "entry_price": 60_000.0}])
    (account,) = evaluate_portfolio(parse_portfolio(doc)).accounts
    (row,) = account.health.positions
    # 600M notional: bracket 10 (the last), MM = 600M x 50% - 99,891,300.
    assert row.over_limit and row.bracket == 9
    assert row.maintenance_margin == pytest.approx(600e6 * 0.5 - 99_891_300)
    path = tmp_path / "doc.json"
    path.write_text(json.dumps(doc))
    result = CliRunner().invoke(app, ["margin", str(path)])
    assert result.exit_code == 0, result.stderr
    assert "exceeded" in result.stdout
    (shown,) = json.loads(CliRunner().invoke(app, ["margin", str(path), "--json"]).stdout)[
        "accounts"
    ][0]["positions"]
    assert shown["over_limit"] is True


def test_an_order_past_the_cap_is_refused_naming_the_cap() -> None:
    portfolio = parse_portfolio(
        _doc([{"symbol": "BTCUSDT", "qty": 8_000.0, "entry_price": 60_000.0}])
    )
    account = portfolio.accounts[0]
    # 8,000 + 1,000 BTC at 60,000 = 540M > 500M.
    refused = what_if(account, portfolio.market, Order("BTCUSDT", 1_000.0))
    assert not refused.accepted
    assert refused.reason == (
        "position limit exceeded: notional 540,000,000.00 USDT is above the 500,000,000 USDT "
        "cap of the last bracket of BTCUSDT"
    )
    assert what_if(account, portfolio.market, Order("BTCUSDT", 300.0)).accepted
    # Reducing a position past the cap is always allowed.
    over = parse_portfolio(_doc([{"symbol": "BTCUSDT", "qty": 9_000.0, "entry_price": 60_000.0}]))
    assert what_if(over.accounts[0], over.market, Order("BTCUSDT", -100.0)).accepted


def test_tiers_keyed_by_venue_id_or_unknown_symbol() -> None:
    tiers = _tiers()["BTC/USDT:USDT"]
    by_id = parse_portfolio(_doc([]) | {"leverage_tiers": {"BTCUSDT": tiers}})
    schedule = by_id.market.instruments["BTCUSDT"].margin
    assert schedule is not None and schedule.position_limit == 500_000_000
    with pytest.raises(CrossMarginError) as error:
        parse_portfolio(_doc([]) | {"leverage_tiers": {"PEPE/USDT:USDT": tiers}})
    assert error.value.path == "leverage_tiers.PEPE/USDT:USDT"
    assert error.value.reason.startswith("unknown instrument 'PEPE/USDT:USDT'")


def test_a_full_binance_position_risk_structure_pastes_as_is() -> None:
    """``parse_position_risk`` of a Binance USDⓈ-M isolated short (GET /fapi/v2/positionRisk
    fields): ccxt's ``collateral`` is ``isolatedMargin`` = wallet + PnL, so the isolated wallet
    is ``collateral - unrealizedPnl`` = 1,000 - (-2,000) = 3,000, Binance's ``isolatedWallet``."""
    raw = {
        "symbol": "BTCUSDT",
        "positionAmt": "-2.000",
        "entryPrice": "30000.0",
        "markPrice": "31000.00000000",
        "unRealizedProfit": "-2000.00000000",
        "liquidationPrice": "31344.9",
        "leverage": "20",
        "maxNotionalValue": "250000",
        "marginType": "isolated",
        "isolatedMargin": "1000.00000000",
        "isAutoAddMargin": "false",
        "positionSide": "BOTH",
        "notional": "-62000.00000000",
        "isolatedWallet": "3000.00000000",
        "updateTime": 1625474304765,
    }
    unified = _usdm().parse_position_risk(raw)
    assert {"isolated", "info", "contracts", "contractSize", "side"} <= set(unified) | {"isolated"}
    unified["isolated"] = True  # older ccxt versions carry this key as well
    doc = _doc([dict(unified)]) | {"prices": {}}
    portfolio = parse_portfolio(doc)
    (position,) = portfolio.accounts[0].positions
    assert (position.symbol, position.qty, position.isolated_margin) == ("BTCUSDT", -2.0, 3_000.0)
    assert position.leverage == 20
    assert portfolio.market.mark("BTCUSDT") == 31_000.0
    (row,) = evaluate(portfolio.accounts[0], portfolio.market).positions
    # Isolated equity = 3,000 - 2,000 = 1,000, Binance's isolatedMargin; PnL as Binance reports.
    assert row.equity == pytest.approx(float(raw["isolatedMargin"]))
    assert row.unrealized_pnl == pytest.approx(float(raw["unRealizedProfit"]))


def test_a_closed_position_is_left_out() -> None:
    """Binance's documented positionRisk example is a flat BTCUSDT row (positionAmt 0.000)."""
    raw = {
        "entryPrice": "0.00000",
        "marginType": "isolated",
        "isAutoAddMargin": "false",
        "isolatedMargin": "0.00000000",
        "leverage": "10",
        "liquidationPrice": "0",
        "markPrice": "6679.50671178",
        "maxNotionalValue": "20000000",
        "positionAmt": "0.000",
        "notional": "0",
        "isolatedWallet": "0",
        "symbol": "BTCUSDT",
        "unRealizedProfit": "0.00000000",
        "positionSide": "BOTH",
        "updateTime": 0,
    }
    unified = dict(_usdm().parse_position_risk(raw))
    unified["side"] = "long"  # ccxt gives no side to a flat position
    portfolio = parse_portfolio(_doc([unified]))
    assert portfolio.accounts[0].positions == ()


def test_a_coin_margined_position_rescales_contracts_and_reads_the_wallet() -> None:
    """ccxt's own Binance COIN-M sample (a comment in ``parse_position_risk``): 2 BTCUSD_PERP
    contracts of 100 USD, entry 37,643.10000021, mark 38,103.05510455; Binance reports
    unRealizedProfit 0.00006413 and isolatedWallet 0.00268058 BTC."""
    exchange = ccxt.binancecoinm()
    exchange.set_markets(
        [_market("BTCUSD_PERP", "BTC/USD:BTC", "BTC", "USD", "BTC", 100.0, inverse=True)]
    )
    raw = {
        "symbol": "BTCUSD_PERP",
        "positionAmt": "2",
        "entryPrice": "37643.10000021",
        "markPrice": "38103.05510455",
        "unRealizedProfit": "0.00006413",
        "liquidationPrice": "25119.97445760",
        "leverage": "2",
        "maxQty": "1500",
        "marginType": "isolated",
        "isolatedMargin": "0.00274471",
        "isAutoAddMargin": "false",
        "positionSide": "BOTH",
        "notionalValue": "0.00524892",
        "isolatedWallet": "0.00268058",
    }
    unified = dict(exchange.parse_position_risk(raw))
    doc = {
        "rulebook": "binance-coinm",
        "currency": "BTC",
        "prices": {},
        "accounts": [{"id": "c", "balances": {"BTC": 0.0}, "positions": [unified]}],
    }
    portfolio = parse_portfolio(doc)
    (position,) = portfolio.accounts[0].positions
    assert position.symbol == "BTCUSD_PERP" and position.qty == 2.0
    assert position.isolated_margin == pytest.approx(0.00268058, abs=1e-12)
    (row,) = evaluate(portfolio.accounts[0], portfolio.market).positions
    # Inverse PnL = 2 x 100 x (1/entry - 1/mark) = 0.0000641358, which Binance cuts to 8 decimals.
    pnl = 2 * 100 * (1 / 37_643.10000021 - 1 / 38_103.05510455)
    assert row.unrealized_pnl == pytest.approx(pnl)
    assert math.floor(row.unrealized_pnl * 1e8) / 1e8 == pytest.approx(0.00006413, abs=1e-15)
    assert row.notional == pytest.approx(float(raw["notionalValue"]), abs=5e-9)


def test_a_usdm_balance_reads_the_wallet_not_the_margin_balance() -> None:
    """``parse_balance`` of GET /fapi/v2/account: ccxt's ``total`` is ``marginBalance`` (wallet
    + unrealized PnL), which the engine would count twice; ``info.assets[].walletBalance`` is
    read instead."""
    response = {
        "assets": [
            {
                "asset": "USDT",
                "walletBalance": "5000.00000000",
                "unrealizedProfit": "-2000.00000000",
                "marginBalance": "3000.00000000",
                "initialMargin": "3100.00000000",
                "availableBalance": "0.00000000",
                "updateTime": 1625474304765,
            },
            {
                "asset": "BNB",
                "walletBalance": "0.50000000",
                "unrealizedProfit": "0.00000000",
                "marginBalance": "0.50000000",
                "initialMargin": "0.00000000",
                "availableBalance": "0.50000000",
                "updateTime": 1625474304765,
            },
        ],
        "positions": [],
    }
    balance = _usdm().parse_balance_custom(response, "linear")
    assert balance["total"]["USDT"] == 3_000.0
    doc = _doc([]) | {
        "accounts": [{"id": "a", "balances": dict(balance), "positions": []}],
        "prices": {"BNB": 600.0},
    }
    (account,) = parse_portfolio(doc).accounts
    assert dict(account.balances) == {"USDT": 5_000.0, "BNB": 0.5}


def test_a_plain_ccxt_balance_is_total_less_debt() -> None:
    """The unified balance structure: ``total`` per currency less its ``debt``."""
    balance = {
        "info": {},
        "timestamp": None,
        "datetime": None,
        "USDT": {"free": 900.0, "used": 100.0, "total": 1_000.0, "debt": 250.0},
        "BTC": {"free": 0.1, "used": 0.0, "total": 0.1},
        "free": {"USDT": 900.0, "BTC": 0.1},
        "used": {"USDT": 100.0, "BTC": 0.0},
        "total": {"USDT": 1_000.0, "BTC": 0.1},
        "debt": {"USDT": 250.0},
    }
    doc = _doc([]) | {"accounts": [{"id": "a", "balances": balance}], "prices": {"BTC": 6e4}}
    (account,) = parse_portfolio(doc).accounts
    assert dict(account.balances) == {"USDT": 750.0, "BTC": 0.1}
