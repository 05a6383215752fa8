"""Deribit standard margin of the inverse (coin-settled) futures, from the bundled
``deribit-inverse`` rulebook.

Sources:
- support.deribit.com article 25944826427293 ("11 January 2022"): BTC IM 2% + 0.005% per BTC of
  position, MM 1% + 0.005% per BTC; ETH IM 2% + 0.0004% per ETH, MM 1% + 0.0004% per ETH.
- support.deribit.com article 25944738177565 (Linear Perpetual) works the same BTC ramp in BTC at
  BTC = 100,000: 25 BTC -> IM 2.125% = 0.53125 BTC, MM 1.125% = 0.28125 BTC; 350 BTC -> IM 3.75%
  = 13.125 BTC.
- docs.deribit.com public/get_instruments (response example): BTC-PERPETUAL and the dated
  BTC-29SEP23 are inverse ("reversed") with contract_size 10 (USD).
"""

from __future__ import annotations

import pytest

from crossmargin import Account, Position, evaluate
from crossmargin.model import Market
from crossmargin.rules import load_rulebook

BTC = 100_000.0


def _market(symbol: str, mark: float, currency: str) -> Market:
    rules = load_rulebook("deribit-inverse")
    underlying = rules.instruments[symbol].underlying
    return rules.market({symbol: mark, underlying: mark}, currency=currency)


@pytest.mark.parametrize(
    ("symbol", "coins", "im", "mm"),
    [
        ("BTC-PERPETUAL", 25.0, 0.53125, 0.28125),
        ("BTC-PERPETUAL", -350.0, 13.125, 350.0 * 0.0275),
        ("BTC-26MAR27", 25.0, 0.53125, 0.28125),
    ],
)
def test_btc_inverse_futures_published_ramp(
    symbol: str, coins: float, im: float, mm: float
) -> None:
    """A position of ``coins`` BTC (contracts of 10 USD at 100,000) needs the article's BTC IM
    and MM; 350 BTC's MM (2.75%) is the same formula's (not printed in the article)."""
    contracts = coins * BTC / 10.0
    market = _market(symbol, BTC, "BTC")
    account = Account("d", {"BTC": 1_000.0}, [Position(symbol, contracts, BTC)])
    (row,) = evaluate(account, market).positions
    assert row.notional == pytest.approx(abs(coins), rel=1e-12)
    assert row.initial_margin == pytest.approx(im, rel=1e-12)
    assert row.maintenance_margin == pytest.approx(mm, rel=1e-12)


@pytest.mark.parametrize("coins", [0.5, 1_000.0, -12_345.0])
def test_eth_inverse_perpetual_rates(coins: float) -> None:
    """ETH-PERPETUAL (1 USD contracts): IM = (2% + 0.0004% x size) x size and MM = (1% +
    0.0004% x size) x size, in ETH, computed here from the article's rates."""
    eth = 3_000.0
    market = _market("ETH-PERPETUAL", eth, "ETH")
    account = Account("e", {"ETH": 100_000.0}, [Position("ETH-PERPETUAL", coins * eth, eth)])
    (row,) = evaluate(account, market).positions
    size = abs(coins)
    assert row.initial_margin == pytest.approx((0.02 + 0.000004 * size) * size, rel=1e-12)
    assert row.maintenance_margin == pytest.approx((0.01 + 0.000004 * size) * size, rel=1e-12)


def test_bundled_contract_specifications() -> None:
    """Perpetuals and dated futures of BTC (10 USD) and ETH (1 USD), inverse, settled in coin;
    the dated ones expire on a Friday."""
    instruments = load_rulebook("deribit-inverse").instruments
    for symbol in ("BTC-PERPETUAL", "ETH-PERPETUAL", "BTC-25DEC26", "ETH-24SEP27"):
        inst = instruments[symbol]
        assert inst.inverse and inst.settle == inst.underlying
        assert inst.contract_size == (10.0 if inst.underlying == "BTC" else 1.0)
    assert instruments["BTC-25DEC26"].expiry == "2026-12-25"
    assert instruments["BTC-PERPETUAL"].expiry is None
