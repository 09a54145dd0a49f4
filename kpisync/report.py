"""`kpisync report`: one self-contained HTML file (static SVG, no scripts, no
network) from a store's `kpi_values`, each chart with its numbers beside it."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from kpisync.store import Store
from kpisync.timestamps import parse_ts

PALETTE = ("#2563eb", "#16a34a", "#ea580c", "#9333ea", "#0891b2", "#dc2626", "#ca8a04", "#4b5563")


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "–"
    if unit == "ratio":
        return f"{value * 100:.1f}%"
    if unit == "currency":
        return f"{value:,.0f}"
    if unit == "count":
        return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"
    if unit == "score":
        return f"{value:+.0f}"
    return f"{value:,.1f}"


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def bar_chart(labels: Sequence[str], values: Sequence[float | None], unit: str, width: int = 560) -> str:
    """Horizontal bars, one per label, value printed at the end of each bar."""
    row, pad, label_w = 22, 6, 150
    height = max(1, len(labels)) * (row + pad) + pad
    top = max((abs(v) for v in values if v is not None), default=0.0) or 1.0
    scale = (width - label_w - 90) / top
    parts = [f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img">']
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = pad + i * (row + pad)
        w = 0 if value is None else max(1.0, abs(value) * scale)
        color = PALETTE[0] if (value or 0) >= 0 else PALETTE[5]
        parts.append(f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">{_esc(label[:24])}</text>')
        parts.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{row}" fill="{color}" rx="3"/>')
        parts.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 15}">{_esc(fmt(value, unit))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def line_chart(
    periods: Sequence[str], series: dict[str, Sequence[float | None]], unit: str, width: int = 560, height: int = 220
) -> str:
    left, right, top, bottom = 70, 20, 14, 40
    values = [v for s in series.values() for v in s if v is not None]
    hi = max(values, default=1.0)
    lo = min(0.0, min(values, default=0.0))
    span = (hi - lo) or 1.0
    n = max(1, len(periods) - 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        x = left + i * (width - left - right) / n
        y = top + (hi - v) / span * (height - top - bottom)
        return x, y

    parts = [f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img">']
    for frac in (0.0, 0.5, 1.0):
        v = lo + frac * span
        _, y = xy(0, v)
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_esc(fmt(v, unit))}</text>')
    for i, period in enumerate(periods):
        if len(periods) <= 13 or i % 2 == 0:
            x, _ = xy(i, lo)
            parts.append(f'<text x="{x:.1f}" y="{height - 18}" text-anchor="middle">{_esc(period[2:])}</text>')
    for k, (name, points) in enumerate(series.items()):
        color = PALETTE[k % len(PALETTE)]
        coords = [xy(i, v) for i, v in enumerate(points) if v is not None]
        if coords:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
            parts.extend(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{color}"/>' for x, y in coords)
        parts.append(f'<text x="{left + 8 + k * 140}" y="{height - 3}" fill="{color}">&#9632; {_esc(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class _Data:
    def __init__(self, store: Store) -> None:
        self.conn = store.conn
        row = self.conn.execute("SELECT max(computed_at) FROM kpi_values").fetchone()
        self.as_of: datetime | None = parse_ts(row[0]) if row and row[0] else None
        self.names = dict(self.conn.execute("SELECT id, coalesce(name, id) FROM users"))

    def values(self, kpi: str, grain: str, period: str) -> dict[str, tuple[float | None, str]]:
        return {
            key: (value, unit)
            for key, value, unit in self.conn.execute(
                "SELECT key, value, unit FROM kpi_values WHERE kpi = ? AND grain = ? AND period = ?",
                (kpi, grain, period),
            )
        }

    def org(self, kpi: str, period: str) -> tuple[float | None, str]:
        return self.values(kpi, "org", period).get("", (None, ""))

    def months(self) -> list[str]:
        return [
            p
            for (p,) in self.conn.execute(
                "SELECT DISTINCT period FROM kpi_values WHERE period GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]' ORDER BY period"
            )
        ]

    def latest(self, pattern: str) -> str | None:
        row = self.conn.execute("SELECT max(period) FROM kpi_values WHERE period GLOB ?", (pattern,)).fetchone()
        return row[0] if row else None


def _section(title: str, chart: str, table: str, note: str = "") -> str:
    note_html = f'<p class="note">{_esc(note)}</p>' if note else ""
    return f'<section><h2>{_esc(title)}</h2>{note_html}<div class="pair"><div>{chart}</div><div>{table}</div></div></section>'


def render(store: Store, title: str = "kpisync") -> str:
    data = _Data(store)
    if data.as_of is None:
        body = "<p>No KPI values in this store yet: run <code>kpisync kpi compute</code> first.</p>"
        return _page(title, "", body)
    year = data.latest("[0-9][0-9][0-9][0-9]") or ""
    quarter = data.latest("[0-9][0-9][0-9][0-9]-Q[1-4]") or ""
    months = data.months()
    sections = []

    # funnel with stage conversion (the current year)
    stages = ["lead", "mql", "sql", "opportunity", "customer"]
    counts = [data.org(f"entered_{s}", year)[0] for s in stages]
    conv_ids = ["conv_lead_to_mql", "conv_mql_to_sql", "conv_sql_to_opportunity", "conv_opportunity_to_customer"]
    convs = [data.org(c, year)[0] for c in conv_ids]
    rows = [
        [s, fmt(c, "count"), fmt(convs[i], "ratio") if i < len(convs) else ""]
        for i, (s, c) in enumerate(zip(stages, counts, strict=True))
    ]
    sections.append(
        _section(
            f"Funnel {year}",
            bar_chart(stages, counts, "count"),
            _table(["stage", "entered", "→ next stage (cohort)"], rows),
        )
    )

    # rep leaderboards (current quarter)
    for kpi, label, reverse in (
        ("quota_attainment", "Quota attainment", True),
        ("win_rate", "Win rate", True),
        ("lead_response_minutes", "Median lead response (minutes, lower is better)", False),
    ):
        vals = data.values(kpi, "user", quarter)
        ranked = sorted(
            ((k, v) for k, (v, _u) in vals.items() if v is not None), key=lambda kv: kv[1], reverse=reverse
        )[:10]
        unit = next(iter(vals.values()))[1] if vals else "ratio"
        names = [data.names.get(k, k) for k, _v in ranked]
        sections.append(
            _section(
                f"{label} — {quarter}",
                bar_chart(names, [v for _k, v in ranked], unit),
                _table(["rep", label], [[n, fmt(v, unit)] for n, (_k, v) in zip(names, ranked, strict=True)]),
            )
        )

    # trends by month
    for kpis, unit, label in (
        (("revenue_won", "new_pipeline_amount"), "currency", "Revenue won and pipeline created"),
        (("win_rate", "lead_contact_rate", "meeting_booking_rate"), "ratio", "Win, contact and booking rates"),
        (("deals_won", "new_opportunities"), "count", "Deals won and opportunities created"),
    ):
        series = {k: [data.org(k, m)[0] for m in months] for k in kpis}
        rows = [[m, *(fmt(series[k][i], unit) for k in kpis)] for i, m in enumerate(months)]
        sections.append(_section(f"{label} by month", line_chart(months, series, unit), _table(["month", *kpis], rows)))

    # sales volume by region
    region_vals = data.values("revenue_won", "region", year)
    regions = sorted(region_vals, key=lambda r: -(region_vals[r][0] or 0))
    sections.append(
        _section(
            f"Sales volume by region {year}",
            bar_chart([r or "(none)" for r in regions], [region_vals[r][0] for r in regions], "currency"),
            _table(["region", "revenue won"], [[r or "(none)", fmt(region_vals[r][0], "currency")] for r in regions]),
        )
    )

    # SDR activity vs outcomes (current quarter)
    touches = data.values("touches", "user", quarter)
    booked = data.values("meeting_booking_rate", "user", quarter)
    positive = data.values("positive_response_rate", "user", quarter)
    reps = sorted(touches, key=lambda k: -(touches[k][0] or 0))[:12]
    sections.append(
        _section(
            f"Activity vs outcomes — {quarter}",
            bar_chart([data.names.get(r, r) for r in reps], [touches[r][0] for r in reps], "count"),
            _table(
                ["rep", "touches", "meeting booking rate", "positive response rate"],
                [
                    [
                        data.names.get(r, r),
                        fmt(touches[r][0], "count"),
                        fmt(booked.get(r, (None, ""))[0], "ratio"),
                        fmt(positive.get(r, (None, ""))[0], "ratio"),
                    ]
                    for r in reps
                ],
            ),
        )
    )

    # customer health
    quarters = [
        p
        for (p,) in data.conn.execute(
            "SELECT DISTINCT period FROM kpi_values WHERE period GLOB '[0-9][0-9][0-9][0-9]-Q[1-4]' ORDER BY period"
        )
    ]
    health = {k: [data.org(k, q)[0] for q in quarters] for k in ("churn_rate", "retention_rate")}
    nps = [data.org("nps", q)[0] for q in quarters]
    sections.append(
        _section(
            "Customer health by quarter",
            line_chart(quarters, health, "ratio"),
            _table(
                ["quarter", "churn rate", "retention rate", "NPS"],
                [
                    [
                        q,
                        fmt(health["churn_rate"][i], "ratio"),
                        fmt(health["retention_rate"][i], "ratio"),
                        fmt(nps[i], "score"),
                    ]
                    for i, q in enumerate(quarters)
                ],
            ),
        )
    )
    subtitle = f"as of {data.as_of:%Y-%m-%d %H:%M} UTC"
    return _page(title, subtitle, "".join(sections))


def _page(title: str, subtitle: str, body: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{_esc(title)} — sales KPIs</title>
<style>
body{{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#111827;background:#fff}}
h1{{margin:0}} .sub{{color:#6b7280;margin:2px 0 18px}}
section{{border-top:1px solid #e5e7eb;padding:12px 0}} h2{{font-size:17px;margin:6px 0 10px}}
.pair{{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}}
svg text{{font-size:11px;fill:#374151}} table{{border-collapse:collapse;font-size:12px}}
td,th{{border-bottom:1px solid #f3f4f6;padding:3px 10px;text-align:right}} td:first-child,th:first-child{{text-align:left}}
.note{{color:#6b7280}}
</style></head>
<body><h1>{_esc(title)} — sales KPIs</h1><p class="sub">{_esc(subtitle)}</p>{body}
<p class="note">Generated by kpisync. Values are computed from the store's kpi_values; definitions: docs/kpis.md.</p>
</body></html>
"""


def write_report(store: Store, out: Path, title: str = "kpisync") -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(store, title), encoding="utf-8")
    return out
