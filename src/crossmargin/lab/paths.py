"""Correlated price paths for Monte Carlo: a Merton jump-diffusion calibrated to the bundled
history, or a block bootstrap of that history's real returns.

History: Binance BTC/USDT and ETH/USDT 2-hour closes (``crossmargin/data``). A path set for
several underlyings uses the bars they share (BTC with ETH: the ETH sample's 1,000 bars); BTC
alone uses 2017-2025. An underlying without bundled history follows the ETH path (ETH is the
most volatile series bundled) and is named as a proxy.

Calibration (:meth:`JumpModel.calibrate`), a simple threshold method: a bar is a jump bar when
any asset's log return lies more than ``threshold`` robust deviations (1.4826 x the median
absolute deviation) from its median. The jump rate is jump bars per year (jumps hit every
asset at once); each asset's jump size is normal in log price with the mean and standard
deviation of its jump-bar returns; the diffusion volatility and the correlation (of the
diffusion and of jump sizes alike) come from the other bars. The drift is compensated so the
price is a martingale at ``drift = 0`` (E[S_t] = S_0 e^{drift t}).

Bootstrap (:class:`BootstrapModel`): each path is a chain of blocks of consecutive bars drawn
with replacement, every asset's return from the same bar, so correlation, fat tails and
volatility clusters within a block are kept; a step sums ``k`` bars (a step must be a whole
number of bars).

Paths come in chunks of :data:`CHUNK` paths, chunk ``c`` drawn from its own generator spawned
from the seed, so one seed gives the same paths whatever consumes them and memory stays
bounded at one chunk (paths x steps x assets floats).
"""

from __future__ import annotations

import csv
import gzip
import io
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from crossmargin.model import CrossMarginError

__all__ = [
    "BARS_PER_YEAR",
    "BAR_SECONDS",
    "CHUNK",
    "MODELS",
    "YEAR_SECONDS",
    "BootstrapModel",
    "History",
    "JumpModel",
    "PathModel",
    "bundled_history",
    "bundled_model",
    "chunk_count",
    "growth_chunk",
    "growth_chunks",
    "parse_horizon",
]

Float = NDArray[np.float64]

BAR_SECONDS = 7200.0
YEAR_SECONDS = 365.0 * 86400.0
BARS_PER_YEAR = YEAR_SECONDS / BAR_SECONDS
CHUNK = 1024
"""Paths per chunk: each chunk has its own generator, so results do not depend on batching."""

_FILES = {"BTC": "btc_usdt_2h_2017-2025.csv.gz", "ETH": "eth_usdt_2h_2025-05.csv"}
_PROXY = "ETH"


@cache
def _closes(asset: str) -> tuple[tuple[str, ...], Float]:
    """Timestamps and closes of the bundled 2-hour series of ``asset``."""
    name = _FILES[asset]
    raw = resources.files("crossmargin.data").joinpath(name).read_bytes()
    text = gzip.decompress(raw).decode() if name.endswith(".gz") else raw.decode()
    rows = [r for r in csv.DictReader(io.StringIO(text)) if r["close"] != "close"]
    stamps = tuple(r["timestamp"] for r in rows)
    return stamps, np.array([float(r["close"]) for r in rows], dtype=np.float64)


@dataclass(frozen=True)
class History:
    """Joint 2-hour log returns (bars, assets) of the bundled series ``assets`` on the bars
    they share, the series each underlying follows (``sources``: itself or the proxy), and
    the span (first and last bar)."""

    assets: tuple[str, ...]
    returns: Float
    sources: Mapping[str, str]
    span: tuple[str, str]


def bundled_history(assets: Sequence[str]) -> History:
    """The bundled history of underlyings ``assets`` (e.g. ``("BTC", "SOL")``: the BTC and
    ETH series, SOL following ETH)."""
    if not assets:
        raise CrossMarginError("underlyings", "need at least one")
    sources = {a: a if a in _FILES else _PROXY for a in assets}
    series = sorted(set(sources.values()))
    stamps = [_closes(s)[0] for s in series]
    common = sorted(set(stamps[0]).intersection(*stamps[1:]))
    picked: dict[str, Float] = {}
    for s, st in zip(series, stamps, strict=True):
        where = {t: k for k, t in enumerate(st)}
        idx = np.array([where[t] for t in common], dtype=np.intp)
        picked[s] = _closes(s)[1][idx]
    # Bars two hours apart only: a gap in either series does not make one long return.
    times = np.array([datetime.fromisoformat(t).timestamp() for t in common])
    contiguous = np.diff(times) == BAR_SECONDS
    returns = np.column_stack([np.diff(np.log(picked[s]))[contiguous] for s in series]).astype(
        np.float64
    )
    return History(tuple(series), returns, sources, (common[0], common[-1]))


def parse_horizon(text: str) -> float:
    """A horizon such as ``12h``, ``30d`` or ``2w`` (a bare number: days) in years."""
    units = {"h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}
    value, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "d")
    try:
        amount = float(value)
    except ValueError:
        raise CrossMarginError("horizon", f"not a duration like 12h, 30d or 2w: {text!r}") from None
    if not (math.isfinite(amount) and amount > 0.0):
        raise CrossMarginError("horizon", f"must be positive, got {text!r}")
    return amount * units[unit] / YEAR_SECONDS


class PathModel(Protocol):
    """A model of log returns of ``assets`` over steps of ``dt`` years."""

    @property
    def assets(self) -> tuple[str, ...]: ...

    def log_returns(self, rng: np.random.Generator, paths: int, steps: int, dt: float) -> Float: ...


@dataclass(frozen=True)
class JumpModel:
    """Merton jump-diffusion per asset, correlated: annual diffusion volatility ``sigma``,
    common jump ``jump_rate`` per year, normal log jump sizes (``jump_mean``, ``jump_std``),
    one ``correlation`` matrix for the diffusion and the jump sizes, annual price ``drift``.
    A GBM is a model with ``jump_rate`` 0."""

    assets: tuple[str, ...]
    sigma: Float
    jump_rate: float
    jump_mean: Float
    jump_std: Float
    correlation: Float
    drift: float = 0.0

    def __post_init__(self) -> None:
        n = len(self.assets)
        for name in ("sigma", "jump_mean", "jump_std"):
            if np.shape(getattr(self, name)) != (n,):
                raise CrossMarginError(name, f"need one value per asset ({n})")
        if np.shape(self.correlation) != (n, n):
            raise CrossMarginError("correlation", f"need a {n} x {n} matrix")
        if not (np.all(self.sigma >= 0) and np.all(self.jump_std >= 0) and self.jump_rate >= 0):
            raise CrossMarginError("sigma", "volatilities and the jump rate must be >= 0")

    @classmethod
    def gbm(cls, asset: str, sigma: float, drift: float = 0.0) -> JumpModel:
        """A geometric Brownian motion of one asset (no jumps)."""
        return cls((asset,), np.array([sigma]), 0.0, np.zeros(1), np.zeros(1), np.eye(1), drift)

    @classmethod
    def calibrate(cls, history: History, threshold: float = 4.0) -> JumpModel:
        """The threshold calibration of the module docstring on 2-hour ``history``."""
        r = history.returns
        median = np.median(r, axis=0)
        scale = 1.4826 * np.median(np.abs(r - median), axis=0)
        jumps = (np.abs(r - median) > threshold * scale).any(axis=1)
        calm = r[~jumps]
        years = len(r) / BARS_PER_YEAR
        hit = r[jumps]
        n = len(history.assets)
        correlation = np.corrcoef(calm, rowvar=False).reshape(n, n) if n > 1 else np.eye(1)
        return cls(
            history.assets,
            calm.std(axis=0, ddof=1) * math.sqrt(BARS_PER_YEAR),
            float(jumps.sum() / years),
            hit.mean(axis=0) if len(hit) else np.zeros(n),
            hit.std(axis=0, ddof=1) if len(hit) > 1 else np.zeros(n),
            correlation,
        )

    def log_returns(self, rng: np.random.Generator, paths: int, steps: int, dt: float) -> Float:
        """Log returns (paths, steps, assets) over steps of ``dt`` years."""
        chol = np.linalg.cholesky(self.correlation + 1e-12 * np.eye(len(self.assets)))
        kappa = np.exp(self.jump_mean + 0.5 * self.jump_std**2) - 1.0
        mean = (self.drift - 0.5 * self.sigma**2 - self.jump_rate * kappa) * dt
        z = rng.standard_normal((paths, steps, len(self.assets))) @ chol.T
        out: Float = mean + self.sigma * math.sqrt(dt) * z
        if self.jump_rate > 0.0:
            count = rng.poisson(self.jump_rate * dt, (paths, steps)).astype(np.float64)
            zj = rng.standard_normal((paths, steps, len(self.assets))) @ chol.T
            out += (
                count[..., None] * self.jump_mean + np.sqrt(count)[..., None] * self.jump_std * zj
            )
        return out


@dataclass(frozen=True)
class BootstrapModel:
    """Block bootstrap of ``history``: blocks of ``block`` consecutive 2-hour bars."""

    history: History
    block: int = 12

    def __post_init__(self) -> None:
        if not 1 <= self.block <= len(self.history.returns):
            raise CrossMarginError("block", f"must be 1 to {len(self.history.returns)} bars")

    @property
    def assets(self) -> tuple[str, ...]:
        return self.history.assets

    def log_returns(self, rng: np.random.Generator, paths: int, steps: int, dt: float) -> Float:
        """Log returns (paths, steps, assets); ``dt`` must be a whole number of bars."""
        bars = dt * YEAR_SECONDS / BAR_SECONDS
        k = round(bars)
        if k < 1 or abs(bars - k) > 1e-6 * bars:
            raise CrossMarginError(
                "steps", f"the bootstrap needs steps of whole 2-hour bars, got {bars:.4g} bars"
            )
        r = self.history.returns
        need = steps * k
        blocks = -(-need // self.block)
        starts = rng.integers(0, len(r) - self.block + 1, (paths, blocks))
        idx = (starts[..., None] + np.arange(self.block)).reshape(paths, -1)[:, :need]
        out: Float = r[idx].reshape(paths, steps, k, len(self.assets)).sum(axis=2)
        return out


def chunk_count(paths: int, steps: int) -> int:
    """Chunks of :data:`CHUNK` paths a run of ``paths`` paths has (bad counts refused)."""
    if paths < 1:
        raise CrossMarginError("paths", f"must be >= 1, got {paths}")
    if steps < 1:
        raise CrossMarginError("steps", f"must be >= 1, got {steps}")
    return -(-paths // CHUNK)


def growth_chunk(
    model: PathModel, paths: int, steps: int, horizon: float, seed: int, chunk: int
) -> Float:
    """Price relatives S_t / S_0 (chunk paths, steps, assets) at the end of each step of chunk
    ``chunk`` of a run of ``paths`` paths over ``horizon`` years."""
    chunks = chunk_count(paths, steps)
    child = np.random.SeedSequence(seed).spawn(chunks)[chunk]
    size = min(CHUNK, paths - chunk * CHUNK)
    r = model.log_returns(np.random.default_rng(child), size, steps, horizon / steps)
    out: Float = np.exp(np.cumsum(r, axis=1))
    return out


def growth_chunks(
    model: PathModel, paths: int, steps: int, horizon: float, seed: int
) -> Iterator[Float]:
    """Every chunk of :func:`growth_chunk` in turn."""
    for c in range(chunk_count(paths, steps)):
        yield growth_chunk(model, paths, steps, horizon, seed, c)


MODELS = ("jump", "bootstrap")


def bundled_model(kind: str, assets: Sequence[str], block: int = 12) -> tuple[PathModel, History]:
    """The ``jump`` (calibrated) or ``bootstrap`` model of ``assets`` on the bundled history,
    with that history."""
    history = bundled_history(assets)
    if kind == "jump":
        return JumpModel.calibrate(history), history
    if kind == "bootstrap":
        return BootstrapModel(history, block), history
    raise CrossMarginError("model", f"one of {', '.join(MODELS)}, got {kind!r}")
