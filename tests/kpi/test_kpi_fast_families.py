"""A family's fast twin (records counted together in bit masks or groups) sums to what
the family's own rows sum to, on a generated org; past its segment limit it is not used."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from kpi_orgs import generated_org

from kpisync.generator import DEFAULT_NOW
from kpisync.kpi.catalog import activity, customers, deals, funnel, support
from kpisync.kpi.context import Context
from kpisync.kpi.families import MASK_BITS, Family, sums
from kpisync.kpi.periods import parse_as_of
from kpisync.kpi.settings import KpiSettings
from kpisync.store import Store

TWINNED = sorted(
    {
        value.name: value
        for module in (activity, customers, deals, funnel, support)
        for value in vars(module).values()
        if isinstance(value, Family) and value.fast is not None
    }.values(),
    key=lambda fam: fam.name,
)


@pytest.fixture(scope="module")
def org_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generated_org(tmp_path_factory, "fast", seed=11)


def test_the_catalog_has_fast_twins() -> None:
    assert {fam.name for fam in TWINNED} >= {"prospects", "opp_worked", "opp_proposals"}


@pytest.mark.parametrize("as_of", [DEFAULT_NOW, "2026-03-15T12:00:00Z"])
@pytest.mark.parametrize("fam", TWINNED, ids=lambda fam: fam.name)
def test_a_fast_twin_sums_what_the_rows_sum(org_path: Path, fam: Family, as_of: str) -> None:
    rows = replace(fam, name=f"{fam.name}_rows", fast=None)
    with Store.open(org_path) as store, Context(store.conn, KpiSettings(), parse_as_of(as_of)) as ctx:
        assert fam.summed(ctx) is fam.fast
        fast, slow = sums(ctx, fam), sums(ctx, rows)
    assert fast == slow
    # not two empty rollups: every measure counted something somewhere
    assert all(any(v[i] for v in slow.values()) for i in range(len(fam.measures)))


@pytest.mark.parametrize("fam", [f for f in TWINNED if f.fast and f.fast.max_segments], ids=lambda f: f.name)
def test_past_its_bit_masks_a_family_sums_its_own_rows(fam: Family) -> None:
    def ctx(segments: int) -> Context:
        return SimpleNamespace(segments=SimpleNamespace(bounds=[""] * (segments + 1)))  # type: ignore[return-value]

    assert fam.summed(ctx(MASK_BITS)) is fam.fast
    assert fam.summed(ctx(MASK_BITS + 1)) is fam


def test_a_fast_twin_must_sum_the_same_measures() -> None:
    twin = Family("f", "SELECT 1", ("org",), ("a",))
    with pytest.raises(ValueError, match="family f: its fast twin"):
        Family("f", "SELECT 1", ("org",), ("a", "b"), fast=twin)
