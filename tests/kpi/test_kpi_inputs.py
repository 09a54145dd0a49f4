"""CSV inputs: quotas, spend and surveys load, reload in place, and fail with file/line/column."""

from __future__ import annotations

from pathlib import Path

import pytest
from kpi_orgs import Org

from kpisync.errors import ConfigError
from kpisync.inputs import InputError, load_inputs


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_load_quotas_spend_and_surveys(org: Org, tmp_path: Path) -> None:
    org.user("u1", email="Ann@Example.com")
    quotas = write(
        tmp_path,
        "quotas.csv",
        "email,team,period_start,period_end,amount\n"
        "ann@example.com,T1,2026-02-01,2026-03-01,3000\n"
        ",T1,2026-02-01,2026-03-01,9000\n",
    )
    spend = write(
        tmp_path,
        "spend.csv",
        "campaign,channel,period_start,period_end,amount\nSpring,paid,2026-02-01,2026-03-01,2800.50\n\n",
    )
    surveys = write(
        tmp_path,
        "surveys.csv",
        "\ufeffkind,user_id,account_id,score,submitted_at\nenps,u1,,9,2026-02-10T10:00:00Z\nnps,,A1,3,2026-02-11\n",
    )
    counts = load_inputs(org.store, quotas_csv=quotas, spend_csv=spend, surveys_csv=surveys)
    assert counts == {"quotas": 2, "spend": 1, "surveys": 2}
    conn = org.store.conn
    assert conn.execute("SELECT user_id, team, amount, source FROM quotas ORDER BY amount").fetchall() == [
        ("u1", "T1", 3000.0, "quotas.csv"),
        (None, "T1", 9000.0, "quotas.csv"),
    ]
    assert conn.execute("SELECT id, amount FROM spend").fetchall() == [("spend.csv:2", 2800.5)]
    assert conn.execute("SELECT id, kind, submitted_at FROM surveys ORDER BY id").fetchall() == [
        ("surveys.csv:2", "enps", "2026-02-10T10:00:00Z"),
        ("surveys.csv:3", "nps", "2026-02-11T00:00:00Z"),
    ]


def test_reloading_a_file_replaces_its_rows(org: Org, tmp_path: Path) -> None:
    org.add("spend", id="crm-1", channel="paid", period_start="2026-01-01", period_end="2026-02-01", amount=1)
    path = write(
        tmp_path,
        "spend.csv",
        "channel,period_start,period_end,amount\npaid,2026-02-01,2026-03-01,10\npaid,2026-03-01,2026-04-01,20\n",
    )
    load_inputs(org.store, spend_csv=path)
    path.write_text("channel,period_start,period_end,amount\npaid,2026-02-01,2026-03-01,15\n")
    assert load_inputs(org.store, spend_csv=path) == {"spend": 1}
    assert org.store.conn.execute("SELECT id, amount FROM spend ORDER BY id").fetchall() == [
        ("crm-1", 1.0),
        ("spend.csv:2", 15.0),
    ]


@pytest.mark.parametrize(
    ("kind", "text", "line", "column", "message"),
    [
        ("spend", "channel,period_start,period_end\n", 1, "amount", "missing column"),
        (
            "spend",
            "channel,period_start,period_end,amount\npaid,2026-02-01,2026-03-01,ten\n",
            2,
            "amount",
            "not a number",
        ),
        (
            "spend",
            "channel,period_start,period_end,amount\npaid,2026-02-31,2026-03-01,1\n",
            2,
            "period_start",
            "not a date",
        ),
        (
            "spend",
            "channel,period_start,period_end,amount\npaid,2026-03-01,2026-02-01,1\n",
            2,
            "period_end",
            "must be after",
        ),
        (
            "quotas",
            "email,period_start,period_end,amount\nnobody@x.com,2026-02-01,2026-03-01,1\n",
            2,
            "email",
            "no user with email",
        ),
        ("surveys", "kind,user_id,score,submitted_at\nnps,u1,11,2026-02-01\n", 2, "score", "0-10"),
        ("surveys", "kind,user_id,score,submitted_at\nces,u1,1,2026-02-01\n", 2, "kind", "must be one of"),
        ("surveys", "kind,contact_id,score,submitted_at\nnps,c1,5,yesterday\n", 2, "submitted_at", "not a timestamp"),
    ],
)
def test_bad_rows_name_file_line_and_column(org: Org, tmp_path: Path, kind, text, line, column, message) -> None:
    path = write(tmp_path, f"{kind}.csv", text)
    with pytest.raises(InputError, match=message) as raised:
        load_inputs(org.store, **{f"{kind}_csv": path})
    error = raised.value
    assert (error.line, error.column) == (line, column)
    assert str(error).startswith(f"{kind}.csv: line {line}, column {column}: ")
    assert isinstance(error, ConfigError)
    assert org.store.count(kind) == 0  # nothing of a bad file is written


def test_missing_file_is_an_input_error(org: Org, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        load_inputs(org.store, quotas_csv=tmp_path / "absent.csv")


def test_loaded_quotas_feed_quota_attainment(org: Org, tmp_path: Path) -> None:
    org.user("u1", email="ann@example.com")
    org.opp("o", "u1", "2026-02-01T00:00:00Z", "2026-02-10T00:00:00Z", won=True, amount=750)
    load_inputs(
        org.store,
        quotas_csv=write(tmp_path, "q.csv", "user_id,period_start,period_end,amount\nu1,2026-02-01,2026-03-01,1000\n"),
    )
    assert org.compute().row("quota_attainment", "user", "u1") == (0.75, 750, 1000)


def test_kpi_compute_with_a_config_loads_its_input_csvs_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    import yaml
    from click.testing import CliRunner
    from kpi_orgs import AS_OF, build_deals

    from kpisync.cli import main
    from kpisync.store import Store

    for name in ("T_SF_USER", "T_SF_PASSWORD", "T_SF_TOKEN"):
        monkeypatch.delenv(name, raising=False)  # compute calls no CRM: its secrets need not be set here
    auth = {"method": "password", "username": "${T_SF_USER}", "password": "${T_SF_PASSWORD}"}
    config = {"crm": "salesforce", "name": "acme", "timezone": "UTC", "inputs": {"quotas_csv": "quotas.csv"}}
    config["auth"] = {**auth, "security_token": "${T_SF_TOKEN}"}
    write(tmp_path, "quotas.csv", "user_id,period_start,period_end,amount\nu1,2026-02-01,2026-03-01,2500\n")
    path = write(tmp_path, "acme.yaml", yaml.safe_dump(config))
    args = ["kpi", "compute", str(path), "--as-of", AS_OF, "--kpi", "quota_attainment", "--json"]
    # nothing synced yet: no store to compute on (not a silently created empty one)
    nothing = CliRunner().invoke(main, args)
    assert nothing.exit_code == 2 and "no store yet (run `kpisync sync" in nothing.output
    assert not (tmp_path / "data" / "acme.db").exists()
    (tmp_path / "data").mkdir()
    with Store.open(str(tmp_path / "data" / "acme.db")) as store:
        build_deals(Org(store))  # u1 won o1 (1000) and o2 (500) in February 2026
        with store.conn:
            store.conn.execute("DELETE FROM quotas")  # the only quota is the CSV's
    got = CliRunner().invoke(main, args)
    assert got.exit_code == 0, got.output
    row = next(
        r for r in json.loads(got.output)["kpis"] if (r["grain"], r["key"], r["period"]) == ("user", "u1", "2026-02")
    )
    assert (row["value"], row["numerator"], row["denominator"]) == (0.6, 1500, 2500)
