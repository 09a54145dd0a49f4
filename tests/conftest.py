"""Shared test helpers. CRM-specific fixtures live in tests/salesforce and tests/hubspot."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# the project's shared/ (spec, fixtures) sits beside the checkout, here and in CI
SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(autouse=True)
def _no_real_crm(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests talk to 127.0.0.1 only: no proxy may route them elsewhere."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.exists():
        pytest.skip("shared/ (spec and fixtures) is not beside this checkout")
    return SHARED


def env_without(*names: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in names}


# ---------------------------------------------------------------- reliability doc (tests/reliability/matrix.py)


def pytest_configure(config: pytest.Config) -> None:
    """One folder per run (created by the controller, inherited by xdist workers) for matrix outcomes."""
    import tempfile

    if not hasattr(config, "workerinput") and "KPISYNC_RELIABILITY_CELLS" not in os.environ:
        os.environ["KPISYNC_RELIABILITY_CELLS"] = tempfile.mkdtemp(prefix="kpisync-cells-")
        config._kpisync_cells = os.environ["KPISYNC_RELIABILITY_CELLS"]  # type: ignore[attr-defined]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    import shutil

    folder = getattr(session.config, "_kpisync_cells", None)
    if folder is None:  # a worker, or a run inside a run
        return
    try:
        from tests.reliability.matrix import write_doc

        written = write_doc(Path(folder))
        if written:
            print(f"\ndocs/reliability.md: regenerated {', '.join(written)}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        os.environ.pop("KPISYNC_RELIABILITY_CELLS", None)
