"""Logging that never shows a secret.

Every handler kpisync installs carries `RedactingFilter`: it replaces the
values of secrets the config resolved (`register_secret`) and anything that
looks like a credential on the wire — Authorization headers, bearer tokens,
Salesforce session ids, HubSpot private-app tokens, `password=`/`token=`
pairs, SOAP `<sessionId>`/`<password>` elements — wherever they appear in a
message or its arguments, including exception text and tracebacks.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import warnings
from typing import Any

MASK = "[redacted]"

_PATTERNS = [
    re.compile(r"(?i)(authorization\s*[:=]\s*)(bearer\s+|basic\s+|token\s+)?[^\s,'\"}]+"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/!=-]{8,}"),
    # Salesforce session ids / access tokens: org id, '!', long opaque tail
    re.compile(r"()\b00D[A-Za-z0-9]{12,15}![A-Za-z0-9._-]{20,}"),
    # HubSpot private app and OAuth tokens
    re.compile(r"()\bpat-(?:na|eu|ap)\d-[A-Za-z0-9-]{8,}"),
    # key=value (query strings, form bodies) and "key": "value" (JSON)
    re.compile(
        r"(?i)((?:password|passwd|security_token|access_token|refresh_token|client_secret|session_id|sessionid|"
        r"assertion|token)(?:=|[\"']\s*:\s*[\"']))[^\s&,'\"}]+"
    ),
    re.compile(r"(?i)(<(?:sessionId|password|n1:password|urn:password)>)[^<]+"),
]

_lock = threading.Lock()
_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Mask this exact value in every log line from now on (short values are ignored)."""
    if value and len(value) >= 4:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg = redact(message)
        record.args = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + "Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in ("crm", "object", "run_id"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_text:
            entry["exc"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


class _UtcFormatter(logging.Formatter):
    import time as _time

    converter = _time.gmtime


def setup_logging(fmt: str = "text", verbosity: int = 0, stream: Any = None) -> logging.Handler:
    """Route kpisync's (and the CRM clients') logs to stderr, redacted."""
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RedactingFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(_UtcFormatter("%(asctime)sZ %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S"))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_kpisync", False)]:
        root.removeHandler(old)
    handler._kpisync = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # urllib3 at debug level prints request lines with query strings: keep it at warning
    logging.getLogger("urllib3").setLevel(logging.WARNING if verbosity < 3 else logging.DEBUG)
    # configuration warnings (a literal secret, an unset variable) as one plain log line
    warnings.showwarning = lambda message, category, *args, **kwargs: logging.getLogger("kpisync").warning(
        "%s", message
    )
    return handler
