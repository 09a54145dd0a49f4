"""Generated docs stay in step with the code."""

from __future__ import annotations

from kpisync.kpidocs import DOCS_FILE, render


def test_kpi_reference_is_current() -> None:
    assert DOCS_FILE.exists(), "generate it: python -m kpisync.kpidocs > docs/kpis.md"
    assert DOCS_FILE.read_text(encoding="utf-8") == render(), (
        "docs/kpis.md is stale: python -m kpisync.kpidocs > docs/kpis.md"
    )


def test_every_kpi_has_a_section() -> None:
    from kpisync.kpi import registry

    text = render()
    for kpi_id in registry.ids():
        assert f"### {kpi_id}\n" in text
