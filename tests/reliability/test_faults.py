"""Fault matrix: every fault the sandboxes inject × each phase (pull, write-back,
provisioning) × both CRMs. Each cell: the run completes correctly, or stops with
a clear one-line error and an intact cursor / writeback_state; the next run
completes, and the final state is right — the store equals a clean sync's and the
CRM's write-back fields equal kpi_values.

A quick subset runs in the default suite; every cell runs under `-m full_matrix`,
and a run that covered every cell regenerates the table in docs/reliability.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kpisync.config import load_config
from kpisync.connectors.sandbox.server import Fault
from kpisync.errors import KpisyncError
from kpisync.sync import jobs
from kpisync.sync import writeback as wb
from tests.reliability.conftest import (
    assert_converged,
    assert_state_matches_crm,
    edit_config,
    integrity,
    record_cell,
    tune,
    use_oauth,
)
from tests.reliability.matrix import FAULTS, committed_cells, fault_cells
from tests.reliability.test_kill import _content

TIMEOUT_S = 3.0
PATHS = {
    ("salesforce", "pull"): r"/services/data/v[\d.]+/query",
    ("hubspot", "pull"): r"^/crm/v3/objects/|^/crm/v4/associations/",
    ("salesforce", "write-back"): r"/composite/sobjects",
    ("hubspot", "write-back"): r"/batch/(update|upsert)$",
    ("salesforce", "provisioning"): r"/tooling/",
    ("hubspot", "provisioning"): r"^/crm/v3/properties/|/v3/schemas",
}
SF_LIMIT = [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
HS_DAILY = {
    "status": "error",
    "message": "You have reached your daily limit.",
    "errorType": "RATE_LIMIT",
    "correlationId": "00000000-0000-4000-8000-000000000429",
    "policyName": "DAILY",
}


def fault_spec(fault: str, crm: str) -> dict[str, Any]:
    return {
        "429 storm with Retry-After": {"kind": "status", "status": 429, "retry_after": 1, "times": 3},
        "429 storm without Retry-After": {"kind": "status", "status": 429, "times": 2},
        "5xx burst": {"kind": "status", "status": 503, "times": 3},
        "connection reset mid-page": {"kind": "reset", "times": 2},
        "truncated JSON": {"kind": "truncate", "times": 2},
        "slow response past the timeout": {"kind": "slow", "delay_s": TIMEOUT_S + 2, "times": 1},
        "expired session/token mid-run": {"kind": "hook", "hook": "expire_auth", "times": 1},
        "daily limit reached": {"kind": "status", "status": 403, "body": SF_LIMIT, "times": 1}
        if crm == "salesforce"
        else {"kind": "status", "status": 429, "body": HS_DAILY, "times": 1},
        "partial batch failure on write": {"kind": "hook", "hook": "partial", "times": 1},
    }[fault]


# a fault the client retries through: the run itself must complete
TRANSIENT = {
    "429 storm with Retry-After",
    "429 storm without Retry-After",
    "5xx burst",
    "connection reset mid-page",
    "truncated JSON",
    "slow response past the timeout",
    "expired session/token mid-run",
}

QUICK = {  # the default suite's share: one cell per phase, both CRMs, the bug this matrix found
    ("truncated JSON", "provisioning", "salesforce"),
    ("partial batch failure on write", "write-back", "hubspot"),
    ("daily limit reached", "pull", "salesforce"),
    ("expired session/token mid-run", "write-back", "hubspot"),
}


def _params() -> list[Any]:
    out = []
    for fault, phase, crm in fault_cells():
        cell = f"{crm}-{phase}-{fault}"
        out.append(pytest.param(fault, phase, crm, id=cell, marks=pytest.mark.full_matrix))
        if (fault, phase, crm) in QUICK:
            out.append(pytest.param(fault, phase, crm, id=f"quick-{cell}"))
    return out


def _run(phase: str, config: Any) -> tuple[bool, str | None]:
    """One run of the phase: (completed, the error it stopped with). Anything but a
    KpisyncError escaping is a crash and fails the test."""
    try:
        if phase == "pull":
            summary = jobs.sync(config)
            return summary.ok, summary.error
        if phase == "write-back":
            result = jobs.writeback(config)
            return result.failed == 0, (f"{result.failed} value(s) refused" if result.failed else None)
        jobs.provision(config)
        return True, None
    except KpisyncError as exc:
        return False, str(exc)


def _victim(box: Any, config: Any) -> tuple[str, str]:
    """A record (not a user or scorecard) the coming write-back will write."""
    with jobs.opened(config, "test") as store, jobs.connected(config) as connector:
        plan = wb.plan(store, connector, config.writeback_targets(), config.timezone)
    change = next(c for c in plan if c.object not in ("User",) and not c.object.startswith("2-"))
    return change.object, change.record_id


@pytest.mark.parametrize(("fault", "phase", "crm"), _params())
def test_fault_cell(fault: str, phase: str, crm: str, tmp_path: Path, canonical_path: Path) -> None:
    from tests.reliability.conftest import start_box

    box = start_box(crm, tmp_path / "sandbox", canonical_path)
    box.crm = crm
    try:
        _cell(box, fault, phase, crm, tmp_path)
    finally:
        box.stop()


def _cell(box: Any, fault: str, phase: str, crm: str, tmp_path: Path) -> None:
    connection = {"timeout_s": TIMEOUT_S}
    if fault == "expired session/token mid-run" and crm == "hubspot":
        config = use_oauth(box)
        box.server.hooks["expire_auth"] = box.expire_tokens
    else:
        config = tune(box)
        box.server.hooks["expire_auth"] = getattr(box, "expire_sessions", None) or box.expire_tokens
    config = load_config(edit_config(box.config_path, connection=connection))

    # the state before the phase: what a real deployment has when the fault hits
    clean_db = tmp_path / "clean.db"
    if phase != "provisioning":
        assert jobs.provision(config)
    if phase == "write-back":
        assert jobs.sync(config).ok
        jobs.compute(config)
        victim = _victim(box, config)
        if crm == "salesforce":
            box.server.hooks["partial"] = lambda: box.fail_write(victim[1])
        else:
            box.server.hooks["partial"] = lambda: box.archive(victim[0], int(victim[1]))
    if phase == "pull":
        clean_cfg = box.config_path.with_name("clean.yaml")
        clean_cfg.write_text(box.config_path.read_text())
        edit_config(clean_cfg, store=str(clean_db))
        assert jobs.sync(load_config(clean_cfg)).ok

    calls_before = len(box.server.log)
    box.server.faults.add(Fault(path=PATHS[(crm, phase)], after=1, **fault_spec(fault, crm)))
    completed, error = _run(phase, config)
    fired = not box.server.faults.pending() or box.server.faults.pending()[0]["times"] < fault_spec(fault, crm)["times"]
    assert fired, f"the fault never fired ({len(box.server.log) - calls_before} calls)"
    box.server.faults.clear()
    if fault in TRANSIENT:
        assert completed, f"a retried {fault} stopped the run: {error}"
    if not completed:
        assert error and "\n" not in error.strip() and "Traceback" not in error, error
    db = Path(config.store_path)
    if db.exists():
        assert integrity(db) == "ok"
    if phase == "write-back":
        assert_state_matches_crm(box, config)  # nothing recorded that the CRM does not hold

    # the next run completes
    again, error_again = _run(phase, config)
    assert again, error_again
    if phase == "pull":
        # resumed from the cursor the stopped run left: a cursor past unstored rows would lose them here
        assert _content(db) == _content(clean_db)
    if phase == "provisioning":
        assert not any(c.done for c in jobs.provision(config)), "provisioning again creates nothing"

    # and the whole job ends in the right state
    assert jobs.sync(config).ok
    jobs.compute(config)
    assert jobs.writeback(config).failed == 0
    checked = assert_converged(box, config)
    assert integrity(db) == "ok"
    if completed:
        outcome = "pass: completed"
    else:
        outcome = f"pass: stopped ({_short(error)}), next run completed"
    record_cell("faults", [fault, phase, crm], outcome + f"; {checked} fields = kpi_values")


def _short(error: str | None) -> str:
    text = (error or "").replace("|", "/").strip()
    return text if len(text) <= 70 else text[:67] + "…"


def test_committed_matrix_has_every_cell_passing() -> None:
    rows = committed_cells("faults")
    assert len(rows) == len(FAULTS) * 3
    cells = [c for row in rows for c in row[3:]]
    assert cells and all(c.startswith(("pass", "n/a")) for c in cells), cells
    assert sum(c.startswith("pass") for c in cells) == len(fault_cells())


# every create request provisioning sends, each losing its answer once (the CRM did the work)
PROVISION_CREATES = {
    "salesforce": (
        r"/tooling/sobjects/CustomField$",
        r"/sobjects/PermissionSet$",
        r"/sobjects/FieldPermissions$",
        r"/sobjects/PermissionSetAssignment$",
    ),
    "hubspot": (r"^/crm/v3/properties/[^/]+/groups$", r"^/crm/v3/properties/[^/]+$", r"/v3/schemas$"),
}


def _setup_records(box: Any) -> list[tuple[Any, ...]]:
    """What provisioning created, as keys that must be unique."""
    import json

    if box.crm == "salesforce":
        rows = box.org.conn.execute(
            "SELECT obj, data FROM records WHERE obj IN ('FieldPermissions', 'PermissionSetAssignment', 'PermissionSet')"
        ).fetchall()
        keys = ("ParentId", "Field", "AssigneeId", "PermissionSetId", "Name")
        return [(obj, *(json.loads(data).get(k) for k in keys)) for obj, data in rows]
    out: list[tuple[Any, ...]] = [("schema", s["name"]) for s in box.portal.meta("schemas", [])]
    for obj in ("contacts", "companies", "deals"):
        out += [(obj, p["name"]) for p in box.portal.properties(obj)]
    return out


@pytest.mark.parametrize("kind", ["reset", pytest.param("truncate", marks=pytest.mark.full_matrix)])
def test_provisioning_survives_a_lost_answer_on_every_create(box: Any, kind: str) -> None:
    config = tune(box)
    for path in PROVISION_CREATES[box.crm]:
        box.server.faults.add(Fault(kind=kind, path=path, method="POST", times=1))
    assert any(c.done for c in jobs.provision(config))  # completes: a create that already happened is not an error
    assert box.server.faults.pending() == [], "every create lost its answer once"
    assert not any(c.done for c in jobs.provision(config))
    created = _setup_records(box)
    assert created and len(created) == len(set(created)), "a retried create made a duplicate"
    assert jobs.sync(config).ok
    jobs.compute(config)
    assert jobs.writeback(config).failed == 0
    assert_converged(box, config)
