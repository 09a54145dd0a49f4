"""The YAML config: the bad-config table, references, warnings, and schema drift."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from kpisync.config import (
    SCHEMA_FILE,
    Config,
    SecretInConfigWarning,
    json_schema,
    load_config,
    parse_interval,
)
from kpisync.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]

BASE: dict[str, Any] = {
    "crm": "salesforce",
    "name": "acme-sf",
    "timezone": "Europe/Berlin",
    "auth": {
        "method": "password",
        "username": "${T_SF_USER}",
        "password": "${T_SF_PASSWORD}",
        "security_token": "${T_SF_TOKEN}",
    },
    "schedule": {"sync": "every 15 minutes"},
    "writeback": {
        "targets": [{"kpi": "win_rate", "grain": "user", "period": "current_month", "field": "KPI_Win_Rate__c"}]
    },
}


@pytest.fixture(autouse=True)
def _secrets_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_SF_USER", "integration@acme.example")
    monkeypatch.setenv("T_SF_PASSWORD", "s3cret-password")
    monkeypatch.setenv("T_SF_TOKEN", "tok3nvalue")


def write(tmp_path: Path, data: Any, name: str = "salesforce.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return path


def mutate(**changes: Any) -> dict[str, Any]:
    """BASE with dotted keys set (value DELETE removes the key)."""
    data = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        node = data
        parts = dotted.split("__")
        for part in parts[:-1]:
            node = node.setdefault(part, {}) if not part.isdigit() else node[int(part)]
        if value is DELETE:
            node.pop(parts[-1])
        elif parts[-1].isdigit():
            node[int(parts[-1])] = value
        else:
            node[parts[-1]] = value
    return data


DELETE = object()

# (case, config, the key the message must name, words the message must contain)
BAD_CONFIGS: list[tuple[str, Any, str, str]] = [
    ("not yaml", "crm: [salesforce\nname: x", "line", "expected"),
    ("not a mapping", "- crm\n- name\n", "(top level)", "mapping"),
    ("crm missing", mutate(crm=DELETE), "crm", "required"),
    ("crm unknown", mutate(crm="pipedrive"), "crm", "salesforce"),
    ("name missing", mutate(name=DELETE), "name", "required"),
    ("name with spaces", mutate(name="Acme SF"), "name", "pattern"),
    ("unknown top-level key", mutate(schedulle={"sync": "1h"}), "schedulle", "did you mean 'schedule'"),
    ("unknown nested key", mutate(auth__usrname="x"), "auth.usrname", "did you mean 'username'"),
    ("unknown connection key", mutate(connection={"timeout": 5}), "connection.timeout", "did you mean 'timeout_s'"),
    ("bad interval", mutate(schedule__sync="every 5 minutez"), "schedule.sync", "not an interval or cron"),
    ("bad cron", mutate(schedule__reconcile="61 3 * * *"), "schedule.reconcile", "cron"),
    ("zero interval", mutate(schedule__sync="0m"), "schedule.sync", "zero"),
    ("bad writeback schedule", mutate(schedule__writeback="sometimes"), "schedule.writeback", "interval or cron"),
    ("bad time zone", mutate(timezone="Mars/Olympus"), "timezone", "time zone"),
    ("password missing", mutate(auth__password=DELETE), "auth", "needs password"),
    (
        "jwt without key file",
        mutate(auth={"method": "jwt", "username": "u", "consumer_key": "k"}),
        "auth",
        "private_key_file",
    ),
    ("session without id", mutate(auth={"method": "session"}), "auth", "session_id"),
    ("unknown auth method", mutate(auth__method="oauth_magic"), "auth.method", "password"),
    (
        "hubspot without token",
        {"crm": "hubspot", "name": "hs", "auth": {"method": "private_app"}},
        "auth",
        "access_token",
    ),
    (
        "hubspot oauth incomplete",
        {"crm": "hubspot", "name": "hs", "auth": {"method": "oauth", "refresh_token": "r"}},
        "auth",
        "client_id",
    ),
    (
        "env var missing",
        mutate(auth__password="${T_NOT_SET_ANYWHERE}"),
        "auth.password",
        "T_NOT_SET_ANYWHERE is not set",
    ),
    ("bad env reference", mutate(auth__password="${not a var}"), "auth.password", "not an environment variable"),
    (
        "secret file missing",
        mutate(auth__password="${file:/nonexistent/secret}"),
        "auth.password",
        "cannot read secret file",
    ),
    ("timeout not a number", mutate(connection={"timeout_s": "fast"}), "connection.timeout_s", "number"),
    ("negative timeout", mutate(connection={"timeout_s": -1}), "connection.timeout_s", "greater than 0"),
    (
        "base url not a url",
        mutate(connection={"base_url": "login.salesforce.com"}),
        "connection.base_url",
        "not an http(s) URL",
    ),
    ("ca bundle unreadable", mutate(connection={"ca_bundle": "missing-ca.pem"}), "connection.ca_bundle", "cannot read"),
    (
        "field name injection",
        mutate(mapping={"churn_date_field": "Id FROM User WHERE Name != ''"}),
        "mapping.churn_date_field",
        "not a field name",
    ),
    (
        "role value unknown",
        mutate(mapping={"role": {"field": "Title", "values": {"SDR": "hunter"}}}),
        "mapping.role",
        "'hunter' is not one of",
    ),
    (
        "channel default unknown",
        mutate(mapping={"channel": {"field": "LeadSource", "default": "tv"}}),
        "mapping.channel",
        "'tv' is not one of",
    ),
    (
        "value map without field",
        mutate(mapping={"deal_type": {"values": {"New": "new_business"}}}),
        "mapping.deal_type.field",
        "required",
    ),
    (
        "bad match kind",
        mutate(mapping={"region": {"field": "BillingCountry", "match": "fuzzy"}}),
        "mapping.region.match",
        "exact",
    ),
    (
        "outcome value unknown",
        mutate(mapping={"activity_outcome": [{"field": "CallDisposition", "values": {"x": "great"}}]}),
        "mapping.activity_outcome.0",
        "'great' is not one of",
    ),
    (
        "hubspot stage unknown",
        {
            "crm": "hubspot",
            "name": "hs",
            "auth": {"access_token": "${T_SF_TOKEN}"},
            "mapping": {"lifecycle_stages": {"lead": "prospect"}},
        },
        "mapping.lifecycle_stages",
        "'prospect' is not one of",
    ),
    (
        "lifecycle stages on salesforce",
        mutate(mapping={"lifecycle_stages": {"lead": "lead"}}),
        "mapping.lifecycle_stages",
        "HubSpot only",
    ),
    (
        "unknown KPI id in write-back",
        mutate(writeback__targets__0__kpi="win_rat"),
        "writeback.targets.0.kpi",
        "unknown KPI 'win_rat'",
    ),
    (
        "grain the KPI lacks",
        mutate(writeback__targets__0__kpi="nps", writeback__targets__0__grain="opportunity"),
        "writeback.targets.0.grain",
        "has no grain",
    ),
    (
        "bad write-back period",
        mutate(writeback__targets__0__period="last_week"),
        "writeback.targets.0.period",
        "current_month",
    ),
    ("bad write-back grain", mutate(writeback__targets__0__grain="team"), "writeback.targets.0.grain", "user"),
    (
        "duplicate field targets",
        mutate(
            writeback__targets=[
                BASE["writeback"]["targets"][0],
                {**BASE["writeback"]["targets"][0], "kpi": "deals_won"},
            ]
        ),
        "writeback.targets.1.field",
        "already the target",
    ),
    (
        "write-back field injection",
        mutate(writeback__targets__0__field="KPI__c; DROP"),
        "writeback.targets.0.field",
        "not a field name",
    ),
    ("unreadable input CSV", mutate(inputs={"quotas_csv": "inputs/nope.csv"}), "inputs.quotas_csv", "cannot read"),
    ("months out of range", mutate(kpi={"months": 0}), "kpi.months", "greater than or equal to 1"),
    ("clv cap negative", mutate(kpi={"clv": {"cap_years": -2}}), "kpi.clv.cap_years", "greater than 0"),
    (
        "metrics port out of range",
        mutate(metrics={"enabled": True, "port": 70000}),
        "metrics.port",
        "less than or equal",
    ),
    ("proposal stages not a list", mutate(kpi={"proposal_stages": 5}), "kpi.proposal_stages", "list"),
    (
        # username is a key of the Salesforce auth: no "did you mean 'username'?" for it
        "salesforce auth under crm hubspot",
        mutate(crm="hubspot", auth={"method": "private_app", "access_token": "${T_SF_TOKEN}", "username": "x"}),
        "auth.username",
        "unknown key here (it belongs to another form of this section, the other CRM's)",
    ),
]


# a case may hold a literal secret on its way to another error; that warning has tests of its own
@pytest.mark.filterwarnings("ignore::kpisync.config.SecretInConfigWarning")
@pytest.mark.parametrize(("case", "data", "key", "words"), BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config_names_the_key(tmp_path: Path, case: str, data: Any, key: str, words: str) -> None:
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    lines = caught.value.problems
    assert any(key in line and words in line for line in lines), lines
    assert all(str(line).strip() for line in lines)
    assert str(caught.value).startswith("salesforce.yaml: ")


def test_the_table_is_big_enough() -> None:
    assert len(BAD_CONFIGS) >= 30


def test_bad_config_on_the_command_line_exits_2_without_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, mutate(schedule__sync="every 5 minutez"))
    proc = subprocess.run(
        [sys.executable, "-m", "kpisync.cli", "config", "validate", str(path)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "salesforce.yaml: schedule.sync: 'every 5 minutez' is not an interval or cron expression" in proc.stderr


def test_kpi_years_counts_earlier_years_as_months_and_quarters_do(tmp_path: Path) -> None:
    from kpisync.kpi.periods import calendar_periods
    from kpisync.sync.jobs import kpi_settings

    for years, labels in ((0, ["2026"]), (1, ["2026", "2025"]), (2, ["2026", "2025", "2024"])):
        settings = kpi_settings(load_config(write(tmp_path, mutate(kpi={"years": years}))))
        got = [p.label for p in calendar_periods(datetime(2026, 2, 10, tzinfo=UTC), settings) if p.kind == "year"]
        assert got == labels, years


def test_write_back_fields_of_averaged_counts_get_decimals(tmp_path: Path) -> None:
    from kpisync.sync.jobs import field_defs

    targets = [
        {"kpi": "touches_to_close", "grain": "user", "period": "current_quarter", "field": "KPI_Touches_Per_Won__c"},
        {"kpi": "touches_to_close", "grain": "opportunity", "period": "all", "field": "KPI_Touches__c"},
        {"kpi": "deals_won", "grain": "user", "period": "current_month", "field": "KPI_Deals_Won__c"},
    ]
    config = load_config(write(tmp_path, mutate(writeback={"targets": targets})))
    units = {(d.grain, d.field): d.unit for d in field_defs(config)}
    # a rep's touches to close are a mean over the rep's won deals (6.87); one deal's are a count
    assert units == {
        ("user", "KPI_Touches_Per_Won__c"): "multiple",
        ("opportunity", "KPI_Touches__c"): "count",
        ("user", "KPI_Deals_Won__c"): "count",
    }


def test_good_config_resolves_env_and_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "inputs").mkdir()
    (tmp_path / "inputs" / "quotas.csv").write_text("user_id,team,period_start,period_end,amount\n")
    config = load_config(write(tmp_path, mutate(inputs={"quotas_csv": "inputs/quotas.csv"})))
    assert config.auth.password is not None
    assert config.auth.password.get_secret_value() == "s3cret-password"
    assert "s3cret-password" not in repr(config)
    assert config.store_path == tmp_path / "data" / "acme-sf.db"
    assert config.inputs.quotas_csv == tmp_path / "inputs" / "quotas.csv"


def test_secret_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("from-a-file\n")
    config = load_config(write(tmp_path, mutate(auth__password="${file:pw}")))
    assert config.auth.password.get_secret_value() == "from-a-file"


def test_literal_secret_is_accepted_with_a_warning(tmp_path: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_config(write(tmp_path, mutate(auth__password="hunter2-literal")))
    messages = [str(w.message) for w in caught if issubclass(w.category, SecretInConfigWarning)]
    assert messages == ["salesforce.yaml: auth.password holds a literal secret; use ${ENV_VAR} or ${file:PATH}"]
    assert "hunter2" not in messages[0]


def test_validate_away_from_the_secrets_only_warns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("T_SF_PASSWORD")
    path = write(tmp_path, BASE)
    with pytest.raises(ConfigError, match="T_SF_PASSWORD is not set"):
        load_config(path)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        assert load_config(path, require_env=False).crm == "salesforce"


def test_empty_sections_are_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, {**BASE, "inputs": None, "mapping": None}))
    assert config.inputs.quotas_csv is None


def test_intervals() -> None:
    assert parse_interval("every 15 minutes").total_seconds() == 900
    assert parse_interval("1h").total_seconds() == 3600
    assert parse_interval("30s").total_seconds() == 30
    assert parse_interval("*/5 * * * *") is None


def test_example_config_validates(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("SF_USERNAME", "SF_PASSWORD", "SF_SECURITY_TOKEN"):
        monkeypatch.setenv(var, "x" * 8)
    config = load_config(ROOT / "config.example.yaml")
    assert config.crm == "salesforce"
    # the example ships exactly the defaults of interfaces.md §4
    shipped = [(t.kpi, t.grain, t.period, t.field) for t in config.writeback_targets()]
    default = [
        (t.kpi, t.grain, t.period, t.field)
        for t in Config.model_validate(
            {"crm": "salesforce", "name": "x", "auth": {"method": "session", "session_id": "s"}}
        ).writeback_targets()
    ]
    assert shipped == default


def test_default_targets_name_real_kpis_and_grains() -> None:
    from kpisync.config import default_targets
    from kpisync.kpi import registry

    for crm in ("salesforce", "hubspot"):
        for target in default_targets(crm):
            defn = registry.get(target.kpi)
            assert defn is not None, target.kpi
            assert target.grain in defn.grains, (target.kpi, target.grain)


def _model_keys(model: type, seen: set[type] | None = None) -> set[str]:
    from kpisync.config import _models_in

    seen = seen or set()
    keys: set[str] = set()
    for name, info in model.model_fields.items():
        if name == "source_file":
            continue
        keys.add(name)
        for sub in _models_in(info.annotation):
            if sub not in seen:
                seen.add(sub)
                keys |= _model_keys(sub, seen)
    return keys


def test_example_documents_every_key() -> None:
    text = (ROOT / "config.example.yaml").read_text(encoding="utf-8")
    documented = set(re.findall(r"^[\s#-]*\{?\s*([a-z_0-9]+):", text, flags=re.M))
    documented |= set(re.findall(r"[{,]\s*([a-z_0-9]+):", text))
    from kpisync.config import HubSpotAuth, SalesforceAuth

    missing = (_model_keys(Config) | _model_keys(SalesforceAuth) | _model_keys(HubSpotAuth)) - documented
    assert not missing, f"config.example.yaml does not document {sorted(missing)}"
    # and every key documented is a real key (no stale documentation)
    real = _model_keys(Config) | _model_keys(SalesforceAuth) | _model_keys(HubSpotAuth)
    values_not_keys = {"sdr", "bdr", "ae", "am", "manager", "marketingqualifiedlead", "salesqualifiedlead", "file"}
    stale = {k for k in documented - real - values_not_keys if not k.startswith("kpi_")}
    stale -= set(re.findall(r"values: \{([^}]*)\}", text))  # mapped values written inline
    assert not {s for s in stale if re.match(r"^[a-z_]+$", s) and len(s) > 3} - {"values"}, sorted(stale)


def test_json_schema_file_is_current() -> None:
    on_disk = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert on_disk == json_schema(), "config.schema.json is stale: python -m kpisync.config > config.schema.json"
