"""The command line: every command present, exit codes 0/1/2, no tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from kpisync.cli import main

COMMANDS = [
    ["demo"],
    ["config", "validate"],
    ["doctor"],
    ["provision"],
    ["sync"],
    ["kpi", "list"],
    ["kpi", "compute"],
    ["kpi", "explain"],
    ["writeback"],
    ["run"],
    ["status"],
    ["report"],
    ["sandbox", "serve"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_every_command_has_help(command: list[str]) -> None:
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: " in result.output


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kpisync.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=60
    )


def test_unknown_command_is_usage_error() -> None:
    proc = run("synk")
    assert proc.returncode == 2
    assert "No such command" in proc.stderr


def test_missing_config_file_exits_2_in_one_line(tmp_path: Path) -> None:
    proc = run("sync", str(tmp_path / "nope.yaml"))
    assert proc.returncode == 2
    assert proc.stderr.strip() == "nope.yaml: cannot read file: No such file or directory"


def test_a_store_that_is_not_one_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "notes.db").write_text("not sqlite at all\n" * 100)
    for path in (tmp_path, tmp_path / "notes.db"):
        proc = run("kpi", "compute", "--store", str(path))
        assert proc.returncode == 2, proc.stderr
        assert "not a usable kpisync store" in proc.stderr and "Traceback" not in proc.stderr


def test_compute_needs_a_file_or_a_store() -> None:
    proc = run("kpi", "compute")
    assert proc.returncode == 2
    assert "give a config FILE or --store DB" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_compute_on_a_missing_store_exits_2(tmp_path: Path) -> None:
    proc = run("kpi", "compute", "--store", str(tmp_path / "none.db"))
    assert proc.returncode == 2
    assert "no such store" in proc.stderr
    assert not (tmp_path / "none.db").exists()


def test_config_validate_reports_every_file(tmp_path: Path) -> None:
    bad1 = tmp_path / "a.yaml"
    bad1.write_text("crm: salesforce\nname: a\nauth: {method: session, session_id: x}\ntimezone: Nowhere/City\n")
    bad2 = tmp_path / "b.yaml"
    bad2.write_text("crm: hubspot\nname: b\nauth: {method: private_app}\n")
    proc = run("config", "validate", str(bad1), str(bad2))
    assert proc.returncode == 2
    assert "a.yaml: timezone: 'Nowhere/City' is not a time zone" in proc.stderr
    assert "b.yaml: auth: method 'private_app' needs access_token" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_store_locked_by_another_process_exits_2(tmp_path: Path) -> None:
    from kpisync.sync.lock import StoreLock

    config = tmp_path / "s.yaml"
    config.write_text("crm: salesforce\nname: s\nauth: {method: session, session_id: '${T_SID}'}\n")
    with StoreLock(tmp_path / "data" / "s.db", "test holder"):
        proc = subprocess.run(
            [sys.executable, "-m", "kpisync.cli", "sync", str(config)],
            capture_output=True,
            text=True,
            env={**__import__("os").environ, "T_SID": "00Dfake!session"},
            timeout=60,
        )
    assert proc.returncode == 2
    assert "is in use by pid" in proc.stderr and "test holder" in proc.stderr
    assert "00Dfake" not in proc.stderr
