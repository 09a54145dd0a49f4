"""Timestamps in the store's one format: UTC ISO 8601, second precision, `Z`.

CRMs send `2026-03-04T15:16:17.000+0000` (Salesforce), `2026-03-04T15:16:17.123Z`
(HubSpot), epoch milliseconds (HubSpot, as strings) and plain dates. Connectors
normalise them here, once, before anything is stored (canonical-model.md,
Conventions).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

_OFFSET_NO_COLON = re.compile(r"([+-]\d{2})(\d{2})$")


class BadTimestamp(ValueError):
    """A value that is not a timestamp in any format the CRMs use."""


def utc_now() -> str:
    return format_ts(datetime.now(UTC))


def format_ts(moment: datetime) -> str:
    """`2026-03-04T15:16:17Z` for an aware datetime (naive ones are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_ts(value: str) -> datetime:
    """Parse a stored or CRM timestamp into an aware UTC datetime."""
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    text = _OFFSET_NO_COLON.sub(r"\1:\2", text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise BadTimestamp(f"not a timestamp: {value!r}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def normalize_ts(value: object) -> str | None:
    """Any CRM timestamp (ISO with any offset, epoch millis, date) → canonical text.

    None and "" stay None (unknown is NULL). Raises BadTimestamp for anything else.
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return format_ts(value)
    if isinstance(value, date):
        return format_ts(datetime(value.year, value.month, value.day, tzinfo=UTC))
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _from_epoch_ms(float(value))
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit() or (text.startswith("-") and text[1:].isdigit()):
            return _from_epoch_ms(float(text))
        return format_ts(parse_ts(text))
    raise BadTimestamp(f"not a timestamp: {value!r}")


def normalize_date(value: object) -> str | None:
    """A date-only value (`2026-03-04`, or a timestamp's UTC date) → `YYYY-MM-DD`."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and len(value.strip()) == 10:
        try:
            return date.fromisoformat(value.strip()).isoformat()
        except ValueError as exc:
            raise BadTimestamp(f"not a date: {value!r}") from exc
    stamp = normalize_ts(value)
    return stamp[:10] if stamp else None


def _from_epoch_ms(millis: float) -> str:
    try:
        moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=millis)
    except OverflowError as exc:
        raise BadTimestamp(f"epoch milliseconds out of range: {millis!r}") from exc
    return format_ts(moment)
