"""The canonical store schema, as data.

This is the public contract of `shared/spec/canonical-model.md`: every table and
column listed there, with its type and primary key. Extra bookkeeping columns
and tables are allowed by the spec and are marked as such. The store module
turns these declarations into DDL and migrations; everything else (connectors,
the KPI engine, write-back) reads the column lists from here instead of
repeating them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[tuple[str, str], ...]  # (name, SQLite type)
    pk: tuple[str, ...]
    # the rows live in their primary-key B-tree, with no rowid table beside it: half
    # the writes for a table rewritten in bulk and only read by its key
    without_rowid: bool = False

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)


# Columns that every record table pulled from a CRM carries.
_RECORD_TAIL = (("is_deleted", "INTEGER"), ("raw", "TEXT"), ("synced_at", "TEXT"))

USERS = Table(
    "users",
    (
        ("id", "TEXT"),
        ("name", "TEXT"),
        ("email", "TEXT"),
        ("role", "TEXT"),
        ("team", "TEXT"),
        ("region", "TEXT"),
        ("manager_id", "TEXT"),
        ("is_active", "INTEGER"),
        # extra: users come from the CRM like every other record
        *_RECORD_TAIL,
    ),
    ("id",),
)

QUOTAS = Table(
    "quotas",
    (
        ("user_id", "TEXT"),
        ("team", "TEXT"),
        ("period_start", "TEXT"),
        ("period_end", "TEXT"),
        ("amount", "REAL"),
        ("source", "TEXT"),  # extra: 'crm' or the input file it came from
    ),
    # The spec's PK is (user_id, team, period_start); period_end joins it so that a rep's
    # monthly and quarterly quotas, which start on the same day, can both be held.
    ("user_id", "team", "period_start", "period_end"),
)

ACCOUNTS = Table(
    "accounts",
    (
        ("id", "TEXT"),
        ("name", "TEXT"),
        ("owner_id", "TEXT"),
        ("type", "TEXT"),
        ("industry", "TEXT"),
        ("country", "TEXT"),
        ("state", "TEXT"),
        ("city", "TEXT"),
        ("region", "TEXT"),
        ("created_at", "TEXT"),
        ("churned_at", "TEXT"),
        ("annual_revenue", "REAL"),
        *_RECORD_TAIL,
    ),
    ("id",),
)

CONTACTS = Table(
    "contacts",
    (
        ("id", "TEXT"),
        ("kind", "TEXT"),
        ("source_object", "TEXT"),
        ("account_id", "TEXT"),
        ("owner_id", "TEXT"),
        ("email", "TEXT"),
        ("name", "TEXT"),
        ("lifecycle_stage", "TEXT"),
        ("lead_status", "TEXT"),
        ("lead_source", "TEXT"),
        ("channel", "TEXT"),
        ("country", "TEXT"),
        ("state", "TEXT"),
        ("city", "TEXT"),
        ("region", "TEXT"),
        ("created_at", "TEXT"),
        ("converted_at", "TEXT"),
        ("converted_contact_id", "TEXT"),
        ("nps_score", "INTEGER"),
        *_RECORD_TAIL,
    ),
    ("id",),
)

LIFECYCLE_EVENTS = Table(
    "lifecycle_events",
    (
        ("contact_id", "TEXT"),
        ("stage", "TEXT"),
        ("entered_at", "TEXT"),
        ("source", "TEXT"),
    ),
    ("contact_id", "stage"),
)

OPPORTUNITIES = Table(
    "opportunities",
    (
        ("id", "TEXT"),
        ("name", "TEXT"),
        ("account_id", "TEXT"),
        ("contact_id", "TEXT"),
        ("owner_id", "TEXT"),
        ("created_by_id", "TEXT"),
        ("amount", "REAL"),
        ("stage", "TEXT"),
        ("pipeline", "TEXT"),
        ("is_closed", "INTEGER"),
        ("is_won", "INTEGER"),
        ("created_at", "TEXT"),
        ("closed_at", "TEXT"),
        ("deal_type", "TEXT"),
        ("lead_source", "TEXT"),
        ("channel", "TEXT"),
        ("competitor_price", "REAL"),
        ("region", "TEXT"),
        *_RECORD_TAIL,
    ),
    ("id",),
)

OPPORTUNITY_STAGE_HISTORY = Table(
    "opportunity_stage_history",
    (
        ("opportunity_id", "TEXT"),
        ("stage", "TEXT"),
        ("entered_at", "TEXT"),
        ("amount", "REAL"),
    ),
    ("opportunity_id", "stage", "entered_at"),
)

ACTIVITIES = Table(
    "activities",
    (
        ("id", "TEXT"),
        ("type", "TEXT"),
        ("direction", "TEXT"),
        ("owner_id", "TEXT"),
        ("contact_id", "TEXT"),
        ("account_id", "TEXT"),
        ("opportunity_id", "TEXT"),
        ("occurred_at", "TEXT"),
        ("created_at", "TEXT"),
        ("duration_s", "INTEGER"),
        ("outcome", "TEXT"),
        ("subject", "TEXT"),
        *_RECORD_TAIL,
    ),
    ("id",),
)

CASES = Table(
    "cases",
    (
        ("id", "TEXT"),
        ("account_id", "TEXT"),
        ("contact_id", "TEXT"),
        ("owner_id", "TEXT"),
        ("status", "TEXT"),
        ("priority", "TEXT"),
        ("origin", "TEXT"),
        ("created_at", "TEXT"),
        ("first_response_at", "TEXT"),
        ("closed_at", "TEXT"),
        ("is_closed", "INTEGER"),
        *_RECORD_TAIL,
    ),
    ("id",),
)

SURVEYS = Table(
    "surveys",
    (
        ("id", "TEXT"),
        ("kind", "TEXT"),
        ("contact_id", "TEXT"),
        ("account_id", "TEXT"),
        ("user_id", "TEXT"),
        ("score", "INTEGER"),
        ("submitted_at", "TEXT"),
    ),
    ("id",),
)

SPEND = Table(
    "spend",
    (
        ("id", "TEXT"),
        ("campaign", "TEXT"),
        ("channel", "TEXT"),
        ("period_start", "TEXT"),
        ("period_end", "TEXT"),
        ("amount", "REAL"),
    ),
    ("id",),
)

SYNC_STATE = Table(
    "sync_state",
    (("crm", "TEXT"), ("object", "TEXT"), ("cursor", "TEXT"), ("updated_at", "TEXT")),
    ("crm", "object"),
)

SYNC_RUNS = Table(
    "sync_runs",
    (
        ("id", "INTEGER"),
        ("crm", "TEXT"),
        ("started_at", "TEXT"),
        ("finished_at", "TEXT"),
        ("status", "TEXT"),
        ("objects_json", "TEXT"),
        ("error", "TEXT"),
        # extras: the figures `kpisync status` and the metrics endpoint show
        ("kind", "TEXT"),
        ("rows", "INTEGER"),
        ("api_calls", "INTEGER"),
    ),
    ("id",),
)

KPI_VALUES = Table(
    "kpi_values",
    (
        ("kpi", "TEXT"),
        ("grain", "TEXT"),
        ("key", "TEXT"),
        ("period", "TEXT"),
        ("value", "REAL"),
        ("numerator", "REAL"),
        ("denominator", "REAL"),
        ("unit", "TEXT"),
        ("computed_at", "TEXT"),
    ),
    ("kpi", "grain", "key", "period"),
    # a full compute rewrites millions of rows: one B-tree to fill, not a table and its key index
    without_rowid=True,
)

WRITEBACK_STATE = Table(
    "writeback_state",
    (
        ("crm", "TEXT"),
        ("object", "TEXT"),
        ("record_id", "TEXT"),
        ("field", "TEXT"),
        ("value", "TEXT"),
        ("written_at", "TEXT"),
        ("gone", "INTEGER"),  # extra: 1 = the CRM says the record no longer exists
    ),
    ("crm", "object", "record_id", "field"),
)

WRITEBACK_ERRORS = Table(
    "writeback_errors",
    (
        ("crm", "TEXT"),
        ("object", "TEXT"),
        ("record_id", "TEXT"),
        ("field", "TEXT"),
        ("value", "TEXT"),
        ("error", "TEXT"),
        ("at", "TEXT"),
    ),
    (),
)

# extra: records a connector could not map are kept here, raw, with the reason,
# so nothing the CRM sent is lost and an admin can see why it was skipped.
QUARANTINE = Table(
    "quarantine",
    (
        ("crm", "TEXT"),
        ("object", "TEXT"),
        ("record_id", "TEXT"),
        ("reason", "TEXT"),
        ("raw", "TEXT"),
        ("at", "TEXT"),
    ),
    ("crm", "object", "record_id"),
)

CANONICAL_TABLES: tuple[Table, ...] = (
    USERS,
    QUOTAS,
    ACCOUNTS,
    CONTACTS,
    LIFECYCLE_EVENTS,
    OPPORTUNITIES,
    OPPORTUNITY_STAGE_HISTORY,
    ACTIVITIES,
    CASES,
    SURVEYS,
    SPEND,
    SYNC_STATE,
    SYNC_RUNS,
    KPI_VALUES,
    WRITEBACK_STATE,
    WRITEBACK_ERRORS,
)

TABLES: dict[str, Table] = {t.name: t for t in (*CANONICAL_TABLES, QUARANTINE)}

# Indexes the store keeps. The KPI engine reads each canonical table once, in a
# full scan, into its own indexed live tables (kpi/live.py); `kpisync status`
# lists a CRM's runs.
INDEXES: tuple[tuple[str, str, tuple[str, ...]], ...] = (("idx_sync_runs_crm", "sync_runs", ("crm", "started_at")),)

# Indexes older stores carry that no query reads any more: every sync paid to keep
# them (five on activities alone); migrations 5 and 7 drop them. The stage-history
# one went last: the KPI engine copies that table as a live table now.
RETIRED_INDEXES: tuple[str, ...] = (
    "idx_stage_history_time",
    "idx_activities_owner_time",
    "idx_activities_contact_time",
    "idx_activities_account",
    "idx_activities_opportunity",
    "idx_activities_created",
    "idx_opportunities_owner_closed",
    "idx_opportunities_account",
    "idx_opportunities_created",
    "idx_contacts_owner",
    "idx_contacts_account",
    "idx_contacts_converted",
    "idx_lifecycle_stage_time",
    "idx_cases_owner",
    "idx_cases_account",
    "idx_surveys_kind_time",
    "idx_accounts_owner",
)
