"""The generated org's off-CRM data as CSV inputs beside a sandbox config.

Quotas and employee surveys name reps by e-mail (as an admin's spreadsheet
would), customer surveys name CRM record ids; the config gets an `inputs:`
section pointing at the files, so `kpisync kpi compute <config>` uses them.
"""

from __future__ import annotations

import csv
import sqlite3
from collections.abc import Callable
from pathlib import Path


def attach_inputs(
    config_path: Path, canonical: Path, crm_id: Callable[[str], str | None], *, spend: bool
) -> dict[str, Path]:
    folder = config_path.parent / "inputs"
    folder.mkdir(exist_ok=True)
    conn = sqlite3.connect(f"file:{canonical}?mode=ro", uri=True)
    try:
        files = {
            "quotas_csv": _write(
                folder / "quotas.csv",
                ["email", "team", "period_start", "period_end", "amount"],
                conn.execute(
                    "SELECT u.email, q.team, q.period_start, q.period_end, q.amount "
                    "FROM quotas q LEFT JOIN users u ON u.id = q.user_id ORDER BY q.period_start, q.team, u.email"
                ),
            ),
            "surveys_csv": _write(
                folder / "surveys.csv",
                ["kind", "email", "contact_id", "account_id", "score", "submitted_at"],
                (
                    row
                    for kind, email, contact, account, score, at in conn.execute(
                        "SELECT s.kind, u.email, s.contact_id, s.account_id, s.score, s.submitted_at "
                        "FROM surveys s LEFT JOIN users u ON u.id = s.user_id ORDER BY s.id"
                    )
                    # an answer whose person or account the CRM does not have cannot be attributed
                    if any(
                        (row := (kind, email, _translated(crm_id, contact), _translated(crm_id, account), score, at))[
                            1:4
                        ]
                    )
                ),
            ),
        }
        if spend:
            files["spend_csv"] = _write(
                folder / "spend.csv",
                ["campaign", "channel", "period_start", "period_end", "amount"],
                conn.execute("SELECT campaign, channel, period_start, period_end, amount FROM spend ORDER BY id"),
            )
    finally:
        conn.close()
    text = config_path.read_text(encoding="utf-8")
    if "\ninputs:" not in text:
        lines = "".join(f"  {key}: inputs/{path.name}\n" for key, path in files.items())
        config_path.write_text(
            text.rstrip("\n") + "\n\n# what the CRM does not hold\ninputs:\n" + lines, encoding="utf-8"
        )
    return files


def _translated(crm_id: Callable[[str], str | None], canonical_id: str | None) -> str | None:
    return crm_id(canonical_id) if canonical_id else None


def _write(path: Path, header: list[str], rows: object) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)  # type: ignore[arg-type]
    return path
