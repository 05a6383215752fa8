"""Domain types: immutable, validated on construction."""

from crossmargin.model.accounts import Account
from crossmargin.model.assets import CollateralRule
from crossmargin.model.errors import CrossMarginError
from crossmargin.model.instruments import Instrument, Kind, MarginSchedule, Tier, continuity_amounts
from crossmargin.model.market import Market
from crossmargin.model.options import OptionData, VolSurface
from crossmargin.model.positions import MarginMode, Order, Position

__all__ = [
    "Account",
    "CollateralRule",
    "CrossMarginError",
    "Instrument",
    "Kind",
    "MarginMode",
    "MarginSchedule",
    "Market",
    "OptionData",
    "Order",
    "Position",
    "Tier",
    "VolSurface",
    "continuity_amounts",
]
