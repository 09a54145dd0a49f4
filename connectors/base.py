"""The one small interface every CRM connector offers the rest of kpisync.

A connector knows one CRM's wire protocol and how its records become canonical
rows; it knows nothing of KPIs, cursors' storage or the schedule. The sync
engine (`kpisync.sync.engine`) drives it:

    for spec in connector.objects():
        for page in connector.pull(spec, cursor=store.get_cursor(crm, spec.name), full=False):
            with store.transaction():          # rows and cursor move together
                ...store page.rows, page.quarantined...
                store.set_cursor(crm, spec.name, page.cursor)

Pages are streamed: a connector never holds an object's whole result.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable


@dataclass(frozen=True)
class ObjectSpec:
    """One CRM object that is pulled: adding an object is adding a row to a connector's table."""

    name: str  # CRM object name, also the sync_state key: "Opportunity", "deals"
    tables: tuple[str, ...]  # canonical tables its pages feed
    cursor_field: str | None = None  # None: no replication key, pulled whole (users; HubSpot's archived
    # listings, whose cursor says when the last whole listing began)
    options: dict[str, Any] = field(default_factory=dict)  # connector-specific (fields, associations…)


@dataclass(frozen=True)
class Quarantined:
    """A record that could not be mapped: kept raw with the reason, never silently dropped."""

    record_id: str
    reason: str
    raw: str


@dataclass
class Page:
    """Canonical rows from one CRM page, and the cursor they cover.

    `rows` maps a canonical table to its rows; rows of one table may differ in
    keys (a deletion marker carries only id, is_deleted and synced_at), the
    engine groups them. `cursor` is the highest replication-key value this page
    covers (inclusive): the next pull starts at it (`>=`) and upserts make the
    repeated boundary rows harmless. None: leave the stored cursor as it is.
    """

    rows: dict[str, list[dict[str, Any]]]
    cursor: str | None = None
    quarantined: list[Quarantined] = field(default_factory=list)

    def count(self) -> int:
        return sum(len(r) for r in self.rows.values())


@dataclass(frozen=True)
class CheckResult:
    """One line of `kpisync doctor`."""

    name: str
    ok: bool
    detail: str = ""
    severity: Literal["error", "warning"] = "error"


@dataclass(frozen=True)
class FieldWrite:
    """One KPI value for one CRM field of one record. value None clears the field."""

    object: str  # CRM object: "User", "Lead", "contacts", the scorecard object
    record_id: str  # CRM record id (for a HubSpot scorecard: its unique key)
    field: str
    value: float | None
    owner_id: str | None = None  # the rep, where the target record must be created/owned


@dataclass(frozen=True)
class WriteResult:
    write: FieldWrite
    ok: bool
    error: str | None = None
    gone: bool = False  # the record no longer exists in the CRM: drop it, do not retry


@dataclass(frozen=True)
class FieldDef:
    """A write-back field that provisioning must create."""

    grain: str  # user | contact | account | opportunity
    field: str  # API name
    label: str
    unit: str  # the KPI unit: decides the CRM field type (percent, number, currency)


@dataclass(frozen=True)
class Change:
    """Something provisioning created (or would create, on a dry run)."""

    object: str
    field: str
    action: str  # "create field", "grant field access", "create property group", ...
    done: bool
    detail: str = ""


@dataclass(frozen=True)
class ApiUsage:
    calls: int  # API calls this connector made since it was built
    remaining: int | None = None  # calls left in the CRM's daily budget, when it says
    limit: int | None = None


@runtime_checkable
class Connector(Protocol):
    crm: str  # "salesforce" | "hubspot"

    def objects(self) -> Sequence[ObjectSpec]: ...

    def check(self) -> list[CheckResult]: ...

    def pull(self, spec: ObjectSpec, cursor: str | None, *, full: bool = False) -> Iterator[Page]: ...

    def locate(self, grain: str, key: str, source_object: str | None, period: str) -> tuple[str, str] | None:
        """The CRM (object, record id) a KPI value of this grain/key/period goes to; None: nowhere."""
        ...

    def push(self, writes: Sequence[FieldWrite]) -> list[WriteResult]: ...

    def provision(self, fields: Sequence[FieldDef], *, dry_run: bool = False) -> list[Change]: ...

    def usage(self) -> ApiUsage: ...

    def close(self) -> None: ...
