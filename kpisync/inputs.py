"""CSV inputs for what a CRM does not hold: quotas, marketing spend, survey answers.

    load_inputs(store, quotas_csv="quotas.csv", spend_csv="spend.csv")  # -> {"quotas": 12, ...}

Each file is checked whole before anything is written, then replaces, in one
transaction, the rows an earlier load of the same file wrote: spend and
survey ids are `<file name>:<line>`, quota rows carry the file name in
`source`. A bad cell raises `InputError` naming the file, line and column.

Columns (a header row; order free; extra columns ignored):
- quotas: `user_id` or `email` (or `user_email`), `team`, `period_start`,
  `period_end` (dates, end exclusive), `amount`. A team target has no user.
- spend: `campaign`, `channel`, `period_start`, `period_end`, `amount`.
- surveys: `kind` (nps, csat, enps), `user_id` or `email`/`user_email`,
  `contact_id`, `account_id` (at least one), `score`, `submitted_at`.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from kpisync.errors import ConfigError
from kpisync.store import Store
from kpisync.timestamps import BadTimestamp, normalize_date, normalize_ts

SURVEY_KINDS = ("nps", "csat", "enps")
EMAIL_COLUMNS = ("email", "user_email")


class InputError(ConfigError):
    """A CSV input cell (or header) that cannot be loaded."""

    def __init__(self, file: Path | str, line: int, column: str | None, message: str) -> None:
        self.line, self.column = line, column
        where = f"line {line}" + (f", column {column}" if column else "")
        super().__init__(file, [f"{where}: {message}"])


class CsvRows:
    """The data rows of one CSV file, with cell parsers that name file, line and column."""

    def __init__(self, path: Path, required: tuple[str, ...], one_of: tuple[str, ...] = ()) -> None:
        self.path = path
        try:
            with path.open(newline="", encoding="utf-8-sig") as handle:
                reader = csv.DictReader(handle)
                header = [h.strip() for h in reader.fieldnames or []]
                reader.fieldnames = header
                self.rows = [(reader.line_num, row) for row in reader]
        except OSError as exc:
            raise InputError(path, 0, None, f"cannot read: {exc.strerror}") from None
        except (UnicodeDecodeError, csv.Error) as exc:
            raise InputError(path, 1, None, f"not a UTF-8 CSV file: {exc}") from None
        missing = [c for c in required if c not in header]
        if missing:
            raise InputError(path, 1, missing[0], "missing column in the header")
        if one_of and not set(one_of) & set(header):
            raise InputError(path, 1, None, f"needs one of the columns {', '.join(one_of)}")
        self.line = 0
        self.row: dict[str, Any] = {}

    def __iter__(self) -> Iterator[CsvRows]:
        for line, row in self.rows:
            if any((v or "").strip() for v in row.values() if isinstance(v, str)):
                self.line, self.row = line, row
                yield self

    def fail(self, column: str | None, message: str) -> InputError:
        return InputError(self.path, self.line, column, message)

    def text(self, column: str, required: bool = False) -> str | None:
        value = (self.row.get(column) or "").strip()
        if not value and required:
            raise self.fail(column, "is empty")
        return value or None

    def parse(self, column: str, convert: Callable[[str], Any], what: str, required: bool = True) -> Any:
        value = self.text(column, required)
        if value is None:
            return None
        try:
            result = convert(value)
        except (ValueError, BadTimestamp):
            raise self.fail(column, f"not {what}: {value!r}") from None
        if result is None:
            raise self.fail(column, f"not {what}: {value!r}")
        return result

    def number(self, column: str) -> float:
        return float(self.parse(column, float, "a number"))

    def date(self, column: str) -> str:
        return str(self.parse(column, normalize_date, "a date (YYYY-MM-DD)"))

    def period(self) -> tuple[str, str]:
        start, end = self.date("period_start"), self.date("period_end")
        if end <= start:
            raise self.fail("period_end", f"must be after period_start ({start})")
        return start, end

    def user(self, emails: dict[str, str], required: bool) -> str | None:
        user_id = self.text("user_id")
        if user_id:
            return user_id
        for column in EMAIL_COLUMNS:
            email = self.text(column)
            if email:
                if email.lower() not in emails:
                    raise self.fail(column, f"no user with email {email!r} in the store")
                return emails[email.lower()]
        if required:
            raise self.fail("user_id", "is empty (give user_id or email)")
        return None


def _emails(store: Store) -> dict[str, str]:
    rows = store.conn.execute("SELECT lower(email), id FROM users WHERE email IS NOT NULL")
    return {email: user_id for email, user_id in rows}


def _quotas(store: Store, path: Path) -> list[dict[str, Any]]:
    emails, out = _emails(store), []
    for r in CsvRows(path, ("period_start", "period_end", "amount")):
        user_id, team = r.user(emails, required=False), r.text("team")
        if user_id is None and team is None:
            raise r.fail("user_id", "a quota needs a user (user_id or email) or a team")
        start, end = r.period()
        out.append(
            {
                "user_id": user_id,
                "team": team,
                "period_start": start,
                "period_end": end,
                "amount": r.number("amount"),
                "source": path.name,
            }
        )
    return out


def _spend(store: Store, path: Path) -> list[dict[str, Any]]:
    out = []
    for r in CsvRows(path, ("channel", "period_start", "period_end", "amount")):
        start, end = r.period()
        out.append(
            {
                "id": f"{path.name}:{r.line}",
                "campaign": r.text("campaign"),
                "channel": r.text("channel"),
                "period_start": start,
                "period_end": end,
                "amount": r.number("amount"),
            }
        )
    return out


def _surveys(store: Store, path: Path) -> list[dict[str, Any]]:
    emails, out = _emails(store), []
    for r in CsvRows(path, ("kind", "score", "submitted_at")):
        kind = (r.text("kind", required=True) or "").lower()
        if kind not in SURVEY_KINDS:
            raise r.fail("kind", f"must be one of {', '.join(SURVEY_KINDS)}, not {kind!r}")
        user_id = r.user(emails, required=kind == "enps")
        contact_id, account_id = r.text("contact_id"), r.text("account_id")
        if not (user_id or contact_id or account_id):
            raise r.fail("contact_id", "an answer needs a user_id, contact_id or account_id")
        score = r.parse("score", int, "a whole number")
        if kind != "csat" and not 0 <= score <= 10:
            raise r.fail("score", f"{kind} scores are 0-10, not {score}")
        out.append(
            {
                "id": f"{path.name}:{r.line}",
                "kind": kind,
                "user_id": user_id,
                "contact_id": contact_id,
                "account_id": account_id,
                "score": score,
                "submitted_at": r.parse("submitted_at", normalize_ts, "a timestamp"),
            }
        )
    return out


def load_inputs(
    store: Store,
    quotas_csv: str | os.PathLike[str] | None = None,
    spend_csv: str | os.PathLike[str] | None = None,
    surveys_csv: str | os.PathLike[str] | None = None,
) -> dict[str, int]:
    """Load the given CSV files; returns rows loaded per table."""
    loaded: dict[str, int] = {}
    for table, file, read in (
        ("quotas", quotas_csv, _quotas),
        ("spend", spend_csv, _spend),
        ("surveys", surveys_csv, _surveys),
    ):
        if file is None:
            continue
        path = Path(file)
        rows = read(store, path)
        with store.transaction() as conn:
            if table == "quotas":
                conn.execute("DELETE FROM quotas WHERE source = ?", (path.name,))
            else:
                conn.execute(f"DELETE FROM {table} WHERE id GLOB ?", (f"{_glob_escape(path.name)}:*",))
            store.upsert(table, rows)
        loaded[table] = len(rows)
    return loaded


def _glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)
