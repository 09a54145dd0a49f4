"""Security: secrets never leave memory, TLS is always verified, YAML field names
never reach a query unchecked, the store is private, metrics stay on loopback."""

from __future__ import annotations

import logging
import re
import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from kpisync.cli import main
from kpisync.config import load_config
from kpisync.errors import ConfigError
from tests.reliability.conftest import edit_config, store_path

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes is not None else "")


def _secrets(box: Any) -> list[str]:
    """Every secret value the run handled: configured credentials and the tokens the CRM issued."""
    if box.crm == "salesforce":
        values = [box.info["password"], box.info["security_token"], *box.api.sessions]
    else:
        values = [box.private_token, box.refresh_token, box.client_secret, *box._oauth_tokens]
    values = [v for v in values if v]
    assert len(values) >= 2
    return values


def _store_text(db: Path) -> str:
    """Every row of every table, plus the raw bytes of the file and its WAL (freed pages included)."""
    conn = sqlite3.connect(db)
    try:
        dump = "\n".join(conn.iterdump())
    finally:
        conn.close()
    raw = b"".join(Path(f"{db}{suffix}").read_bytes() for suffix in ("", "-wal") if Path(f"{db}{suffix}").exists())
    return dump + raw.decode("latin-1")


def test_full_cycle_never_shows_a_secret(box: Any, tmp_path: Path) -> None:
    cfg = str(box.config_path)
    out = []
    steps = [["provision"], ["sync"], ["kpi", "compute"], ["writeback"], ["status"], ["doctor"]]
    for fmt, step in [("json", s) for s in steps] + [("text", ["sync", "--full"]), ("text", ["doctor"])]:
        code, text = _cli("-vv", "--log-format", fmt, *step, cfg)
        assert code == 0, (step, text)
        out.append(text)
    # a failing run too: its error line and sync_runs row must stay clean
    edit_config(box.config_path, connection={"max_retries": 0})
    box.server.faults.add(_fault(status=500, path=r".*", times=1000))
    code, text = _cli("-vv", "sync", cfg)
    assert code == 1
    out.append(text)
    box.server.faults.clear()
    report = tmp_path / "report.html"
    code, text = _cli("report", cfg, "--out", str(report))
    assert code == 0, text
    db = store_path(box.config_path)
    logging.getLogger().handlers.clear()
    places = {"cli output and logs": "\n".join(out), "store": _store_text(db), "report": report.read_text()}
    assert len(places["cli output and logs"]) > 2000  # -vv really logged something
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM sync_runs WHERE status != 'ok'").fetchone()[0] >= 1
    for secret in _secrets(box):
        for where, text in places.items():
            assert secret not in text, f"a secret ({secret[:4]}…) appears in the {where}"


def _fault(**kw: Any) -> Any:
    from kpisync.connectors.sandbox.server import Fault

    return Fault(kind="status", **kw)


def test_store_file_is_private(box: Any) -> None:
    code, text = _cli("sync", str(box.config_path))
    assert code == 0, text
    db = store_path(box.config_path)
    assert stat.S_IMODE(db.stat().st_mode) == 0o600, oct(db.stat().st_mode)


def test_tls_without_the_sandbox_ca_fails_verification(box: Any) -> None:
    config = yaml.safe_load(box.config_path.read_text())
    config["connection"].pop("ca_bundle")
    box.config_path.write_text(yaml.safe_dump(config))
    code, text = _cli("sync", str(box.config_path))
    assert code == 1, text
    assert re.search(r"TLS verification failed|certificate", text), text
    assert "Traceback" not in text
    code, text = _cli("doctor", str(box.config_path))
    assert code == 1 and re.search(r"TLS verification failed|certificate", text), text


def test_no_code_turns_tls_verification_off() -> None:
    pattern = re.compile(r"verify\s*=\s*False|CERT_NONE|check_hostname\s*=\s*False|_create_unverified_context")
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for folder in ("kpisync", "connectors", "sync", "kpi")
        for path in (ROOT / folder).rglob("*.py")
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []


BAD_NAMES = ["Amount'; DELETE", "Amount OR Id != null", "Name--", "Amount__c/../x", "a..b", "x y", 'x"y', "Amount)"]


@pytest.mark.parametrize("key", ["nps_field", "competitor_price_field", "churn_date_field", "region"])
def test_field_names_with_query_syntax_are_refused(box: Any, key: str) -> None:
    original = box.config_path.read_text()
    for bad in BAD_NAMES:
        box.config_path.write_text(original)
        value: Any = {"field": bad, "values": {"x": "emea"}} if key == "region" else bad
        edit_config(box.config_path, mapping={key: value})
        with pytest.raises(ConfigError, match=re.escape(key)):
            load_config(box.config_path)
        code, text = _cli("config", "validate", str(box.config_path))
        assert code == 2 and key in text, (bad, text)


def test_a_mapped_field_missing_from_the_crm_never_reaches_a_query(box: Any) -> None:
    ghost = "Ghost_Field__c" if box.crm == "salesforce" else "ghost_field"
    edit_config(box.config_path, mapping={"nps_field": ghost})
    code, text = _cli("doctor", str(box.config_path))
    assert ghost in text, text
    code, text = _cli("sync", str(box.config_path))
    assert code == 0, text
    sent = " ".join(f"{r['path']}?{r['query']}" for r in _requests(box))
    assert "select" in sent.lower() or "/crm/v3/" in sent  # queries were sent and are visible here
    assert ghost not in sent and ghost.lower() not in sent.lower()


def _requests(box: Any) -> list[dict[str, Any]]:
    log = getattr(box.server, "log", None) or getattr(box.server, "requests", None)
    assert log is not None, "sandbox keeps no request log"
    return [r if isinstance(r, dict) else vars(r) for r in list(log)]


def test_metrics_bind_loopback_by_default(box: Any) -> None:
    from kpisync.sync import metrics

    config = load_config(box.config_path)
    assert config.metrics.host == "127.0.0.1"
    server = metrics.MetricsServer(metrics.Metrics(), port=0)
    try:
        assert server.server_address[0] == "127.0.0.1"
    finally:
        server.server_close()
