"""The HTML report: self-contained, every chart with its numbers, renders in Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from kpisync.report import fmt, render, write_report
from kpisync.store import Store


def store_with_values() -> Store:
    store = Store.open(":memory:")
    store.upsert("users", [{"id": "u1", "name": "Ava Lindqvist"}, {"id": "u2", "name": "Ben Okafor"}])
    rows = []

    def v(kpi: str, grain: str, key: str, period: str, value: float | None, unit: str) -> None:
        rows.append(
            {
                "kpi": kpi,
                "grain": grain,
                "key": key,
                "period": period,
                "value": value,
                "numerator": None,
                "denominator": None,
                "unit": unit,
                "computed_at": "2026-11-20T12:00:00Z",
            }
        )

    for stage, n in zip(["lead", "mql", "sql", "opportunity", "customer"], [400, 180, 90, 45, 12], strict=True):
        v(f"entered_{stage}", "org", "", "2026", n, "count")
    v("conv_lead_to_mql", "org", "", "2026", 0.45, "ratio")
    v("win_rate", "user", "u1", "2026-Q4", 0.3125, "ratio")
    v("win_rate", "user", "u2", "2026-Q4", 0.5, "ratio")
    v("quota_attainment", "user", "u1", "2026-Q4", 1.2, "ratio")
    for i, month in enumerate(["2026-09", "2026-10", "2026-11"]):
        v("revenue_won", "org", "", month, 10000.0 * (i + 1), "currency")
    v("revenue_won", "region", "emea", "2026", 250000.0, "currency")
    v("revenue_won", "region", "na", "2026", 410000.0, "currency")
    v("touches", "user", "u1", "2026-Q4", 321, "count")
    v("churn_rate", "org", "", "2026-Q4", 0.05, "ratio")
    v("nps", "org", "", "2026-Q4", 31.0, "score")
    store.upsert("kpi_values", rows)
    return store


def test_report_is_self_contained_and_shows_the_numbers(tmp_path: Path) -> None:
    html = render(store_with_values(), "acme")
    assert "<script" not in html and "http://" not in html.replace("http://www.w3", "")
    assert not re.search(r"(src|href)=\"https?://", html)
    for expected in (
        "Funnel 2026",
        "400",
        "45.0%",
        "Ava Lindqvist",
        "31.2%",
        "120.0%",
        "410,000",
        "Sales volume by region",
        "+31",
    ):
        assert expected in html, expected
    assert html.count("<svg") >= 8
    out = write_report(store_with_values(), tmp_path / "r" / "report.html", title="acme")
    assert out.read_text(encoding="utf-8") == html


def test_an_empty_store_says_what_to_do() -> None:
    assert "kpisync kpi compute" in render(Store.open(":memory:"))


def test_formats() -> None:
    assert fmt(0.3125, "ratio") == "31.2%"
    assert fmt(None, "ratio") == "–"
    assert fmt(176000.0, "currency") == "176,000"
    assert fmt(-12.0, "score") == "-12"


@pytest.mark.chromium
def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("Chromium is not installed (CI installs it)")
    page = write_report(store_with_values(), tmp_path / "report.html")
    png = tmp_path / "report.png"
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={png}",
            "--window-size=1200,2400",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000  # a rendered page, not a blank one
