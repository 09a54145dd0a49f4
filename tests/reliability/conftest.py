"""Reliability tests: both sandboxes serving a tiny hand-made org over real HTTPS,
and `kpisync` run as a real subprocess where a crash or a log line matters."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kpisync.store import Store
from tests.hubspot.conftest import canonical_rows

CRMS = ("salesforce", "hubspot")


@pytest.fixture(scope="session")
def canonical_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("canonical") / "canonical.db"
    with Store.open(path) as store:
        for table, rows in canonical_rows().items():
            store.upsert(table, rows)
    return path


def start_box(crm: str, data_dir: Path, canonical: Path) -> Any:
    """One sandbox over the tiny org; the caller stops it."""
    if crm == "salesforce":
        from kpisync.connectors.sandbox.salesforce import start

        return start(data_dir=data_dir, canonical=canonical)
    from kpisync.connectors.sandbox.hubspot import start as start_hs

    source = Store.open(canonical)
    try:
        return start_hs(data_dir=data_dir, canonical=source)
    finally:
        source.close()


@pytest.fixture(params=CRMS)
def box(request: pytest.FixtureRequest, tmp_path: Path, canonical_path: Path) -> Iterator[Any]:
    sandbox = start_box(request.param, tmp_path / "sandbox", canonical_path)
    sandbox.crm = request.param
    try:
        yield sandbox
    finally:
        sandbox.stop()


def kpisync(*args: str, timeout: float = 60, check: bool = False) -> subprocess.CompletedProcess[str]:
    """`kpisync ARGS` in a child process, as an admin runs it."""
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost"}
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        env.pop(var, None)
    done = subprocess.run(
        [sys.executable, "-m", "kpisync.cli", *args], capture_output=True, text=True, timeout=timeout, env=env
    )
    if check and done.returncode != 0:
        raise AssertionError(f"kpisync {' '.join(args)} → {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done


def edit_config(path: Path, **changes: Any) -> Path:
    """Rewrite top-level sections of a sandbox config (dicts are merged one level deep)."""
    text = path.read_text()
    data = yaml.safe_load(text)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key].update(value)
        else:
            data[key] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def store_path(config_path: Path) -> Path:
    from kpisync.config import load_config

    return Path(load_config(config_path).store_path)
