"""The error tree: what kind of failure decides what the CLI and the daemon do.

- ConfigError: stop, tell the admin which file and key (exit 2).
- UsageError: bad arguments (exit 2).
- RunError: a run failed (CRM down, records rejected) — exit 1; the cursor is intact.
  - RetriableError: back off and try again (429, 5xx, connection reset).
  - LimitReached: the CRM's API budget is spent; stop cleanly, try at the next run.
  - AuthError: credentials refused; stop, tell the admin.
- SkippableRecord: one bad record; log, quarantine, go on.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class KpisyncError(Exception):
    exit_code = 1


class ConfigError(KpisyncError):
    exit_code = 2

    def __init__(self, file: Path | str, problems: Sequence[str]) -> None:
        self.file = Path(file)
        self.problems = list(problems)
        super().__init__("\n".join(f"{self.file.name}: {p}" for p in self.problems))


class UsageError(KpisyncError):
    exit_code = 2


class RunError(KpisyncError):
    exit_code = 1


class RetriableError(RunError):
    """Worth another try after `retry_after` seconds (None: use the backoff)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LimitReached(RunError):
    """The CRM's API budget (daily calls) is spent or below the configured floor."""


class AuthError(RunError):
    """The CRM refused the credentials."""


class LockedError(KpisyncError):
    """Another kpisync process holds the store."""

    exit_code = 2


class SkippableRecord(Exception):
    """One record cannot be mapped; it is quarantined with this reason."""
