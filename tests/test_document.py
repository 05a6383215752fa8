"""Portfolio documents: ccxt positions and leverage tiers paste straight in."""

from __future__ import annotations

import pytest

from crossmargin import evaluate, parse_portfolio


def test_ccxt_positions_and_leverage_tiers() -> None:
    """``fetch_positions()`` and ``fetch_leverage_tiers()`` shapes (ccxt unified structures)."""
    doc = {
        "rulebook": "binance-usdm",
        "prices": {"USDT": 1.0},
        "leverage_tiers": {
            "BTCUSDT": [
                {
                    "tier": 1,
                    "minNotional": 0,
                    "maxNotional": 50_000,
                    "maintenanceMarginRate": 0.004,
                    "maxLeverage": 125,
                    "info": {},
                },
                {
                    "tier": 2,
                    "minNotional": 50_000,
                    "maxNotional": None,
                    "maintenanceMarginRate": 0.005,
                    "maxLeverage": 100,
                    "info": {},
                },
            ]
        },
        "accounts": [
            {
                "id": "c",
                "balances": {"USDT": 5_000.0},
                "positions": [
                    {
                        "symbol": "BTC/USDT:USDT",
                        "contracts": 2.0,
                        "contractSize": 1.0,
                        "side": "short",
                        "entryPrice": 30_000.0,
                        "markPrice": 31_000.0,
                        "marginMode": "isolated",
                        "collateral": 1_000.0,
                        "leverage": 20,
                        "unrealizedPnl": -2_000.0,
                        "info": {},
                    },
                ],
            }
        ],
    }
    portfolio = parse_portfolio(doc)
    (position,) = portfolio.accounts[0].positions
    # ccxt's collateral includes the PnL: isolated wallet = 1,000 - (-2,000) = 3,000.
    assert (position.symbol, position.qty, position.isolated_margin) == ("BTCUSDT", -2.0, 3_000.0)
    row = evaluate(portfolio.accounts[0], portfolio.market).positions[0]
    # Notional 62,000 in tier 2: MM = 62,000 * 0.5% - 50 = 260; equity 3,000 - 2,000 = 1,000.
    assert row.maintenance_margin == pytest.approx(260.0)
    assert row.equity == pytest.approx(1_000.0)
    # Isolated short: 3,000 - 2 * (p - 30,000) = 0.005 * 2p - 50 -> p = 63,050 / 2.01.
    assert row.liquidation_price == pytest.approx(63_050 / 2.01)
