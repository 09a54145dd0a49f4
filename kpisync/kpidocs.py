"""docs/kpis.md, generated from the KPI declarations (`python -m kpisync.kpidocs`).

tests/test_docs.py fails when the file on disk differs from what this prints,
so the reference can never drift from the code.
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS_FILE = Path(__file__).resolve().parent.parent / "docs" / "kpis.md"

SECTIONS = {
    "A": "Deals and pipeline",
    "B": "Activity, SDR and BDR",
    "C": "Funnel and marketing",
    "D": "Customers and accounts",
    "E": "Support",
}


def render() -> str:
    from kpisync.kpi import registry
    from kpisync.kpi.engine import OUT_OF_REACH

    kpis = registry.load()
    lines = [
        "# KPI reference",
        "",
        "Generated from the KPI declarations in `kpi/catalog/` by `python -m kpisync.kpidocs`;",
        "do not edit by hand. Definitions follow `spec/kpi-catalog.md`; shared terms (touch,",
        "response, won in P, customer, attribution) are defined there.",
        "",
        "Periods: `YYYY-MM`, `YYYY-Qn`, `YYYY`, `rolling-7d/30d/90d` (ending at `as_of`) and `all`",
        "(everything up to `as_of`, for record-level values). Rates with a zero denominator are null.",
        "",
    ]
    for letter, title in SECTIONS.items():
        members = sorted((k for k in kpis.values() if k.section.upper().startswith(letter)), key=lambda k: k.id)
        if not members:
            continue
        lines += [f"## {letter}. {title}", ""]
        lines += ["| id | unit | grains |", "|---|---|---|"]
        lines += [f"| [`{k.id}`](#{k.id.replace('_', '-')}) | {k.unit} | {', '.join(k.grains)} |" for k in members]
        lines.append("")
        for k in members:
            lines += [
                f"### {k.id}",
                "",
                f"**{k.name}** — {k.formula}",
                "",
                f"- unit: `{k.unit}`",
                f"- grains: {', '.join(f'`{g}`' for g in k.grains)}",
                f"- periods: {', '.join(k.periods)}",
                f"- source: {k.source}",
                "",
            ]
    lines += ["## Out of the CRM's reach", ""]
    for item in OUT_OF_REACH:
        if isinstance(item, dict):
            name = item.get("name") or item.get("id")
            lines.append(f"- **{name}**: {item.get('reason', '')}")
        else:
            lines.append(f"- {item}")
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
