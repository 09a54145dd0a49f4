"""What kpisync pulls from HubSpot: one row per object (adding an object is adding a row).

`options` keys:
- `kind`: "crm" (CRM v3 objects: list, then search), "archived" (the archived
  listing of a crm object: deletions, which search cannot see) or "owners".
- `archived`: the listing reads archived records only (`<object>.archived` rows,
  derived from the crm rows below: they run on `schedule.deletions`, on every
  full sync and on the first; their cursor is when the last whole listing began).
- `properties`: always requested; the connector adds mapped fields and the
  date-entered properties of every lifecycle/deal stage (from the pipelines).
- `associations`: object types whose first associated id fills a canonical column.
- `mapper`: the function in `mapping.py` that turns one record into rows.
"""

from __future__ import annotations

from kpisync.connectors.base import ObjectSpec

_ENGAGEMENT = ("hs_timestamp", "hs_createdate", "hs_lastmodifieddate", "hubspot_owner_id", "hs_activity_type")
_ENGAGEMENT_LINKS = ("contacts", "companies", "deals")


def _engagement(name: str, *properties: str) -> ObjectSpec:
    return ObjectSpec(
        name,
        ("activities",),
        "hs_lastmodifieddate",
        {
            "kind": "crm",
            "properties": (*_ENGAGEMENT, *properties),
            "associations": _ENGAGEMENT_LINKS,
            "mapper": "engagement",
        },
    )


_OBJECTS: tuple[ObjectSpec, ...] = (
    ObjectSpec("owners", ("users",), None, {"kind": "owners", "mapper": "owner"}),
    ObjectSpec(
        "companies",
        ("accounts",),
        "hs_lastmodifieddate",
        {
            "kind": "crm",
            "properties": (
                "name",
                "hubspot_owner_id",
                "type",
                "industry",
                "country",
                "state",
                "city",
                "annualrevenue",
                "createdate",
                "hs_lastmodifieddate",
                "hs_merged_object_ids",
            ),
            "associations": (),
            "mapper": "company",
        },
    ),
    ObjectSpec(
        "contacts",
        ("contacts", "lifecycle_events"),
        "lastmodifieddate",  # contacts are the exception (§0, §12.3)
        {
            "kind": "crm",
            "properties": (
                "email",
                "firstname",
                "lastname",
                "hubspot_owner_id",
                "lifecyclestage",
                "hs_lead_status",
                "hs_analytics_source",
                "country",
                "state",
                "city",
                "createdate",
                "lastmodifieddate",
                "associatedcompanyid",
                "hs_calculated_merged_vids",
            ),
            "associations": ("companies",),
            "mapper": "contact",
        },
    ),
    ObjectSpec(
        "deals",
        ("opportunities", "opportunity_stage_history"),
        "hs_lastmodifieddate",
        {
            "kind": "crm",
            "properties": (
                "dealname",
                "amount",
                "amount_in_home_currency",
                "dealstage",
                "pipeline",
                "closedate",
                "createdate",
                "hs_lastmodifieddate",
                "hubspot_owner_id",
                "dealtype",
                "hs_is_closed",
                "hs_is_closed_won",
                "hs_analytics_source",
                "hs_merged_object_ids",
            ),
            "associations": ("companies", "contacts"),
            "mapper": "deal",
        },
    ),
    _engagement(
        "calls", "hs_call_direction", "hs_call_duration", "hs_call_disposition", "hs_call_status", "hs_call_title"
    ),
    _engagement("emails", "hs_email_direction", "hs_email_status", "hs_email_subject"),
    _engagement("meetings", "hs_meeting_title", "hs_meeting_start_time", "hs_meeting_end_time", "hs_meeting_outcome"),
    _engagement("tasks", "hs_task_subject", "hs_task_status", "hs_task_type", "hs_task_completion_date"),
    _engagement("notes", "hs_note_body"),
    ObjectSpec(
        "tickets",
        ("cases",),
        "hs_lastmodifieddate",
        {
            "kind": "crm",
            "properties": (
                "subject",
                "hs_pipeline",
                "hs_pipeline_stage",
                "hs_ticket_priority",
                "createdate",
                "closed_date",
                "first_agent_reply_date",
                "source_type",
                "hubspot_owner_id",
                "hs_lastmodifieddate",
                "hs_merged_object_ids",
            ),
            "associations": ("contacts", "companies"),
            "mapper": "ticket",
        },
    ),
)

ARCHIVED_SUFFIX = ".archived"


def _with_archived_listings(specs: tuple[ObjectSpec, ...]) -> tuple[ObjectSpec, ...]:
    """Each object followed by its archived listing: deactivated owners (§7.1) and deleted records (§5.5)."""
    out: list[ObjectSpec] = []
    for spec in specs:
        out.append(spec)
        kind = "owners" if spec.options["kind"] == "owners" else "archived"
        options = {**spec.options, "kind": kind, "archived": True, "object": spec.name}
        out.append(ObjectSpec(spec.name + ARCHIVED_SUFFIX, spec.tables[:1], None, options))
    return tuple(out)


OBJECTS = _with_archived_listings(_OBJECTS)

# Metadata read once per connector (not stored as rows): stage labels and closed/won flags.
PIPELINE_OBJECTS = ("deals", "tickets", "contacts")

# Where record-level KPI values go (interfaces.md §4).
GRAIN_OBJECTS = {"contact": "contacts", "account": "companies", "opportunity": "deals"}

# The rep scorecard custom object (interfaces.md §4, hubspot-api.md §7.3).
SCORECARD_NAME = "sales_kpi_scorecard"
SCORECARD_KEY = "kpi_scorecard_key"
SCORECARD_PERIOD = "kpi_period"
PROPERTY_GROUP = "sales_kpis"
PROPERTY_GROUP_LABEL = "Sales KPIs"
