"""Secrets never reach a log line."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest

from kpisync.config import load_config
from kpisync.logs import redact, setup_logging

SECRETS = {
    "T_LOG_PASSWORD": "Pa55-word-visible?",
    "T_LOG_TOKEN": "SecTokXYZ123",
}


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> io.StringIO:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "c.yaml").write_text(
        "crm: salesforce\nname: c\nauth:\n  username: u@x.example\n"
        "  password: ${T_LOG_PASSWORD}\n  security_token: ${T_LOG_TOKEN}\n"
    )
    load_config(tmp_path / "c.yaml")  # registers the resolved secrets
    stream = io.StringIO()
    setup_logging("text", 2, stream=stream)
    yield stream
    logging.getLogger().handlers = [h for h in logging.getLogger().handlers if not getattr(h, "_kpisync", False)]


def test_configured_secrets_are_masked_everywhere(captured: io.StringIO) -> None:
    log = logging.getLogger("kpisync.test")
    log.info("login with %s and %s", SECRETS["T_LOG_PASSWORD"], SECRETS["T_LOG_TOKEN"])
    log.warning("body: <password>%s%s</password>", SECRETS["T_LOG_PASSWORD"], SECRETS["T_LOG_TOKEN"])
    try:
        raise RuntimeError(f"server said no to {SECRETS['T_LOG_PASSWORD']}")
    except RuntimeError:
        log.exception("failed")
    text = captured.getvalue()
    for value in SECRETS.values():
        assert value not in text
    assert text.count("[redacted]") >= 4
    assert "RuntimeError" in text  # the traceback is still there, minus the secret


def test_wire_credentials_are_masked(captured: io.StringIO) -> None:
    log = logging.getLogger("kpisync.test")
    log.info("GET /x Authorization: Bearer 00D8d000001KpQrEAK!AQ4AQLongSessionValue0123456789")
    log.info('token response {"access_token": "pat-na1-1234abcd-5678", "expires_in": 1800}')
    log.info("POST /services/oauth2/token grant_type=jwt&assertion=eyJhbGciOiJSUzI1NiJ9.payload.sig")
    text = captured.getvalue()
    for leaked in ("AQ4AQLongSessionValue", "pat-na1-1234abcd", "eyJhbGciOiJSUzI1NiJ9"):
        assert leaked not in text


def test_json_log_format_is_one_object_per_line(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    setup_logging("json", 1, stream=stream)
    logging.getLogger("kpisync.test").info("hello %s", "world")
    line = stream.getvalue().strip().splitlines()[-1]
    assert json.loads(line)["msg"] == "hello world"


def test_redact_leaves_ordinary_text_alone() -> None:
    assert redact("synced 1,204 rows of Opportunity in 3.2s") == "synced 1,204 rows of Opportunity in 3.2s"
    assert redact("auth.password: environment variable X is not set") == (
        "auth.password: environment variable X is not set"
    )
