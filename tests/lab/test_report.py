"""Offline HTML reports and PNG exports: plotly.js inline (no script fetched from the
network), every chart drawn, charts checked for consistent series."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from crossmargin.lab.report import (
    Chart,
    Report,
    Section,
    Series,
    cascade_price_path,
    equity_fan,
    export_pngs,
    liquidation_probability,
    loss_histogram,
    render_html,
    venue_bars,
    write_report,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _report() -> Report:
    rng = np.random.default_rng(7)
    steps = np.arange(50)
    paths = 1_000 + np.cumsum(rng.normal(0, 10, (200, 50)), axis=1)
    return Report(
        "Lab report",
        (
            Section("Equity", equity_fan(steps, paths)),
            Section(
                "Liquidations",
                liquidation_probability(steps, {"cross": steps / 100, "isolated": steps / 60}),
            ),
            Section("Losses", loss_histogram({"cross": rng.exponential(100, 500)})),
            Section("Cascade", cascade_price_path(steps, {"binance": 100 - steps / 5})),
            Section(
                "Venues",
                venue_bars(["binance", "okx"], {"IM": [100.0, 120.0], "MM": [50.0, float("nan")]}),
                rows=({"venue": "binance", "im": 100.0}, {"venue": "okx <b>", "im": None}),
                text="IM & MM",
            ),
        ),
        subtitle="seed 7",
    )


def test_html_report_opens_offline(tmp_path: Path) -> None:
    """plotly.js is embedded once and no <script> fetches anything; every chart has a div."""
    page = write_report(tmp_path / "out.html", _report()).read_text(encoding="utf-8")
    assert page.count("plotly.js v") == 1
    assert not re.search(r"<script[^>]*\bsrc\s*=", page, flags=re.IGNORECASE)
    for slug in ("equity-fan", "liquidation-probability", "loss-histogram", "venue-comparison"):
        assert f'id="{slug}"' in page
    assert "okx &lt;b&gt;" in page
    assert "IM &amp; MM" in page


def test_png_export_draws_every_chart(tmp_path: Path) -> None:
    report = _report()
    written = export_pngs(report, tmp_path / "png")
    assert [p.stem for p in written] == [c.slug for c in report.charts]
    for path in written:
        assert path.read_bytes()[:8] == PNG_MAGIC


def test_equity_fan_bands_hold_the_quantiles() -> None:
    """The 25-75% band of paths 0..99 at every step is numpy's quartiles (an independent
    computation: linear interpolation, 24.75 and 74.25)."""
    paths = np.tile(np.arange(100.0)[:, None], (1, 3))
    band = equity_fan([0, 1, 2], paths).series[1]
    assert band.y == (24.75,) * 3
    assert band.upper == (74.25,) * 3


def test_histogram_fractions_sum_to_one() -> None:
    chart = loss_histogram({"a": np.arange(10.0), "b": np.arange(5.0)}, bins=4)
    for series in chart.series:
        assert sum(series.y) == pytest.approx(1.0)
        assert len(series.x) == 4


def test_bad_charts_are_refused() -> None:
    with pytest.raises(ValueError, match="x values"):
        Series("s", (1.0, 2.0), (1.0,))
    with pytest.raises(ValueError, match="upper edge"):
        Series("s", (1.0,), (1.0,), "band")
    with pytest.raises(ValueError, match="slug"):
        Chart("Bad Slug", "t", "x", "y", ())
    with pytest.raises(ValueError, match="paths must be"):
        equity_fan([0, 1], np.zeros((3, 4)))
    chart = cascade_price_path([0], {"v": [1.0]})
    with pytest.raises(ValueError, match="repeat"):
        Report("r", (Section("a", chart), Section("b", chart)))


def test_render_without_charts_needs_no_plotly_script() -> None:
    page = render_html(Report("Tables only", (Section("t", rows=({"a": 1},)),)))
    assert "plotly.js" not in page
    assert "<td>1</td>" in page


def test_report_draws_offline_in_a_browser(tmp_path: Path) -> None:
    """Headless chromium, every network request refused: each chart's div gets plotly's SVG."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium not installed (shutil.which('chromium') is None)")
    sync_api = pytest.importorskip("playwright.sync_api")
    page_file = write_report(tmp_path / "out.html", _report())
    requests: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page()

            def refuse(route: Any) -> None:
                requests.append(route.request.url)
                route.abort()

            page.route("http*://**", refuse)
            page.goto(page_file.as_uri())
            page.wait_for_function("document.querySelectorAll('.main-svg').length >= 5")
            drawn = page.evaluate("document.querySelectorAll('.js-plotly-plot').length")
        finally:
            browser.close()
    assert drawn == len(_report().charts)
    assert requests == []
