"""Salesforce tests: a small hand-made canonical org served by the sandbox over real HTTPS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sfkit import build_canonical

from kpisync.config import Config, load_config
from kpisync.connectors.sandbox.salesforce import SalesforceSandbox, start


@pytest.fixture(scope="session")
def canonical_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_canonical(tmp_path_factory.mktemp("canonical") / "canonical.db")


@pytest.fixture
def sandbox(tmp_path: Path, canonical_path: Path) -> Iterator[SalesforceSandbox]:
    box = start(data_dir=tmp_path / "sandbox", canonical=canonical_path)
    try:
        yield box
    finally:
        box.stop()


@pytest.fixture
def config(sandbox: SalesforceSandbox, tmp_path: Path) -> Config:
    return load_config(sandbox.config_path)
