"""Every package folder installs (pyproject lists packages explicitly)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAPPING = {"kpisync": "kpisync", "connectors": "kpisync.connectors", "kpi": "kpisync.kpi", "sync": "kpisync.sync"}


def test_every_package_folder_is_listed() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = set()
    for top, name in MAPPING.items():
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / top).parts
            found.add(".".join((name, *rel)))
    assert found == listed, f"pyproject packages differ: missing {found - listed}, stale {listed - found}"


def test_nothing_generic_lands_in_site_packages() -> None:
    import kpisync.connectors
    import kpisync.sync

    assert Path(kpisync.connectors.__file__).parent.name == "connectors"
    assert kpisync.sync.__name__ == "kpisync.sync"
