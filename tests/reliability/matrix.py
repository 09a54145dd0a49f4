"""The reliability matrices as data, and the generator of docs/reliability.md.

Test modules parametrize over these cells; each finished cell is recorded
(conftest.record_cell) and, at the end of a run, the pytest controller
(tests/conftest.py) calls `write_doc`, which rewrites a section of the doc only
when that run covered every one of its cells and every cell passed. A partial
run (`-k`, the default suite's quick subset) leaves the committed table alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DOC = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"
CRMS = ("salesforce", "hubspot")
PHASES = ("pull", "write-back", "provisioning")

# fault → (how it is injected, in words) ; the specs are built in test_faults.py
FAULTS: dict[str, str] = {
    "429 storm with Retry-After": "three 429s in a row, `Retry-After: 1`",
    "429 storm without Retry-After": "two 429s in a row, no header (the client's own backoff: HubSpot waits 10 s each)",
    "5xx burst": "three 503s in a row",
    "connection reset mid-page": "half the body, then a TCP RST, twice",
    "truncated JSON": "half a JSON body with a full Content-Length, twice",
    "slow response past the timeout": "the answer comes 2 s after connection.timeout_s (3 s)",
    "expired session/token mid-run": "Salesforce: every session dies (401 INVALID_SESSION_ID); HubSpot (OAuth): every access token expires (401 EXPIRED_AUTHENTICATION)",
    "daily limit reached": "Salesforce: 403 REQUEST_LIMIT_EXCEEDED; HubSpot: 429 with policyName DAILY",
    "partial batch failure on write": "Salesforce: one record of the batch refused (UNABLE_TO_LOCK_ROW); HubSpot: one record of the batch deleted just before it arrives (207 multi-status)",
}

NOT_APPLICABLE: dict[tuple[str, str], str] = {
    ("partial batch failure on write", "pull"): "a read page succeeds or fails whole: no per-record outcome",
    (
        "partial batch failure on write",
        "provisioning",
    ): "fields/properties are created one request each: no batch to fail in part",
}


def fault_cells() -> list[tuple[str, str, str]]:
    return [(f, p, c) for f in FAULTS for p in PHASES for c in CRMS if (f, p) not in NOT_APPLICABLE]


KILL_TARGETS = ("kpisync sync --full", "kpisync run (sync → compute → write-back)")


def kill_cells() -> list[tuple[str, str]]:
    return [(t, c) for t in KILL_TARGETS for c in CRMS]


BAD_CASES = (
    "nulls in every field",
    "unknown picklist values",
    "dates in every CRM format",
    "invalid dates",
    "huge text (~114 kB)",
    "unicode (CJK, RTL, emoji, zero-width)",
    "amounts as strings",
    "orphan references",
)


def bad_cells() -> list[tuple[str, str]]:
    return [(b, c) for b in BAD_CASES for c in CRMS]


SECTIONS: dict[str, Any] = {"faults": fault_cells, "kill": kill_cells, "bad": bad_cells}


def _table_faults(outcomes: dict[tuple[str, ...], str]) -> list[str]:
    lines = ["| fault | injected as | phase | salesforce | hubspot |", "|---|---|---|---|---|"]
    for fault, how in FAULTS.items():
        for phase in PHASES:
            na = NOT_APPLICABLE.get((fault, phase))
            cells = [f"n/a: {na}" if na else outcomes[(fault, phase, crm)] for crm in CRMS]
            lines.append(f"| {fault} | {how} | {phase} | " + " | ".join(cells) + " |")
    return lines


def _table_kill(outcomes: dict[tuple[str, ...], str]) -> list[str]:
    lines = ["| killed | salesforce | hubspot |", "|---|---|---|"]
    for target in KILL_TARGETS:
        lines.append(f"| {target} | " + " | ".join(outcomes[(target, crm)] for crm in CRMS) + " |")
    return lines


def _table_bad(outcomes: dict[tuple[str, ...], str]) -> list[str]:
    lines = ["| bad data | salesforce | hubspot |", "|---|---|---|"]
    for case in BAD_CASES:
        lines.append(f"| {case} | " + " | ".join(outcomes[(case, crm)] for crm in CRMS) + " |")
    return lines


TABLES = {"faults": _table_faults, "kill": _table_kill, "bad": _table_bad}


def collect(folder: Path) -> dict[str, dict[tuple[str, ...], str]]:
    found: dict[str, dict[tuple[str, ...], str]] = {}
    for file in sorted(folder.glob("*.json")):
        entry = json.loads(file.read_text())
        found.setdefault(entry["section"], {})[tuple(entry["key"])] = entry["outcome"]
    return found


def write_doc(folder: Path) -> list[str]:
    """Rewrite each section this run completed; returns the names of the sections rewritten."""
    found = collect(folder)
    text = DOC.read_text()
    done = []
    for name, cells in SECTIONS.items():
        outcomes = found.get(name, {})
        wanted = [tuple(c) for c in cells()]
        if not wanted or any(c not in outcomes for c in wanted):
            continue
        if not all(outcomes[c].startswith("pass") for c in wanted):
            continue
        start, end = f"<!-- generated:{name} -->", f"<!-- end:{name} -->"
        if start not in text or end not in text:
            continue
        head, rest = text.split(start, 1)
        _old, tail = rest.split(end, 1)
        text = head + start + "\n" + "\n".join(TABLES[name](outcomes)) + "\n" + end + tail
        done.append(name)
    if done:
        DOC.write_text(text)
    return done


def committed_cells(name: str) -> list[list[str]]:
    """The data rows of a generated table in the committed doc, split into cells."""
    text = DOC.read_text()
    body = text.split(f"<!-- generated:{name} -->", 1)[1].split(f"<!-- end:{name} -->", 1)[0]
    rows = [line for line in body.strip().splitlines()[2:] if line.startswith("|")]
    return [[c.strip() for c in row.strip().strip("|").split("|")] for row in rows]
