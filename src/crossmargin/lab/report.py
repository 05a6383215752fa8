"""Offline reports: charts described once as data, drawn by plotly (HTML) and matplotlib (PNG).

A :class:`Chart` is a title, axis labels and a tuple of :class:`Series`; a series is a
``"line"``, a ``"band"`` (filled between ``y`` and ``upper``) or a ``"bar"`` (grouped with the
chart's other bars). The helpers build the lab's standard charts from plain arrays:

- :func:`equity_fan` - equity quantiles over time (bands 5-95% and 25-75%, the median line);
- :func:`liquidation_probability` - the probability of a first liquidation by each step,
  one line per strategy;
- :func:`loss_histogram` - the distribution of losses, one bar series per strategy;
- :func:`cascade_price_path` - prices step by step, one line per venue;
- :func:`venue_bars` - one bar group per metric, one bar per venue (or strategy).

A :class:`Report` holds a title and :class:`Section` items, each a heading with a chart, a
table (rows of plain values) and/or text. :func:`render_html` writes one self-contained page:
plotly.js is embedded inline once, so the file opens offline (no ``<script src>``);
:func:`write_report` saves it. :func:`export_png` draws one chart with matplotlib (no browser
or kaleido needed) and :func:`export_pngs` every chart of a report into a directory, for the
README.

plotly and matplotlib come with the ``lab`` and ``plots`` extras and are imported inside
:func:`~crossmargin.model.extras.needs_extra`, so a missing extra is one line, not a traceback.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from crossmargin.model.extras import needs_extra

__all__ = [
    "Chart",
    "Report",
    "Section",
    "Series",
    "cascade_price_path",
    "equity_fan",
    "export_png",
    "export_pngs",
    "liquidation_probability",
    "loss_histogram",
    "render_html",
    "to_plotly",
    "venue_bars",
    "write_report",
]

SeriesKind = Literal["line", "band", "bar"]
Cell = float | int | str | bool | None

_PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf")


@dataclass(frozen=True)
class Series:
    """One trace: ``x`` and ``y`` of equal length; a band fills from ``y`` up to ``upper``."""

    name: str
    x: tuple[float | str, ...]
    y: tuple[float, ...]
    kind: SeriesKind = "line"
    upper: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y):
            raise ValueError(f"series {self.name}: {len(self.x)} x values, {len(self.y)} y")
        if (self.kind == "band") != (self.upper is not None):
            raise ValueError(f"series {self.name}: a band (and only a band) has an upper edge")
        if self.upper is not None and len(self.upper) != len(self.y):
            raise ValueError(f"series {self.name}: upper edge and y differ in length")


@dataclass(frozen=True)
class Chart:
    """A titled chart; ``slug`` names its PNG file (``<slug>.png``)."""

    slug: str
    title: str
    x_label: str
    y_label: str
    series: tuple[Series, ...]

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", self.slug):
            raise ValueError(f"chart slug {self.slug!r}: lower-case letters, digits, - and _")


@dataclass(frozen=True)
class Section:
    """A report section: a heading and any of a chart, a table (rows with the same keys) and
    a paragraph of text."""

    heading: str
    chart: Chart | None = None
    rows: tuple[Mapping[str, Cell], ...] = ()
    text: str = ""


@dataclass(frozen=True)
class Report:
    """A page: its title, a one-line subtitle (inputs, seed, rulebook) and the sections."""

    title: str
    sections: tuple[Section, ...]
    subtitle: str = ""
    charts: tuple[Chart, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        charts = tuple(s.chart for s in self.sections if s.chart is not None)
        slugs = [c.slug for c in charts]
        if len(set(slugs)) != len(slugs):
            raise ValueError(f"report {self.title}: chart slugs repeat: {slugs}")
        object.__setattr__(self, "charts", charts)


def _floats(values: npt.ArrayLike) -> tuple[float, ...]:
    return tuple(float(v) for v in np.asarray(values, dtype=np.float64).ravel())


def _xs(values: Sequence[float | str] | npt.NDArray[Any]) -> tuple[float | str, ...]:
    return tuple(v if isinstance(v, str) else float(v) for v in values)


def equity_fan(
    x: Sequence[float] | npt.NDArray[Any],
    paths: npt.ArrayLike,
    *,
    title: str = "Equity fan",
    x_label: str = "step",
    y_label: str = "equity",
    slug: str = "equity-fan",
) -> Chart:
    """Quantiles of equity over ``paths`` (shape paths x len(x)): the 5-95% and 25-75% bands
    and the median."""
    values = np.asarray(paths, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != len(x):
        raise ValueError(f"paths must be (paths, {len(x)}), got {values.shape}")
    q05, q25, q50, q75, q95 = np.quantile(values, [0.05, 0.25, 0.5, 0.75, 0.95], axis=0)
    xs = _xs(x)
    return Chart(
        slug,
        title,
        x_label,
        y_label,
        (
            Series("5-95%", xs, _floats(q05), "band", _floats(q95)),
            Series("25-75%", xs, _floats(q25), "band", _floats(q75)),
            Series("median", xs, _floats(q50)),
        ),
    )


def liquidation_probability(
    x: Sequence[float] | npt.NDArray[Any],
    probabilities: Mapping[str, npt.ArrayLike],
    *,
    title: str = "Probability of a liquidation by each step",
    x_label: str = "step",
    slug: str = "liquidation-probability",
) -> Chart:
    """One line per strategy (cross, isolated, PM ...): the fraction of paths liquidated at
    or before each ``x``."""
    xs = _xs(x)
    return Chart(
        slug,
        title,
        x_label,
        "probability",
        tuple(Series(name, xs, _floats(p)) for name, p in probabilities.items()),
    )


def loss_histogram(
    losses: Mapping[str, npt.ArrayLike],
    *,
    bins: int = 40,
    title: str = "Loss distribution",
    x_label: str = "loss",
    slug: str = "loss-histogram",
) -> Chart:
    """Histograms of losses (positive = money lost) on shared bins, one bar series per
    strategy, heights as the fraction of paths."""
    arrays = {k: np.asarray(v, dtype=np.float64).ravel() for k, v in losses.items()}
    pooled = np.concatenate([a for a in arrays.values()] or [np.zeros(1)])
    edges = np.histogram_bin_edges(pooled, bins=bins)
    centres = _xs((edges[:-1] + edges[1:]) / 2)
    series = []
    for name, values in arrays.items():
        counts, _ = np.histogram(values, bins=edges)
        series.append(Series(name, centres, _floats(counts / max(len(values), 1)), "bar"))
    return Chart(slug, title, x_label, "fraction of paths", tuple(series))


def cascade_price_path(
    x: Sequence[float] | npt.NDArray[Any],
    prices: Mapping[str, npt.ArrayLike],
    *,
    title: str = "Price path through the cascade",
    x_label: str = "step",
    y_label: str = "price",
    slug: str = "cascade-price-path",
) -> Chart:
    """One price line per venue (or index) over the cascade's steps."""
    xs = _xs(x)
    return Chart(
        slug, title, x_label, y_label, tuple(Series(v, xs, _floats(p)) for v, p in prices.items())
    )


def venue_bars(
    venues: Sequence[str],
    metrics: Mapping[str, npt.ArrayLike],
    *,
    title: str = "Venue comparison",
    x_label: str = "venue",
    y_label: str = "amount",
    slug: str = "venue-comparison",
) -> Chart:
    """Grouped bars: for each venue (x), one bar per metric (IM, MM ...); non-finite values
    (a rulebook that cannot price the book) are drawn as gaps."""
    xs = tuple(venues)
    return Chart(
        slug,
        title,
        x_label,
        y_label,
        tuple(Series(m, xs, _floats(v), "bar") for m, v in metrics.items()),
    )


def _finite_or_none(values: tuple[float, ...]) -> list[float | None]:
    return [v if np.isfinite(v) else None for v in values]


def to_plotly(chart: Chart) -> Any:
    """``chart`` as a ``plotly.graph_objects.Figure``."""
    with needs_extra("lab", "the HTML report"):
        import plotly.graph_objects as go
    figure = go.Figure()
    for k, series in enumerate(chart.series):
        colour = _PALETTE[k % len(_PALETTE)]
        if series.kind == "band" and series.upper is not None:
            figure.add_trace(
                go.Scatter(
                    x=list(series.x),
                    y=_finite_or_none(series.y),
                    mode="lines",
                    line={"width": 0, "color": colour},
                    showlegend=False,
                    hoverinfo="skip",
                    legendgroup=series.name,
                )
            )
            figure.add_trace(
                go.Scatter(
                    x=list(series.x),
                    y=_finite_or_none(series.upper),
                    mode="lines",
                    line={"width": 0, "color": colour},
                    fill="tonexty",
                    opacity=0.3,
                    name=series.name,
                    legendgroup=series.name,
                )
            )
        elif series.kind == "bar":
            figure.add_trace(
                go.Bar(
                    x=list(series.x),
                    y=_finite_or_none(series.y),
                    name=series.name,
                    marker_color=colour,
                )
            )
        else:
            figure.add_trace(
                go.Scatter(
                    x=list(series.x),
                    y=_finite_or_none(series.y),
                    mode="lines",
                    name=series.name,
                    line={"color": colour},
                )
            )
    figure.update_layout(
        title=chart.title,
        xaxis_title=chart.x_label,
        yaxis_title=chart.y_label,
        barmode="group",
        template="plotly_white",
        height=420,
    )
    return figure


def _table_html(rows: tuple[Mapping[str, Cell], ...]) -> str:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(column)
            text = "" if value is None else f"{value:,.6g}" if isinstance(value, float) else value
            cells.append(f"<td>{html.escape(str(text))}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}"
    "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}"
    "th,td{border:1px solid #ccc;padding:0.25em 0.6em;text-align:right}"
    "th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}"
    "p.subtitle{color:#666}"
)


def render_html(report: Report) -> str:
    """The whole report as one HTML page; plotly.js is inlined with the first chart, so the
    page needs no network."""
    with needs_extra("lab", "the HTML report"):
        import plotly.io as pio
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(report.title)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(report.title)}</h1>",
    ]
    if report.subtitle:
        parts.append(f'<p class="subtitle">{html.escape(report.subtitle)}</p>')
    inlined = False
    for section in report.sections:
        parts.append(f"<h2>{html.escape(section.heading)}</h2>")
        if section.text:
            parts.append(f"<p>{html.escape(section.text)}</p>")
        if section.chart is not None:
            parts.append(
                pio.to_html(
                    to_plotly(section.chart),
                    include_plotlyjs=not inlined,
                    full_html=False,
                    div_id=section.chart.slug,
                    config={"displaylogo": False},
                )
            )
            inlined = True
        if section.rows:
            parts.append(_table_html(section.rows))
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(path: Path, report: Report) -> Path:
    """Save :func:`render_html` of ``report`` at ``path`` (UTF-8); returns ``path``."""
    path.write_text(render_html(report), encoding="utf-8")
    return path


def export_png(chart: Chart, path: Path, dpi: int = 110) -> Path:
    """Draw ``chart`` with matplotlib into the PNG file ``path``; returns ``path``."""
    with needs_extra("plots", "PNG export"):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    longest = max((len(str(v)) for s in chart.series for v in s.x if isinstance(v, str)), default=0)
    figure, axes = plt.subplots(figsize=(8, 4.2 + (0.07 * longest if longest > 8 else 0)))
    try:
        bars = [s for s in chart.series if s.kind == "bar"]
        categorical = any(isinstance(v, str) for s in chart.series for v in s.x)
        for k, series in enumerate(chart.series):
            colour = _PALETTE[k % len(_PALETTE)]
            if series.kind == "bar":
                _draw_bars(axes, series, bars.index(series), len(bars), colour, categorical)
            elif series.kind == "band" and series.upper is not None:
                axes.fill_between(
                    np.asarray(series.x, dtype=np.float64),
                    series.y,
                    series.upper,
                    color=colour,
                    alpha=0.3,
                    linewidth=0,
                    label=series.name,
                )
            else:
                axes.plot(series.x, series.y, color=colour, label=series.name, linewidth=1.5)
        axes.set_title(chart.title)
        axes.set_xlabel(chart.x_label)
        axes.set_ylabel(chart.y_label)
        axes.grid(alpha=0.3)
        if len(chart.series) > 1:
            axes.legend(fontsize=8)
        figure.tight_layout()
        figure.savefig(path, dpi=dpi)
    finally:
        plt.close(figure)
    return path


def _draw_bars(
    axes: Any, series: Series, index: int, count: int, colour: str, categorical: bool
) -> None:
    """Bar ``index`` of ``count`` grouped bars: side by side at categories, overlaid (thin,
    half transparent) on a numeric axis such as a histogram's bin centres."""
    heights = np.asarray(series.y, dtype=np.float64)
    if categorical:
        width = 0.8 / count
        positions = np.arange(len(series.x)) + (index - (count - 1) / 2) * width
        axes.bar(positions, np.nan_to_num(heights), width, color=colour, label=series.name)
        crowded = len(series.x) > 6
        axes.set_xticks(
            np.arange(len(series.x)),
            [str(v) for v in series.x],
            rotation=60 if crowded else 0,
            ha="right" if crowded else "center",
            fontsize=7 if crowded else 9,
        )
        return
    centres = np.asarray(series.x, dtype=np.float64)
    width = float(np.min(np.diff(centres))) if len(centres) > 1 else 1.0
    axes.bar(centres, heights, width, color=colour, alpha=0.5, label=series.name)


def export_pngs(report: Report, directory: Path) -> tuple[Path, ...]:
    """Every chart of ``report`` as ``<directory>/<slug>.png`` (the directory is created)."""
    directory.mkdir(parents=True, exist_ok=True)
    return tuple(export_png(c, directory / f"{c.slug}.png") for c in report.charts)
