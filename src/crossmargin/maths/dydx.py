"""dYdX v4 margin and liquidation formulas: liquidity-tier fractions, open-interest-scaled
initial margin, bankruptcy price and fillable (liquidation order) price.

Amounts are in USDC, sizes signed (> 0 long); ``notional`` is |size| x oracle price.

    MMF            = IMF x maintenance fraction
    IMF(OI)        = IMF                                        OI <= lower cap
                   = IMF + (1 - IMF) (OI - lower) / (upper - lower)
                   = 1                                          OI >= upper cap (upper 0: off)
    bankruptcy     = -dNNV - TNC x |dMMR| / TMMR   (quote received for a delta; d = after - before)
    fillable price = (PNNV - ABR x SMMR x PMMR) / PS,   ABR = clamp(BA (1 - TNC / TMMR), 0, 1)

TNC/TMMR are the account's net collateral and maintenance margin; PNNV, PMMR and PS the
position's signed notional, maintenance margin and signed size; BA the bankruptcy adjustment and
SMMR the spread-to-maintenance ratio (1.0 and 0.1 by default). The bankruptcy rule leaves every
remaining position its share of the net collateral in proportion to its maintenance margin.

Source: dydxprotocol/v4-chain, x/perpetuals/types/liquidity_tier.go and
x/clob/keeper/liquidations.go (engines.md 1(b)-(d)). On chain the fractions are integer ppm
(truncated) and quote amounts integer quantums (margins rounded up); the ``*_ppm`` helpers keep
that rounding, the rest work in floats.
"""

from __future__ import annotations

__all__ = [
    "adjusted_initial_margin_fraction",
    "adjusted_initial_margin_ppm",
    "bankruptcy_price",
    "bankruptcy_quote",
    "fillable_price",
    "initial_margin_quote",
    "maintenance_margin_ppm",
]

_PPM = 1_000_000


def maintenance_margin_ppm(initial_margin_ppm: int, maintenance_fraction_ppm: int) -> int:
    """Maintenance margin fraction in ppm: IMF x fraction, truncated."""
    return initial_margin_ppm * maintenance_fraction_ppm // _PPM


def adjusted_initial_margin_fraction(
    initial_fraction: float, open_interest: float, lower_cap: float, upper_cap: float
) -> float:
    """Initial margin fraction at ``open_interest`` (notional, USDC): linear from the tier's
    IMF at the lower cap to 1 at the upper cap; an upper cap of 0 turns the scaling off."""
    if upper_cap == 0.0 or open_interest <= lower_cap:
        return initial_fraction
    if open_interest >= upper_cap:
        return 1.0
    share = (open_interest - lower_cap) / (upper_cap - lower_cap)
    return initial_fraction + (1.0 - initial_fraction) * share


def adjusted_initial_margin_ppm(
    initial_margin_ppm: int, open_interest: int, lower_cap: int, upper_cap: int
) -> int:
    """:func:`adjusted_initial_margin_fraction` in integer ppm, truncated as on chain."""
    if upper_cap == 0 or open_interest <= lower_cap:
        return initial_margin_ppm
    if open_interest >= upper_cap:
        return _PPM
    step = (_PPM - initial_margin_ppm) * (open_interest - lower_cap) // (upper_cap - lower_cap)
    return initial_margin_ppm + step


def initial_margin_quote(notional_quantums: int, initial_margin_ppm: int) -> int:
    """Initial margin in quote quantums: notional x IMF, rounded up."""
    return -(-notional_quantums * initial_margin_ppm // _PPM)


def bankruptcy_quote(
    delta_qty: float,
    oracle: float,
    net_collateral: float,
    total_maintenance: float,
    maintenance_before: float,
    maintenance_after: float,
) -> float:
    """Quote the account receives (> 0) or pays for trading ``delta_qty`` at its bankruptcy
    price: -dNNV - TNC x |dMMR| / TMMR, with dNNV = delta_qty x oracle."""
    share = 0.0
    if total_maintenance > 0:
        share = net_collateral * abs(maintenance_after - maintenance_before) / total_maintenance
    return -delta_qty * oracle - share


def bankruptcy_price(
    delta_qty: float,
    oracle: float,
    net_collateral: float,
    total_maintenance: float,
    maintenance_before: float,
    maintenance_after: float,
) -> float:
    """Price per unit of :func:`bankruptcy_quote` (closing a long sells ``-delta_qty``)."""
    quote = bankruptcy_quote(
        delta_qty, oracle, net_collateral, total_maintenance, maintenance_before, maintenance_after
    )
    return -quote / delta_qty


def fillable_price(
    qty: float,
    oracle: float,
    position_maintenance: float,
    net_collateral: float,
    total_maintenance: float,
    bankruptcy_adjustment: float = 1.0,
    spread_to_maintenance: float = 0.1,
) -> float:
    """Limit price of the liquidation order for a position of signed ``qty``: the oracle price
    moved towards bankruptcy by ABR x SMMR x PMMR / |qty| (see the module docstring)."""
    if total_maintenance > 0:
        ratio = net_collateral / total_maintenance
        adjustment = min(max(bankruptcy_adjustment * (1.0 - ratio), 0.0), 1.0)
    else:
        adjustment = 0.0
    spread = adjustment * spread_to_maintenance * position_maintenance
    return (qty * oracle - spread) / qty
