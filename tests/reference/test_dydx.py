"""dYdX v4: liquidity-tier fractions, open-interest-scaled IMF (from the rulebook and from a
document's ``open_interest``), bankruptcy and fillable prices.

Vectors from dydxprotocol/v4-chain unit tests (engines.md 1(d)):
protocol/x/perpetuals/types/liquidity_tier_test.go and protocol/x/clob/keeper/liquidations_test.go
(perp BtcUsd_20PercentInitial_10PercentMaintenance at $50,000, a 0.1 BTC position).
"""

from __future__ import annotations

import pytest

from crossmargin import Account, CrossMarginError, Position, evaluate, parse_portfolio
from crossmargin.maths.dydx import (
    adjusted_initial_margin_fraction,
    adjusted_initial_margin_ppm,
    bankruptcy_price,
    bankruptcy_quote,
    fillable_price,
    initial_margin_quote,
    maintenance_margin_ppm,
)
from crossmargin.rules import load_rulebook


@pytest.mark.parametrize(
    ("imf", "fraction", "expected"),
    [(150_000, 800_000, 120_000), (450_000, 770_000, 346_500), (637_239, 289_284, 184_343)],
)
def test_maintenance_fraction_truncates(imf: int, fraction: int, expected: int) -> None:
    """TestLiquidityTierGetMaintenanceMarginPpm."""
    assert maintenance_margin_ppm(imf, fraction) == expected


@pytest.mark.parametrize(
    ("notional", "imf", "expected"),
    [(500_000, 200_000, 100_000), (1, 100_000, 1), (123_456, 567_243, 70_030)],
)
def test_initial_margin_rounds_up(notional: int, imf: int, expected: int) -> None:
    """TestGetInitialMarginQuoteQuantums (no open-interest scaling)."""
    assert initial_margin_quote(notional, imf) == expected


@pytest.mark.parametrize(
    ("oi", "lower", "upper", "expected"),
    [
        (0, 1_000_000, 2_000_000, 200_000),
        (1_500_000, 1_000_000, 2_000_000, 600_000),
        (1_234_567, 1_000_000, 2_000_000, 387_653),
        (2_000_000, 1_000_000, 2_000_000, 1_000_000),
        (2_500_000, 1_000_000, 2_000_000, 1_000_000),
        (1_500_000, 0, 0, 200_000),
    ],
)
def test_open_interest_scaled_imf(oi: int, lower: int, upper: int, expected: int) -> None:
    """TestGetAdjustedInitialMarginPpm: base IMF 20%."""
    assert adjusted_initial_margin_ppm(200_000, oi, lower, upper) == expected
    assert adjusted_initial_margin_fraction(0.2, oi, lower, upper) == pytest.approx(
        expected / 1e6, abs=1e-6
    )


@pytest.mark.parametrize(
    ("lower", "upper", "oi", "expected"),
    [
        (1_000_000_000_000, 2_000_000_000_000, 1_500_000_000_000, 300_000),
        (25_000_000_000_000, 60_000_000_000_000, 28_123_456_789_123, 135_697),
    ],
)
def test_initial_margin_at_open_interest(lower: int, upper: int, oi: int, expected: int) -> None:
    """TestGetInitialMarginQuoteQuantums with OI caps: base 20%, notional 500,000 quantums."""
    imf = adjusted_initial_margin_ppm(200_000, oi, lower, upper)
    assert initial_margin_quote(500_000, imf) == expected


def test_bundled_small_cap_market_scales_initial_margin_with_open_interest() -> None:
    """Small-Cap tier (genesis.sh): IMF 10%, OI caps 20M-50M USDC. At 35M of open interest the
    IMF is 0.1 + 0.9 x 15/30 = 55%; maintenance (5%) does not scale."""
    book = load_rulebook("dydx-v4")
    account = Account("d", {"USDC": 10_000.0}, [Position("SOL-USD", 100.0, 150.0)])
    plain = evaluate(account, book.market({"SOL-USD": 150.0}))
    scaled = evaluate(account, book.market({"SOL-USD": 150.0}, open_interest={"SOL-USD": 35e6}))
    assert plain.initial_margin == pytest.approx(15_000 * 0.10)
    assert scaled.initial_margin == pytest.approx(15_000 * 0.55)
    assert scaled.maintenance_margin == plain.maintenance_margin == pytest.approx(750.0)


# TestGetBankruptcyPriceInQuoteQuantums: TNC = USDC + 0.1 x 50,000; the position's MMR is
# 10% of 5,000 = 500 and it is the account's only one (TMMR 500).
@pytest.mark.parametrize(
    ("qty", "usdc", "delta", "mmr_after", "quote"),
    [
        (0.1, -4_501.0, -0.1, 0.0, 4_501.0),
        (-0.1, 5_499.0, 0.1, 0.0, -5_499.0),
        (0.1, -5_000.0, -0.05, 250.0, 2_500.0),
        (0.1, -5_100.0, -0.1, 0.0, 5_100.0),
    ],
)
def test_bankruptcy_quote(
    qty: float, usdc: float, delta: float, mmr_after: float, quote: float
) -> None:
    tnc = usdc + qty * 50_000.0
    assert bankruptcy_quote(delta, 50_000.0, tnc, 500.0, 500.0, mmr_after) == pytest.approx(quote)


def test_bankruptcy_price_leaves_remaining_positions_their_share() -> None:
    """Closing all of the long with USDC -4,501: 4,501 for 0.1 BTC, a price of 45,010."""
    assert bankruptcy_price(-0.1, 50_000.0, 499.0, 500.0, 500.0, 0.0) == pytest.approx(45_010.0)


@pytest.mark.parametrize(
    ("qty", "usdc", "adjustment", "spread", "expected"),
    [
        (0.1, -4_501.0, 1.0, 0.1, 49_999.0),
        (0.1, -4_501.0, 2.0, 0.1, 49_998.0),
        (0.1, -4_501.0, 1.0, 0.2, 49_998.0),
        (-0.1, 5_499.0, 1.0, 0.1, 50_001.0),
    ],
)
def test_fillable_price(
    qty: float, usdc: float, adjustment: float, spread: float, expected: float
) -> None:
    """TestGetFillablePrice: ABR = 1 x (1 - 499/500) = 0.002; 0.002 x 0.1 x 500 = 0.1 USDC off
    5,000, so (5,000 - 0.1) / 0.1 = 49,999."""
    tnc = usdc + qty * 50_000.0
    price = fillable_price(qty, 50_000.0, 500.0, tnc, 500.0, adjustment, spread)
    assert price == pytest.approx(expected)


def _document(open_interest: dict[str, object]) -> dict[str, object]:
    return {
        "rulebook": "dydx-v4",
        "prices": {"SOL-USD": 150.0},
        "open_interest": open_interest,
        "accounts": [
            {
                "id": "d",
                "balances": {"USDC": 10_000.0},
                "positions": [{"symbol": "SOL-USD", "qty": 100.0, "entry_price": 150.0}],
            }
        ],
    }


@pytest.mark.parametrize("key", ["SOL-USD", "SOL/USDC:USDC"])
def test_a_document_gives_open_interest_by_market_or_unified_symbol(key: str) -> None:
    """The Small-Cap case above from a document: 35M USDC of open interest, IMF 55%, keyed by
    the market or by ccxt's unified symbol of it (ccxt's dydx names markets BASE/USDC:USDC)."""
    portfolio = parse_portfolio(_document({key: 35e6}))
    health = evaluate(portfolio.accounts[0], portfolio.market)
    assert health.initial_margin == pytest.approx(15_000 * 0.55)
    assert health.maintenance_margin == pytest.approx(750.0)


@pytest.mark.parametrize(
    ("lower", "upper", "oi", "expected"),
    [
        (1_000_000_000_000, 2_000_000_000_000, 1_500_000_000_000, 300_000),
        (25_000_000_000_000, 60_000_000_000_000, 28_123_456_789_123, 135_697),
    ],
)
def test_open_interest_caps_of_a_document_market(
    lower: int, upper: int, oi: int, expected: int
) -> None:
    """TestGetInitialMarginQuoteQuantums with OI caps through a document: a market of base IMF
    20% with the vector's caps, a position of 500,000 (USDC standing in for quantums; the
    chain rounds the IM up to a whole quantum)."""
    market = {
        "symbol": "TEST-USD",
        "underlying": "TEST",
        "quote": "USDC",
        "max_leverage": 5,
        "initial_margin_rate": 0.2,
        "maintenance_margin_rate": 0.1,
        "open_interest_lower_cap": lower,
        "open_interest_upper_cap": upper,
    }
    doc = {
        "rulebook": "dydx-v4",
        "prices": {"TEST-USD": 1.0},
        "instruments": [market],
        "open_interest": {"TEST-USD": oi},
        "accounts": [
            {
                "id": "d",
                "balances": {"USDC": 1e6},
                "positions": [{"symbol": "TEST-USD", "qty": 500_000.0, "entry_price": 1.0}],
            }
        ],
    }
    portfolio = parse_portfolio(doc)
    (row,) = evaluate(portfolio.accounts[0], portfolio.market).positions
    assert expected - 1 < row.initial_margin <= expected + 1e-6


@pytest.mark.parametrize(
    ("open_interest", "path", "reason"),
    [
        ({"PEPE-USD": 1.0}, "open_interest.PEPE-USD", "unknown instrument 'PEPE-USD'"),
        ({"SOL-USD": -1.0}, "open_interest.SOL-USD", "must be >= 0"),
        ({"SOL-USD": "many"}, "open_interest.SOL-USD", "must be a"),
    ],
)
def test_bad_open_interest_names_the_field(
    open_interest: dict[str, object], path: str, reason: str
) -> None:
    with pytest.raises(CrossMarginError) as caught:
        parse_portfolio(_document(open_interest))
    assert caught.value.path == path
    assert caught.value.reason.startswith(reason)
