"""Stress paths: real windows and hypothetical grids, and the market prices at each step.

A :class:`Shock` moves a market away from its current prices: BTC (the driver) by the factor
``driver``, every other non-stable asset by ``others`` or, when that is ``None``, by
``driver ** beta`` (log-returns ``beta`` times BTC's, correlation one: a crash moves the whole
book together), depegged stablecoins to ``stable`` (USD) and option vols times ``vol``. An
instrument's mark moves with its underlying and against its quote currency (a USDT depeg to
0.9 lifts BTCUSDT by 1/0.9, BTC's USD price unchanged). :func:`shocked_market` gives the
:class:`~crossmargin.model.Market` (and option data) the core engine evaluates at a step.

Betas (``DEFAULT_BETAS``): BTC 1; ETH 1.5, the regression slope of ETH/USDT on BTC/USDT 2-hour
log-returns over the bundled 2025-05 to 2025-07 candles (1,000 bars, correlation 0.76);
any other coin ``ALT_BETA`` = 1.5, ETH's figure standing in for the altcoins.

A :class:`StressPath` is a named sequence of shocks; ``lag`` > 0 makes it a stale oracle: the
engine sees the true path ``lag`` steps late, so a liquidation it triggers executes ``lag``
steps after the true price crossed (at that later true price).

Grids (one-step paths):

- ``price-vol``: BTC -50% to +50% (others by beta), option vols x0.8/x1/x1.5/x2 when the book
  holds options;
- ``correlation``: BTC and the other coins apart (BTC +20% with others -30%, BTC -20% with
  others +30%, each alone);
- ``depeg``: each priced stablecoin at 0.97, 0.90 and 0.80 USD (USDC traded at 0.88 on
  2023-03-11; UST lost its peg in 2022-05);
- ``stale-oracle``: the 2020-03-12 window with the mark 1, 3 and 6 points late (a point is a
  third of a 2-hour candle).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType

from crossmargin.lab.windows import window_path
from crossmargin.model import CrossMarginError, Market, OptionData

__all__ = [
    "ALT_BETA",
    "DEFAULT_BETAS",
    "DRIVER",
    "GRIDS",
    "STABLECOINS",
    "Shock",
    "StressPath",
    "depeg_grid",
    "grid_paths",
    "shocked_market",
    "shocked_options",
    "stablecoins",
    "window_stress_path",
]

DRIVER = "BTC"
ALT_BETA = 1.5
DEFAULT_BETAS: Mapping[str, float] = MappingProxyType({"BTC": 1.0, "ETH": 1.5})
STABLECOINS = frozenset({"USD", "USDT", "USDC", "FDUSD", "BUSD", "DAI", "TUSD", "USDE", "PYUSD"})
"""Cash-like assets: they do not follow the driver, only a depeg moves them."""

GRIDS = ("price-vol", "correlation", "depeg", "stale-oracle")
PRICE_MOVES = (-0.5, -0.3, -0.2, -0.1, 0.1, 0.2, 0.3, 0.5)
VOL_FACTORS = (0.8, 1.0, 1.5, 2.0)
DEPEG_PRICES = (0.97, 0.90, 0.80)
STALE_LAGS = (1, 3, 6)
STALE_WINDOW = "2020-03-12"


@dataclass(frozen=True)
class Shock:
    """One step: BTC's price factor, the other coins' factor (``None``: by beta), the USD price
    of the depegged stablecoins and the factor on option vols."""

    driver: float = 1.0
    others: float | None = None
    stable: float = 1.0
    vol: float = 1.0

    def __post_init__(self) -> None:
        for name in ("driver", "others", "stable", "vol"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0.0):
                raise CrossMarginError(f"shock.{name}", f"must be a positive number, got {value}")


@dataclass(frozen=True)
class StressPath:
    """A named path of shocks (``kind``: ``window`` or a grid name); ``depegged`` lists the
    stablecoins ``Shock.stable`` prices; ``lag`` steps of oracle delay (see the module)."""

    name: str
    kind: str
    description: str
    shocks: tuple[Shock, ...]
    depegged: tuple[str, ...] = ()
    lag: int = 0
    times: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.shocks:
            raise CrossMarginError(f"paths.{self.name}", "needs at least one step")
        if self.lag < 0:
            raise CrossMarginError(f"paths.{self.name}.lag", "must be >= 0")

    @property
    def steps(self) -> int:
        return len(self.shocks)

    def at_lag(self, lag: int, name: str, kind: str, description: str) -> StressPath:
        """The same true path seen ``lag`` steps late."""
        return replace(self, name=name, kind=kind, description=description, lag=lag)


def _beta(asset: str, betas: Mapping[str, float]) -> float:
    return betas.get(asset, ALT_BETA)


def _is_stable(market: Market, asset: str) -> bool:
    if asset in STABLECOINS:
        return True
    rule = market.collateral.get(asset)
    return rule is not None and rule.stable


def _factor(
    market: Market, asset: str, shock: Shock, depegged: Sequence[str], betas: Mapping[str, float]
) -> float:
    """How much ``asset``'s USD price moves under ``shock``."""
    if asset in depegged:
        return shock.stable / market.asset_price(asset) if asset in market.prices else shock.stable
    if _is_stable(market, asset):
        return 1.0
    if asset == DRIVER:
        return shock.driver
    if shock.others is not None:
        return shock.others
    return float(shock.driver ** _beta(asset, betas))


def stablecoins(market: Market) -> tuple[str, ...]:
    """The stablecoins a depeg can move: priced assets that are cash-like (USD itself is the
    numeraire and never depegs)."""
    return tuple(
        a
        for a in market.prices
        if a not in market.instruments and a != "USD" and _is_stable(market, a)
    )


def shocked_market(
    market: Market,
    shock: Shock,
    depegged: Sequence[str] = (),
    betas: Mapping[str, float] = DEFAULT_BETAS,
) -> Market:
    """``market`` with every price moved by ``shock`` (see the module docstring)."""
    prices: dict[str, float] = {}
    for key, price in market.prices.items():
        instrument = market.instruments.get(key)
        if instrument is None:
            prices[key] = price * _factor(market, key, shock, depegged, betas)
        else:
            up = _factor(market, instrument.underlying, shock, depegged, betas)
            quote = _factor(market, instrument.quote, shock, depegged, betas)
            prices[key] = price * up / quote
    return market.with_prices(prices)


def shocked_options(options: OptionData | None, shock: Shock) -> OptionData | None:
    """Option data with every vol (by symbol and the ATM of every surface) times ``shock.vol``."""
    if options is None or shock.vol == 1.0:
        return options
    m = shock.vol
    return replace(
        options,
        vols={s: v * m for s, v in options.vols.items()},
        surfaces={
            u: replace(s, atm=tuple(v * m for v in s.atm)) for u, s in options.surfaces.items()
        },
    )


def window_stress_path(name: str) -> StressPath:
    """A real window (see :mod:`crossmargin.lab.windows`) as a path of BTC factors."""
    path = window_path(name)
    return StressPath(
        name,
        "window",
        f"{path.window.description}; BTC {100 * path.low:+.1f}% at the low",
        tuple(Shock(f) for f in path.factors),
        times=path.times,
    )


def _pct(x: float) -> str:
    return f"{100 * (x - 1.0):+.0f}%"


def _price_vol(options: bool) -> list[StressPath]:
    vols = VOL_FACTORS if options else (1.0,)
    out = []
    for move in PRICE_MOVES:
        for vol in vols:
            label = f"BTC {100 * move:+.0f}%" + (f" vol x{vol:g}" if options else "")
            out.append(
                StressPath(
                    label,
                    "price-vol",
                    "every coin by beta" + (", option vols scaled" if options else ""),
                    (Shock(1.0 + move, vol=vol),),
                )
            )
    return out


def _correlation() -> list[StressPath]:
    pairs = ((1.2, 0.7), (0.8, 1.3), (1.0, 0.7), (1.0, 1.3), (0.8, 1.0), (1.2, 1.0))
    return [
        StressPath(
            f"BTC {_pct(btc)} others {_pct(others)}",
            "correlation",
            "BTC and the other coins move apart",
            (Shock(btc, others),),
        )
        for btc, others in pairs
    ]


def depeg_grid(coins: Sequence[str]) -> list[StressPath]:
    """Each of ``coins`` alone at each depeg price."""
    return [
        StressPath(
            f"{coin} at {price:.2f}",
            "depeg",
            f"{coin} trades at {price:.2f} USD, every coin's USD price unchanged",
            (Shock(stable=price),),
            depegged=(coin,),
        )
        for coin in coins
        for price in DEPEG_PRICES
    ]


def _stale() -> list[StressPath]:
    window = window_stress_path(STALE_WINDOW)
    return [
        window.at_lag(
            lag,
            f"{STALE_WINDOW} mark {lag} late",
            "stale-oracle",
            f"the {STALE_WINDOW} window with the mark {lag} points behind the true price",
        )
        for lag in STALE_LAGS
    ]


def grid_paths(name: str, market: Market, options: bool) -> list[StressPath]:
    """The paths of grid ``name`` (one of :data:`GRIDS`) for a book in ``market``; ``options``
    adds the vol dimension to ``price-vol``."""
    if name == "price-vol":
        return _price_vol(options)
    if name == "correlation":
        return _correlation()
    if name == "depeg":
        return depeg_grid(stablecoins(market))
    if name == "stale-oracle":
        return _stale()
    raise CrossMarginError("grid", f"no grid {name!r}; have {', '.join(GRIDS)}")
