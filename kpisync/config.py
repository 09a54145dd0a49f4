"""One YAML file per CRM, validated into typed models.

    config = load_config("salesforce.yaml")      # raises ConfigError listing every problem

Secrets are written as references — `${SF_PASSWORD}` (environment) or
`${file:/run/secrets/sf_password}` (a file outside the repo) — and resolved at
load; a missing variable is an error naming the key. A literal secret is
accepted with a warning. Secrets are held as `SecretStr`, so a model printed
into a log shows `**********`.

Relative paths (store, inputs, CA bundle, key files) are taken relative to the
YAML file's folder, so a config works from any working directory.

`config.example.yaml` documents every key; `config.schema.json` (for editors) is
generated from these models by `python -m kpisync.config` and a test fails when
either drifts from them.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import sys
import warnings
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from kpisync.errors import ConfigError
from kpisync.logs import register_secret

# Field names from YAML end up in SOQL strings and URLs: only plain identifiers
# (optionally one relationship hop, `UserRole.Name`) get through.
_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,79}(\.[A-Za-z][A-Za-z0-9_]{0,79})?$")
_ENV_REF = re.compile(r"\$\{([^}]*)\}")
_SECRET_KEYS = {
    "password",
    "security_token",
    "session_id",
    "access_token",
    "refresh_token",
    "client_secret",
    "private_key",
}

ROLES = ("sdr", "bdr", "ae", "am", "manager", "other")
CHANNELS = ("referral", "inbound", "outbound", "event", "paid", "other")
DEAL_TYPES = ("new_business", "upsell", "cross_sell", "renewal", "other")
ACTIVITY_TYPES = ("call", "email", "meeting", "visit", "task", "note", "other")
OUTCOMES = (
    "connected",
    "no_answer",
    "positive",
    "negative",
    "replied",
    "booked",
    "completed",
    "no_show",
    "canceled",
)
STAGES = ("subscriber", "lead", "mql", "sql", "opportunity", "customer", "evangelist", "other")
WRITEBACK_PERIODS = (
    "current_month",
    "current_quarter",
    "current_year",
    "rolling-7d",
    "rolling-30d",
    "rolling-90d",
    "all",
)
WRITEBACK_GRAINS = ("user", "contact", "account", "opportunity")


def _field_name(value: str) -> str:
    if not _IDENTIFIER.match(value):
        raise ValueError(
            f"{value!r} is not a field name (letters, digits and _ only, at most one '.' for a relationship)"
        )
    return value


FieldName = Annotated[str, AfterValidator(_field_name)]


def _time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{value!r} is not a time zone (use an IANA name like Europe/Berlin)") from exc
    return value


TimeZone = Annotated[str, AfterValidator(_time_zone)]

_INTERVAL = re.compile(
    r"^(?:every\s+)?(\d+)\s*(s|sec|secs|second|seconds|m|min|mins|minute|minutes|"
    r"h|hr|hrs|hour|hours|d|day|days)$",
    re.IGNORECASE,
)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_interval(text: str) -> timedelta | None:
    """`every 15 minutes`, `15m`, `1h` → timedelta; None when it is not an interval."""
    match = _INTERVAL.match(text.strip())
    if not match:
        return None
    number, unit = int(match.group(1)), match.group(2).lower()
    return timedelta(seconds=number * _UNIT_SECONDS[unit[0]])


def _schedule_expr(value: str) -> str:
    if parse_interval(value) is not None:
        if parse_interval(value) == timedelta(0):
            raise ValueError(f"{value!r} is a zero interval")
        return value
    fields = value.split()
    if len(fields) == 5:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a valid cron expression: {exc}") from exc
        return value
    raise ValueError(
        f"{value!r} is not an interval or cron expression (e.g. 'every 15 minutes', '1h', or '*/15 * * * *')"
    )


Schedule = Annotated[str, AfterValidator(_schedule_expr)]


def _interval_expr(value: str) -> str:
    if parse_interval(value) is None:
        raise ValueError(f"{value!r} is not an interval (e.g. '1h', 'every 30 minutes'; '0s': every sync)")
    return value


Interval = Annotated[str, AfterValidator(_interval_expr)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------- mappings


class ValueMap(Strict):
    """Maps a CRM field's values onto one of kpisync's canonical values."""

    field: FieldName = Field(description="CRM field (API name) whose value is mapped")
    values: dict[str, str] = Field(default_factory=dict, description="CRM value → canonical value (case-insensitive)")
    match: Literal["exact", "prefix", "contains"] = Field(
        "exact", description="how a CRM value is compared with the keys of `values`"
    )
    default: str | None = Field(None, description="canonical value when nothing matches")

    def lookup(self, raw: object) -> str | None:
        if raw is None or raw == "":
            return self.default
        text = str(raw).strip().lower()
        for key, canonical in self.values.items():
            probe = key.strip().lower()
            if (
                (self.match == "exact" and text == probe)
                or (self.match == "prefix" and text.startswith(probe))
                or (self.match == "contains" and probe in text)
            ):
                return canonical
        return self.default


def _checked_map(allowed: tuple[str, ...]) -> Any:
    def check(vmap: ValueMap | None) -> ValueMap | None:
        if vmap is None:
            return None
        bad = [v for v in (*vmap.values.values(), vmap.default) if v is not None and v not in allowed]
        if bad:
            raise ValueError(f"{bad[0]!r} is not one of {', '.join(allowed)}")
        return vmap

    return AfterValidator(check)


RoleMap = Annotated[ValueMap | None, _checked_map(ROLES)]
ChannelMap = Annotated[ValueMap | None, _checked_map(CHANNELS)]
DealTypeMap = Annotated[ValueMap | None, _checked_map(DEAL_TYPES)]
ActivityTypeMap = Annotated[ValueMap | None, _checked_map(ACTIVITY_TYPES)]
OutcomeMap = Annotated[ValueMap, _checked_map(OUTCOMES)]
DirectionMap = Annotated[ValueMap | None, _checked_map(("inbound", "outbound"))]


class StageRule(Strict):
    """When a Salesforce lead counts as MQL/SQL (the CRM has no native stage for it)."""

    lead_statuses: list[str] = Field(
        default_factory=list, description="Lead.Status values that mean the lead reached the stage"
    )
    date_field: FieldName | None = Field(
        None,
        description="a date/datetime field holding when the stage was reached, if the org has one",
    )


class Mapping(Strict):
    """How CRM records become canonical rows. Unset keys use the connector's documented defaults."""

    role: RoleMap = Field(None, description="rep role from a user field (profile, role, title)")
    team_field: FieldName | None = Field(None, description="user field holding the rep's team")
    user_region: ValueMap | None = Field(None, description="rep region from a user field")
    region: ValueMap | None = Field(
        None,
        description="region of accounts/contacts/opportunities from a country or territory field",
    )
    channel: ChannelMap = Field(None, description="acquisition channel from the lead source")
    deal_type: DealTypeMap = Field(None, description="deal type from the opportunity/deal type")
    activity_type: ActivityTypeMap = Field(None, description="activity type from a task/engagement field")
    activity_direction: DirectionMap = Field(None, description="inbound/outbound from a call/email field")
    activity_outcome: list[OutcomeMap] = Field(
        default_factory=list,
        description="outcome rules tried in order (dispositions, statuses); first match wins",
    )
    mql: StageRule | None = Field(None, description="Salesforce: when a lead is an MQL")
    sql: StageRule | None = Field(None, description="Salesforce: when a lead is an SQL")
    lifecycle_stages: dict[str, str] = Field(
        default_factory=dict,
        description="HubSpot: lifecyclestage value (or custom stage id) → canonical stage",
    )
    churn_date_field: FieldName | None = Field(None, description="account field: date the customer churned")
    nps_field: FieldName | None = Field(None, description="contact field: latest NPS answer 0–10")
    competitor_price_field: FieldName | None = Field(None, description="opportunity field: the competitor's price")

    @field_validator("lifecycle_stages")
    @classmethod
    def _known_stages(cls, value: dict[str, str]) -> dict[str, str]:
        for crm_value, stage in value.items():
            if stage not in STAGES:
                raise ValueError(f"{crm_value}: {stage!r} is not one of {', '.join(STAGES)}")
        return value


# ---------------------------------------------------------------- credentials


class SalesforceAuth(Strict):
    method: Literal["password", "jwt", "session"] = Field(
        "password", description="password (+ security token), jwt (OAuth JWT bearer) or session"
    )
    username: str | None = None
    password: SecretStr | None = None
    security_token: SecretStr | None = Field(None, description="omit when the org trusts the IP")
    consumer_key: str | None = Field(None, description="jwt: the connected app's consumer key")
    private_key_file: Path | None = Field(None, description="jwt: PEM private key of the app's certificate")
    session_id: SecretStr | None = Field(None, description="session: an existing session id")

    @model_validator(mode="after")
    def _complete(self) -> SalesforceAuth:
        need = {
            "password": ("username", "password"),
            "jwt": ("username", "consumer_key", "private_key_file"),
            "session": ("session_id",),
        }[self.method]
        missing = [key for key in need if getattr(self, key) in (None, "")]
        if missing:
            raise ValueError(f"method {self.method!r} needs {', '.join(missing)}")
        return self


class HubSpotAuth(Strict):
    method: Literal["private_app", "oauth"] = Field(
        "private_app", description="private_app (static token) or oauth (refresh token)"
    )
    access_token: SecretStr | None = Field(None, description="private app token (pat-…)")
    refresh_token: SecretStr | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None

    @model_validator(mode="after")
    def _complete(self) -> HubSpotAuth:
        need = {
            "private_app": ("access_token",),
            "oauth": ("refresh_token", "client_id", "client_secret"),
        }[self.method]
        missing = [key for key in need if getattr(self, key) in (None, "")]
        if missing:
            raise ValueError(f"method {self.method!r} needs {', '.join(missing)}")
        return self


class Connection(Strict):
    base_url: str | None = Field(
        None,
        description="override of the CRM's address (the sandbox, a proxy). Salesforce: the login "
        "host (default https://login.salesforce.com); HubSpot: the API host (default https://api.hubapi.com)",
    )
    instance_url: str | None = Field(
        None,
        description="Salesforce: instance URL for method session (https://acme.my.salesforce.com)",
    )
    api_version: str = Field("59.0", description="Salesforce REST API version")
    ca_bundle: Path | None = Field(
        None,
        description="PEM file of CAs to trust (corporate TLS proxy, the sandbox); TLS is always verified",
    )
    timeout_s: float = Field(60.0, gt=0, description="connect/read timeout per request")
    max_retries: int = Field(6, ge=0, le=20, description="retries of a request on 429/5xx/connection errors")
    min_api_calls_left: int = Field(
        1000, ge=0, description="Salesforce: daily API calls kpisync leaves untouched for others"
    )
    bulk_threshold: int = Field(
        50_000,
        ge=0,
        description="Salesforce: a --full pull of more rows than this uses Bulk API 2.0",
    )
    requests_per_10s: int = Field(90, ge=1, description="HubSpot: kpisync's own pace under the ten-second burst limit")
    search_per_s: int = Field(4, ge=1, le=5, description="HubSpot: pace of search calls (limit 5/s)")

    @field_validator("base_url", "instance_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.rstrip("/") if value else value


# ---------------------------------------------------------------- kpi, inputs, schedule


class ClvSettings(Strict):
    lifetime_years: float | None = Field(
        None,
        gt=0,
        description="customer lifetime in years; unset = 1 ÷ churn rate of the last 365 days",
    )
    cap_years: float = Field(10.0, gt=0, description="lifetime used when the churn rate is zero")


class KpiConfig(Strict):
    months: int = Field(12, ge=1, le=60, description="earlier calendar months computed besides the current")
    quarters: int = Field(4, ge=1, le=20, description="earlier quarters computed besides the current")
    years: int = Field(1, ge=0, le=10, description="earlier years computed besides the current")
    proposal_stages: list[str] = Field(
        default_factory=lambda: ["Proposal/Price Quote"],
        description="opportunity stages that mean a proposal was sent",
    )
    clv: ClvSettings = Field(default_factory=ClvSettings)
    workers: int | None = Field(
        None, ge=1, le=64, description="KPI families computed at once; unset = one per CPU, at most 4"
    )


class Inputs(Strict):
    quotas_csv: Path | None = Field(None, description="user_id or email, team, period_start, period_end, amount")
    spend_csv: Path | None = Field(None, description="campaign, channel, period_start, period_end, amount")
    surveys_csv: Path | None = Field(None, description="kind, user_id/contact_id/account_id, score, submitted_at")


class ScheduleConfig(Strict):
    sync: Schedule = Field("every 15 minutes", description="interval ('every 15 minutes', '1h') or cron")
    compute: Literal["after_sync"] | Schedule = Field(
        "after_sync", description="'after_sync', or its own interval/cron"
    )
    writeback: Literal["after_compute", "never"] | Schedule = Field(
        "after_compute", description="'after_compute', 'never', or its own interval/cron"
    )
    reconcile: Schedule = Field(
        "0 3 * * *",
        description="nightly full reconcile (deletions, missed rows); cron in `timezone`",
    )
    deletions: Interval = Field(
        "1h",
        description="HubSpot: how often an incremental sync also lists archived (deleted) records, which "
        "search cannot see; a deletion shows within this interval plus one sync. Full syncs and the "
        "reconcile always list them; '0s': every sync",
    )


class WritebackTarget(Strict):
    kpi: str = Field(description="KPI id (kpisync kpi list)")
    grain: Literal["user", "contact", "account", "opportunity"] = Field(
        description="user = on the rep; contact/account/opportunity = on that record"
    )
    period: Literal[
        "current_month",
        "current_quarter",
        "current_year",
        "rolling-7d",
        "rolling-30d",
        "rolling-90d",
        "all",
    ] = Field(description="which period's value is written")
    field: FieldName = Field(description="API name of the CRM field (created by kpisync provision)")
    label: str | None = Field(None, description="field label shown to reps; default from the KPI name")
    enabled: bool = True


class MetricsConfig(Strict):
    enabled: bool = False
    host: str = Field("127.0.0.1", description="bind address; keep loopback unless behind a proxy")
    port: int = Field(9464, ge=1, le=65535)


class WritebackConfig(Strict):
    enabled: bool = True
    targets: list[WritebackTarget] | None = Field(
        None, description="what goes where; unset = the defaults of interfaces §4 for this CRM"
    )
    scorecard: bool = Field(
        True,
        description="HubSpot: write rep KPIs to a 'Sales KPI Scorecard' custom object where the portal allows",
    )


class Config(Strict):
    crm: Literal["salesforce", "hubspot"]
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", description="short id: lowercase, digits, - and _")
    store: Path | None = Field(None, description="SQLite store; default data/<name>.db beside this file")
    timezone: TimeZone = Field("UTC", description="org time zone: KPI periods and the schedule")
    auth: SalesforceAuth | HubSpotAuth
    connection: Connection = Field(default_factory=Connection)
    mapping: Mapping = Field(default_factory=Mapping)
    kpi: KpiConfig = Field(default_factory=KpiConfig)
    inputs: Inputs = Field(default_factory=Inputs)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    writeback: WritebackConfig = Field(default_factory=WritebackConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    source_file: Path | None = Field(None, exclude=True, description="set by the loader")

    @model_validator(mode="before")
    @classmethod
    def _auth_for_crm(cls, data: Any) -> Any:
        if isinstance(data, dict):
            # a section whose keys are all commented out is an empty section, not an error
            sections = ("connection", "mapping", "kpi", "inputs", "schedule", "writeback", "metrics")
            data = {k: ({} if v is None and k in sections else v) for k, v in data.items()}
        # pick the credentials model by `crm`, so errors name the right keys
        if isinstance(data, dict) and isinstance(data.get("auth"), dict):
            model = {"salesforce": SalesforceAuth, "hubspot": HubSpotAuth}.get(data.get("crm", ""))
            if model is not None:
                data = {**data, "auth": model.model_validate(data["auth"])}
        return data

    @property
    def store_path(self) -> Path:
        return self.store or Path("data") / f"{self.name}.db"

    def writeback_targets(self) -> list[WritebackTarget]:
        targets = self.writeback.targets
        if targets is None:
            targets = default_targets(self.crm)
        return [t for t in targets if t.enabled]


# Rep KPIs on the rep, record KPIs on the record (interfaces.md §4).
_DEFAULT_TARGETS: tuple[tuple[str, str, str, str, str], ...] = (
    # kpi, grain, period, salesforce field, hubspot property
    (
        "quota_attainment",
        "user",
        "current_month",
        "KPI_Quota_Attainment__c",
        "kpi_quota_attainment",
    ),
    ("win_rate", "user", "current_month", "KPI_Win_Rate__c", "kpi_win_rate"),
    ("deals_won", "user", "current_month", "KPI_Deals_Won__c", "kpi_deals_won"),
    ("touches", "user", "rolling-7d", "KPI_Activities_7d__c", "kpi_activities_7d"),
    (
        "lead_response_minutes",
        "user",
        "current_month",
        "KPI_Median_Response_Min__c",
        "kpi_median_response_min",
    ),
    (
        "meeting_booking_rate",
        "user",
        "current_month",
        "KPI_Meeting_Booking_Rate__c",
        "kpi_meeting_booking_rate",
    ),
    (
        "positive_response_rate",
        "user",
        "current_month",
        "KPI_Positive_Response_Rate__c",
        "kpi_positive_response_rate",
    ),
    (
        "touches_to_close",
        "user",
        "current_quarter",
        "KPI_Touches_Per_Won_Deal__c",
        "kpi_touches_per_won_deal",
    ),
    (
        "sales_cycle_days",
        "user",
        "current_quarter",
        "KPI_Median_Sales_Cycle_Days__c",
        "kpi_median_sales_cycle_days",
    ),
    (
        "new_pipeline_amount",
        "user",
        "current_quarter",
        "KPI_Pipeline_Created_QTD__c",
        "kpi_pipeline_created_qtd",
    ),
    (
        "lead_response_minutes",
        "contact",
        "all",
        "KPI_Minutes_To_First_Touch__c",
        "kpi_minutes_to_first_touch",
    ),
    ("touches", "contact", "all", "KPI_Touches__c", "kpi_touches"),
    ("days_in_stage", "contact", "all", "KPI_Days_In_Stage__c", "kpi_days_in_stage"),
    ("clv", "account", "all", "KPI_CLV__c", "kpi_clv"),
    ("customer_touches", "account", "rolling-90d", "KPI_Touches_90d__c", "kpi_touches_90d"),
    (
        "average_response_hours",
        "account",
        "rolling-90d",
        "KPI_Avg_Response_Hours__c",
        "kpi_avg_response_hours",
    ),
    ("open_cases", "account", "all", "KPI_Open_Cases__c", "kpi_open_cases"),
    (
        "case_resolution_hours",
        "account",
        "all",
        "KPI_Median_Case_Resolution_Hours__c",
        "kpi_median_case_resolution_hours",
    ),
    ("expansion_revenue", "account", "all", "KPI_Upsell_Revenue__c", "kpi_upsell_revenue"),
    ("nps", "account", "all", "KPI_NPS__c", "kpi_nps"),
    ("touches_to_close", "opportunity", "all", "KPI_Touches__c", "kpi_touches"),
    ("days_open", "opportunity", "all", "KPI_Days_Open__c", "kpi_days_open"),
    ("days_in_current_stage", "opportunity", "all", "KPI_Days_In_Stage__c", "kpi_days_in_stage"),
)


def default_targets(crm: str) -> list[WritebackTarget]:
    column = 3 if crm == "salesforce" else 4
    return [
        WritebackTarget(kpi=row[0], grain=row[1], period=row[2], field=row[column])  # type: ignore[arg-type]
        for row in _DEFAULT_TARGETS
    ]


# ---------------------------------------------------------------- loading


def _resolve_refs(
    node: Any, path: tuple[str, ...], problems: list[str], base: Path, unset: list[str] | None = None
) -> Any:
    """Replace ${VAR} / ${file:PATH}. A missing variable is a problem, or — when `unset` is
    given (validating a file away from its run-time environment) — noted there and replaced
    by a placeholder."""
    if isinstance(node, dict):
        return {k: _resolve_refs(v, (*path, str(k)), problems, base, unset) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve_refs(v, (*path, str(i)), problems, base, unset) for i, v in enumerate(node)]
    if not isinstance(node, str) or "${" not in node:
        return node

    def substitute(match: re.Match[str]) -> str:
        ref = match.group(1).strip()
        key = ".".join(path)
        if ref.startswith("file:"):
            file = Path(ref[5:]).expanduser()
            file = file if file.is_absolute() else base / file
            try:
                return file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                problems.append(f"{key}: cannot read secret file {file}: {exc.strerror}")
                return ""
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", ref):
            problems.append(f"{key}: '${{{ref}}}' is not an environment variable reference")
            return ""
        if ref not in os.environ:
            if unset is not None:
                unset.append(f"{key}: environment variable {ref} is not set here (needed at run time)")
                return f"unset-{ref}"
            problems.append(f"{key}: environment variable {ref} is not set")
            return ""
        return os.environ[ref]

    return _ENV_REF.sub(substitute, node)


def _literal_secrets(node: Any, path: tuple[str, ...] = ()) -> Iterable[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _SECRET_KEYS and isinstance(value, str) and value and "${" not in value:
                yield ".".join((*path, key))
            else:
                yield from _literal_secrets(value, (*path, str(key)))


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold (through Optional, list, dict, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in getattr(annotation, "__args__", ()) or getattr(annotation, "__metadata__", ()):
        found.extend(_models_in(arg))
    origin = getattr(annotation, "__origin__", None)
    if origin is not None and origin is not annotation:
        found.extend(_models_in(origin))
    return found


def _known_keys(path: list[str]) -> list[str]:
    models: list[type[BaseModel]] = [Config]
    for part in path:
        if part.isdigit():
            continue
        nxt: list[type[BaseModel]] = []
        for model in models:
            info = model.model_fields.get(part)
            if info is not None:
                nxt.extend(_models_in(info.annotation))
        models = nxt
    return sorted({key for model in models for key in model.model_fields if key != "source_file"})


def _error_lines(exc: ValidationError, prefix: tuple[str, ...] = ()) -> list[str]:
    lines = []
    for err in exc.errors():
        # pydantic names union members and validators in the path; keep the YAML keys
        loc = [*prefix] + [
            str(p)
            for p in err["loc"]
            if not (isinstance(p, str) and (p[:1].isupper() or "[" in p or p.startswith("function-")))
        ]
        key = ".".join(loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            known = _known_keys(loc[:-1])
            hint = difflib.get_close_matches(loc[-1], known, n=1, cutoff=0.6)
            if loc[-1] in known:  # a key of another form of this section (the other CRM's auth)
                msg = "unknown key here (it belongs to another form of this section" + (
                    ", the other CRM's)" if loc[:1] == ["auth"] else ")"
                )
            else:
                msg = "unknown key" + (f" (did you mean '{hint[0]}'?)" if hint else "")
        elif err["type"] == "missing":
            msg = "is required"
        else:
            msg = str(err["msg"]).removeprefix("Value error, ")
            value = err.get("input")
            if err["type"] != "value_error" and isinstance(value, str | int | float | bool):
                msg = f"{value!r}: {msg}"
        line = f"{key}: {msg}"
        if line not in lines:
            lines.append(line)
    return lines


def _relative_to(base: Path, value: Path | None) -> Path | None:
    if value is None:
        return None
    value = value.expanduser()
    return value if value.is_absolute() else base / value


def _check_semantics(config: Config) -> list[str]:
    """What the models cannot see alone: KPI ids, grains, duplicate targets, files."""
    from kpisync.kpi import registry

    problems = []
    seen: dict[tuple[str, str], int] = {}
    for i, target in enumerate(config.writeback.targets or []):
        key = f"writeback.targets.{i}"
        defn = registry.get(target.kpi)
        if defn is None:
            hint = difflib.get_close_matches(target.kpi, registry.ids(), n=1)
            problems.append(
                f"{key}.kpi: unknown KPI {target.kpi!r}"
                + (f" (did you mean '{hint[0]}'?)" if hint else " (see kpisync kpi list)")
            )
        elif target.grain not in defn.grains:
            problems.append(
                f"{key}.grain: {target.kpi} has no grain {target.grain!r} (it has {', '.join(defn.grains)})"
            )
        slot = (target.grain, target.field.lower())
        if slot in seen:
            problems.append(f"{key}.field: {target.field} is already the target of writeback.targets.{seen[slot]}")
        else:
            seen[slot] = i
    for name in ("quotas_csv", "spend_csv", "surveys_csv"):
        path = getattr(config.inputs, name)
        if path is not None and not os.access(path, os.R_OK):
            problems.append(f"inputs.{name}: cannot read {path}")
    for key, path in (
        ("connection.ca_bundle", config.connection.ca_bundle),
        ("auth.private_key_file", getattr(config.auth, "private_key_file", None)),
    ):
        if path is not None and not os.access(path, os.R_OK):
            problems.append(f"{key}: cannot read {path}")
    if config.crm == "salesforce" and config.mapping.lifecycle_stages:
        problems.append("mapping.lifecycle_stages: HubSpot only; Salesforce uses mapping.mql / mapping.sql")
    if config.crm == "hubspot" and (config.mapping.mql or config.mapping.sql):
        problems.append("mapping.mql: Salesforce only; HubSpot has lifecycle stages (mapping.lifecycle_stages)")
    return problems


def load_config(path: str | os.PathLike[str], *, require_env: bool = True) -> Config:
    """Read, resolve and validate one YAML file; ConfigError lists every problem.

    require_env=False (for `kpisync config validate` on a machine without the
    secrets) turns unset environment variables into warnings instead of errors.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(file, [f"cannot read file: {exc.strerror}"]) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ConfigError(file, [f"{where}{problem}"]) from None
    if not isinstance(raw, dict):
        raise ConfigError(file, ["(top level): expected a mapping of keys (crm, name, auth, ...)"])

    base = file.resolve().parent
    problems: list[str] = []
    unset: list[str] | None = None if require_env else []
    resolved = _resolve_refs(raw, (), problems, base, unset)
    for note in unset or []:
        warnings.warn(f"{file.name}: {note}", UnsetVariableWarning, stacklevel=2)
    for key in _literal_secrets(raw):
        warnings.warn(
            f"{file.name}: {key} holds a literal secret; use ${{ENV_VAR}} or ${{file:PATH}}",
            SecretInConfigWarning,
            stacklevel=2,
        )
    auth_model = {"salesforce": SalesforceAuth, "hubspot": HubSpotAuth}.get(str(resolved.get("crm")))
    if auth_model is not None and isinstance(resolved.get("auth"), dict):
        # validated on its own so that its errors carry the `auth.` path
        try:
            resolved = {**resolved, "auth": auth_model.model_validate(resolved["auth"])}
        except ValidationError as exc:
            problems += _error_lines(exc, ("auth",))
            resolved = {k: v for k, v in resolved.items() if k != "auth"}
    try:
        config = Config.model_validate(resolved)
    except ValidationError as exc:
        lines = _error_lines(exc)
        if any(p.startswith("auth") for p in problems):
            lines = [line for line in lines if not line.startswith("auth: is required")]
        raise ConfigError(file, problems + lines) from None
    if problems:
        raise ConfigError(file, problems)

    config = config.model_copy(
        update={
            "source_file": file,
            "store": _relative_to(base, config.store_path),
            "inputs": config.inputs.model_copy(
                update={
                    name: _relative_to(base, getattr(config.inputs, name))
                    for name in ("quotas_csv", "spend_csv", "surveys_csv")
                }
            ),
            "connection": config.connection.model_copy(
                update={"ca_bundle": _relative_to(base, config.connection.ca_bundle)}
            ),
        }
    )
    if isinstance(config.auth, SalesforceAuth) and config.auth.private_key_file is not None:
        config = config.model_copy(
            update={
                "auth": config.auth.model_copy(
                    update={"private_key_file": _relative_to(base, config.auth.private_key_file)}
                )
            }
        )
    problems = _check_semantics(config)
    if problems:
        raise ConfigError(file, problems)
    for name in _SECRET_KEYS:
        secret = getattr(config.auth, name, None)
        if isinstance(secret, SecretStr) and require_env:
            register_secret(secret.get_secret_value())
    return config


class SecretInConfigWarning(UserWarning):
    """A secret written literally in a YAML file instead of by reference."""


class UnsetVariableWarning(UserWarning):
    """A ${VAR} the file refers to is not set where it is being validated."""


def json_schema() -> dict[str, Any]:
    schema = Config.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "kpisync CRM configuration"
    schema.get("properties", {}).pop("source_file", None)
    return schema


SCHEMA_FILE = Path(__file__).resolve().parent.parent / "config.schema.json"

if __name__ == "__main__":  # python -m kpisync.config > config.schema.json
    json.dump(json_schema(), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
