"""Real stress windows: BTC price paths of five crash days from the bundled history.

Each window is a run of candles from the bundled data (``crossmargin/data``): Binance BTC/USDT
2-hour candles where they exist (2017-08 to 2025-08), the BTC/USD daily candles for the
2025-10-10 crash. A candle becomes three points, as the ledger replay walks it: the extreme met
first (a down candle visits its high first), the other extreme, the close. The path is given as
factors of the window's first open (``1.0`` = unchanged, ``0.6`` = 40% down), so it applies to
any book whatever its prices.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType

from crossmargin.model import CrossMarginError

__all__ = ["WINDOWS", "Window", "WindowPath", "window_path"]

TWO_HOUR = "btc_usdt_2h_2017-2025.csv.gz"
DAILY = "btc_usd_1d_2017-2025.csv"


@dataclass(frozen=True)
class Window:
    """A named crash: the UTC days it spans (inclusive), the bundled file and what happened."""

    name: str
    first_day: str
    last_day: str
    source: str
    description: str


WINDOWS: Mapping[str, Window] = MappingProxyType(
    {
        w.name: w
        for w in (
            Window(
                "2020-03-12",
                "2020-03-12",
                "2020-03-12",
                TWO_HOUR,
                "Black Thursday: COVID sell-off, BitMEX outage",
            ),
            Window(
                "2021-05-19",
                "2021-05-19",
                "2021-05-19",
                TWO_HOUR,
                "China mining ban sell-off, exchange outages",
            ),
            Window(
                "2022-11-09",
                "2022-11-08",
                "2022-11-09",
                TWO_HOUR,
                "FTX collapse (two days)",
            ),
            Window(
                "2024-08-05",
                "2024-08-05",
                "2024-08-05",
                TWO_HOUR,
                "Yen carry-trade unwind",
            ),
            Window(
                "2025-10-10",
                "2025-10-10",
                "2025-10-11",
                DAILY,
                "Tariff shock, record liquidations (daily candles)",
            ),
        )
    }
)
"""The bundled windows by name (the crash day)."""


@dataclass(frozen=True)
class WindowPath:
    """A window's BTC path: ``times`` (candle open, ISO text, one per point), ``prices`` (BTC,
    quote units) and ``factors`` (each price over ``start``, the first open)."""

    window: Window
    start: float
    times: tuple[str, ...]
    prices: tuple[float, ...]

    @property
    def factors(self) -> tuple[float, ...]:
        return tuple(p / self.start for p in self.prices)

    @property
    def low(self) -> float:
        """The lowest price over the window as a move from the first open (e.g. -0.44)."""
        return min(self.prices) / self.start - 1.0


def _rows(source: str) -> list[list[str]]:
    data = resources.files("crossmargin.data").joinpath(source)
    if source.endswith(".gz"):
        text = gzip.decompress(data.read_bytes()).decode()
    else:
        text = data.read_text()
    return list(csv.reader(io.StringIO(text)))[1:]


def window_path(name: str) -> WindowPath:
    """The path of window ``name`` (one of :data:`WINDOWS`)."""
    window = WINDOWS.get(name)
    if window is None:
        raise CrossMarginError("window", f"no window {name!r}; have {', '.join(WINDOWS)}")
    times: list[str] = []
    prices: list[float] = []
    start = None
    for row in _rows(window.source):
        day = row[0][:10]
        if not window.first_day <= day <= window.last_day:
            continue
        o, h, lo, c = (float(x) for x in row[1:5])
        if start is None:
            start = o
        first, second = (h, lo) if c < o else (lo, h)
        times.extend([row[0]] * 3)
        prices.extend((first, second, c))
    if start is None:
        raise CrossMarginError("window", f"no candles for {name} in {window.source}")
    return WindowPath(window, start, tuple(times), tuple(prices))
