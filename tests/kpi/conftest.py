"""Fixtures for the KPI tests: a throwaway in-memory store and its org writer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kpi_orgs import Org

from kpisync.store import Store


@pytest.fixture
def store() -> Iterator[Store]:
    with Store.open(":memory:") as s:
        yield s


@pytest.fixture
def org(store: Store) -> Org:
    return Org(store)
