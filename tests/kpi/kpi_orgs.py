"""Small hand-built orgs for the KPI tests: every number is written here, by hand.

Each `build_*` writes one catalog section's example org; the section's test
module checks its values, and the contract tests reuse all of them for the
invariants (deleted rows and rows after as_of change nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kpisync.generator import build_org
from kpisync.kpi.engine import compute
from kpisync.kpi.registry import RECORD_GRAINS
from kpisync.kpi.settings import KpiSettings
from kpisync.schema import TABLES
from kpisync.store import Store

# A Friday noon: March 2026 is the current month, February the last full one.
AS_OF = "2026-03-20T12:00:00Z"


class Org:
    """Writes canonical rows with every column present (unset ones NULL)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, table: str, **values: Any) -> str:
        columns = TABLES[table].column_names
        row = {c: values.pop(c, None) for c in columns}
        if values:
            raise TypeError(f"{table}: unknown columns {sorted(values)}")
        if "is_deleted" in row and row["is_deleted"] is None:
            row["is_deleted"] = 0
        self.store.upsert(table, [row])
        return str(row.get("id"))

    def user(self, id: str, team: str | None = "T1", region: str | None = "EU", **kw: Any) -> str:
        return self.add("users", id=id, name=id, team=team, region=region, is_active=1, **kw)

    def account(self, id: str, owner: str, region: str | None = "EU", **kw: Any) -> str:
        kw.setdefault("created_at", "2025-01-01T00:00:00Z")
        return self.add("accounts", id=id, name=id, owner_id=owner, region=region, **kw)

    def contact(self, id: str, owner: str, **kw: Any) -> str:
        kw.setdefault("kind", "contact")
        kw.setdefault("created_at", "2026-01-01T00:00:00Z")
        return self.add("contacts", id=id, owner_id=owner, **kw)

    def stage(self, contact: str, stage: str, at: str) -> None:
        self.add("lifecycle_events", contact_id=contact, stage=stage, entered_at=at, source="t")

    def opp(
        self,
        id: str,
        owner: str,
        created: str,
        closed: str | None = None,
        won: bool = False,
        amount: float | None = 100.0,
        **kw: Any,
    ) -> str:
        return self.add(
            "opportunities",
            id=id,
            owner_id=owner,
            created_at=created,
            closed_at=closed,
            is_closed=int(closed is not None),
            is_won=int(won),
            amount=amount,
            **kw,
        )

    def act(
        self,
        id: str,
        owner: str,
        at: str,
        type: str = "call",
        direction: str | None = "outbound",
        **kw: Any,
    ) -> str:
        kw.setdefault("created_at", at)
        return self.add(
            "activities",
            id=id,
            owner_id=owner,
            occurred_at=at,
            type=type,
            direction=direction,
            **kw,
        )

    def case(self, id: str, owner: str, created: str, closed: str | None = None, **kw: Any) -> str:
        return self.add(
            "cases",
            id=id,
            owner_id=owner,
            created_at=created,
            closed_at=closed,
            is_closed=int(closed is not None),
            **kw,
        )

    def survey(self, id: str, kind: str, score: int, at: str, **kw: Any) -> str:
        return self.add("surveys", id=id, kind=kind, score=score, submitted_at=at, **kw)

    def compute(
        self,
        as_of: str = AS_OF,
        kpis: Sequence[str] | None = None,
        settings: KpiSettings | None = None,
    ) -> Values:
        result = compute(self.store, settings or KpiSettings(), as_of=as_of, kpis=kpis)
        return Values(result.values)


class Values(dict[tuple[str, str, str, str], tuple[Any, Any, Any]]):
    """(kpi, grain, key, period) -> (value, numerator, denominator)."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        super().__init__(
            (
                (r["kpi"], r["grain"], r["key"], r["period"]),
                (r["value"], r["numerator"], r["denominator"]),
            )
            for r in rows
        )

    def v(self, kpi: str, grain: str = "org", key: str = "", period: str = "2026-02") -> Any:
        """The value; a record grain's missing row reads as null, as write-back reads it."""
        if grain in RECORD_GRAINS and (kpi, grain, key, period) not in self:
            return None
        return self[(kpi, grain, key, period)][0]

    def row(self, kpi: str, grain: str = "org", key: str = "", period: str = "2026-02") -> Any:
        return self[(kpi, grain, key, period)]


def users(org: Org) -> None:
    org.user("u1", team="T1", region="EU")
    org.user("u2", team="T1", region="US")
    org.user("u3", team="T2", region="EU")


def build_deals(org: Org) -> None:
    """§A. February 2026: o1, o2, o4 won, o3 lost; o7 deleted; o8 won after as_of."""
    users(org)
    org.account("a1", "u1", region="EU")
    org.account("a2", "u3", region="US")
    d = "2026-0{}T00:00:00Z".format
    org.opp(
        "o1",
        "u1",
        d("1-10"),
        d("2-05"),
        won=True,
        amount=1000,
        channel="referral",
        deal_type="new_business",
        account_id="a1",
        competitor_price=800,
    )
    org.opp(
        "o2",
        "u1",
        d("2-01"),
        d("2-20"),
        won=True,
        amount=500,
        channel="inbound",
        deal_type="upsell",
        account_id="a1",
        competitor_price=500,
    )
    org.opp("o3", "u1", d("1-15"), d("2-10"), amount=300, channel="inbound", account_id="a1")
    org.opp(
        "o4",
        "u2",
        d("2-03"),
        d("2-25"),
        won=True,
        amount=2000,
        channel="outbound",
        deal_type="cross_sell",
        region="APAC",
    )
    org.opp("o5", "u3", d("2-10"), amount=700, channel="inbound", account_id="a2")
    org.opp("o6", "u3", "2025-12-01T00:00:00Z", d("1-20"), amount=50, channel="inbound")
    org.opp("o7", "u1", d("2-01"), d("2-07"), won=True, amount=9999, is_deleted=1)
    org.opp("o8", "u2", d("2-15"), d("3-25"), won=True, amount=4000, channel="outbound")
    org.opp("o9", "u2", d("3-21"), amount=50, channel="outbound")
    for opp, stage, at in (
        ("o1", "Proposal/Price Quote", d("2-01")),
        ("o1", "Proposal/Price Quote", d("2-03")),
        ("o5", "Proposal/Price Quote", d("2-12")),
        ("o4", "Negotiation", d("2-20")),
        ("o7", "Proposal/Price Quote", d("2-02")),
        ("o8", "Proposal/Price Quote", d("3-21")),
    ):
        org.add("opportunity_stage_history", opportunity_id=opp, stage=stage, entered_at=at)
    feb, q1 = ("2026-02-01", "2026-03-01"), ("2026-01-01", "2026-04-01")
    org.add("quotas", user_id="u1", team="T1", period_start=feb[0], period_end=feb[1], amount=3000)
    org.add("quotas", user_id="u2", team="T1", period_start=feb[0], period_end=feb[1], amount=2000)
    org.add("quotas", user_id="u3", team="T2", period_start=feb[0], period_end=feb[1], amount=1000)
    org.add("quotas", user_id=None, team="T1", period_start=feb[0], period_end=feb[1], amount=4000)
    org.add("quotas", user_id="u1", team="T1", period_start=q1[0], period_end=q1[1], amount=6000)


def build_activity(org: Org) -> None:
    """§B. People c1 (with converted lead L1), c2, c3, c4; touches in February."""
    users(org)
    t = "2026-{}Z".format
    org.contact("c1", "u1", created_at=t("02-01T00:00:00"), channel="inbound")
    org.contact(
        "L1",
        "u2",
        kind="lead",
        created_at=t("01-25T00:00:00"),
        channel="inbound",
        converted_contact_id="c1",
        converted_at=t("02-10T00:00:00"),
    )
    org.contact("c2", "u1", created_at=t("02-03T00:00:00"), channel="outbound")
    org.contact("c3", "u3", created_at=t("02-05T00:00:00"), channel="inbound")
    org.contact("c4", "u3", created_at=t("02-18T00:00:00"), channel="inbound")
    org.contact("cx", "u1", created_at=t("02-01T00:00:00"), is_deleted=1)
    org.stage("L1", "mql", t("02-02T00:00:00"))
    org.stage("c4", "mql", t("02-20T00:00:00"))
    org.stage("c2", "lead", t("02-03T00:00:00"))
    org.stage("c2", "opportunity", t("02-10T00:00:00"))
    org.stage("c2", "customer", t("03-01T00:00:00"))
    org.stage("c3", "lead", t("02-05T00:00:00"))
    org.stage("cx", "lead", t("02-05T00:00:00"))
    org.stage("cx", "mql", t("02-05T00:00:00"))
    org.act("t1", "u1", t("02-02T01:00:00"), "call", contact_id="c1", outcome="connected")
    org.act("t2", "u2", t("02-01T12:00:00"), "email", contact_id="L1")
    org.act("t3", "u1", t("02-03T00:30:00"), "email", contact_id="c2")
    org.act(
        "t4",
        "u3",
        t("02-06T00:00:00"),
        "meeting",
        contact_id="c3",
        outcome="completed",
        created_at=t("02-04T00:00:00"),
    )
    org.act("r1", "u1", t("02-04T00:00:00"), "email", "inbound", contact_id="c1")
    org.act(
        "r2",
        "u1",
        t("02-05T00:00:00"),
        "call",
        contact_id="c2",
        outcome="positive",
        opportunity_id="o1",
    )
    org.act(
        "m1",
        "u1",
        t("02-07T00:00:00"),
        "meeting",
        contact_id="c2",
        outcome="canceled",
        created_at=t("02-06T00:00:00"),
    )
    org.act("x1", "u1", t("02-08T00:00:00"), "call", contact_id="c2", is_deleted=1)
    org.act("f1", "u1", t("03-21T00:00:00"), "meeting", contact_id="c3", created_at=t("03-19T00:00:00"))
    org.act("f2", "u1", t("03-10T00:00:00"), "call", contact_id="c3", created_at=t("03-21T00:00:00"))
    org.act("k1", "u1", t("02-09T00:00:00"), "task", contact_id="c2")
    org.opp(
        "o1",
        "u1",
        t("02-01T00:00:00"),
        t("02-10T00:00:00"),
        won=True,
        contact_id="c2",
        created_by_id="u2",
    )
    org.opp("o2", "u1", t("02-12T00:00:00"), contact_id="c3")


def build_funnel(org: Org) -> None:
    """§C. People p1 (with converted lead L4), p2, p3, p7; spend in inbound/outbound."""
    users(org)
    t = "2026-{}T00:00:00Z".format
    org.contact("p1", "u1", channel="inbound", created_at=t("01-20"), lifecycle_stage="customer")
    org.contact(
        "L4",
        "u2",
        kind="lead",
        channel="inbound",
        created_at=t("01-10"),
        converted_contact_id="p1",
        converted_at=t("02-15"),
    )
    org.contact("p2", "u1", channel="outbound", created_at=t("02-01"), lifecycle_stage="mql")
    org.contact(
        "p3",
        "u3",
        channel="inbound",
        created_at="2026-01-01T00:00:00Z",
        lifecycle_stage="evangelist",
    )
    org.contact("p5", "u1", channel="inbound", created_at=t("02-01"), is_deleted=1)
    org.contact("p6", "u1", channel="inbound", created_at=t("03-02"))
    org.contact("p7", "u3", channel="inbound", created_at=t("02-10"))
    org.contact("p8", "u3", channel="inbound", created_at=t("03-21"))
    for contact, stage, day in (
        ("p1", "lead", "02-01"),
        ("p1", "mql", "02-05"),
        ("p1", "sql", "02-10"),
        ("p1", "opportunity", "02-15"),
        ("p1", "customer", "03-01"),
        ("L4", "mql", "02-04"),
        ("p2", "lead", "02-02"),
        ("p2", "mql", "02-20"),
        ("p3", "lead", "02-03"),
        ("p3", "customer", "02-25"),
        ("p5", "lead", "02-05"),
        ("p6", "lead", "03-25"),
    ):
        org.stage(contact, stage, t(day))
    org.add(
        "spend",
        id="s1",
        channel="inbound",
        period_start="2026-02-01",
        period_end="2026-03-01",
        amount=2800,
    )
    org.add(
        "spend",
        id="s2",
        channel="outbound",
        period_start="2026-01-15",
        period_end="2026-02-14",
        amount=3000,
    )
    org.account("acc1", "u1")
    org.account("acc2", "u1")
    org.opp("w1", "u1", t("01-20"), t("02-10"), won=True, account_id="acc1", channel="inbound")
    org.opp("w2", "u1", t("01-01"), t("01-05"), won=True, account_id="acc2", channel="outbound")
    org.opp("w3", "u1", t("01-20"), t("02-12"), won=True, account_id="acc2", channel="outbound")


def build_customers(org: Org) -> None:
    """§D. Accounts A1–A7; A3 churns in February; activity, cases and surveys on them."""
    users(org)
    t = "{}T00:00:00Z".format
    org.account("A1", "u1", region="EU")
    org.account("A2", "u1", region="EU")
    org.account("A3", "u3", region="US", churned_at=t("2026-02-15"))
    org.account("A4", "u2", region="EU", churned_at=t("2026-01-10"))
    org.account("A5", "u3", region="US")
    org.account("A6", "u1", region="EU", is_deleted=1)
    org.account("A7", "u2", region="EU", churned_at=t("2026-04-01"))
    for opp, owner, account, closed, amount in (
        ("w1", "u1", "A1", "2025-06-01", 1000),
        ("w2", "u1", "A1", "2026-02-10", 500),
        ("w3", "u1", "A2", "2026-02-05", 2000),
        ("w4", "u3", "A3", "2025-09-01", 3000),
        ("w5", "u2", "A4", "2025-10-01", 800),
        ("w6", "u3", "A5", "2026-03-25", 900),
        ("w7", "u1", "A6", "2025-05-01", 100),
        ("w8", "u2", "A7", "2025-11-01", 100),
    ):
        org.opp(opp, owner, t("2025-05-01"), t(closed), won=True, amount=amount, account_id=account)
    org.contact("cA2", "u1", account_id="A2", created_at=t("2025-01-01"))
    org.contact("cA3", "u3", account_id="A3", created_at=t("2025-01-01"))
    org.act("x1", "u1", t("2026-02-03"), "call", account_id="A1", duration_s=600)
    org.act("x2", "u1", t("2026-02-04"), "email", "inbound", contact_id="cA2")
    org.act("x3", "u3", t("2026-02-05"), "call", account_id="A3", duration_s=600)
    org.act("x4", "u1", t("2026-02-06"), "task", account_id="A1")
    org.act("x5", "u1", t("2026-03-10"), "email", "inbound", account_id="A1")
    org.act("x6", "u1", t("2026-02-07"), "call", "inbound", contact_id="cA2", duration_s=1200)
    org.act("x7", "u1", t("2026-02-08"), "call", account_id="A1", duration_s=6000, is_deleted=1)
    org.act("y1", "u1", "2026-02-04T03:00:00Z", "call", contact_id="cA2")
    org.act("y2", "u3", "2026-02-11T10:00:00Z", "email", contact_id="cA3")
    org.case("k1", "u3", t("2026-02-10"), account_id="A3", first_response_at="2026-02-10T05:00:00Z")
    org.case("k2", "u3", t("2026-02-11"), account_id="A3", contact_id="cA3")
    for sid, score, account, contact, day in (
        ("s1", 10, "A1", None, "2026-02-02"),
        ("s2", 9, "A1", None, "2026-02-03"),
        ("s3", 7, "A2", None, "2026-02-04"),
        ("s4", 3, "A2", None, "2026-02-05"),
        ("s5", 0, "A1", None, "2026-03-25"),
    ):
        org.survey(sid, "nps", score, t(day), account_id=account, contact_id=contact)
    org.survey("v1", "csat", 4, t("2026-02-06"), account_id="A1")
    org.survey("v2", "csat", 5, t("2026-02-07"), contact_id="cA2")
    for sid, user, score in (("e1", "u1", 10), ("e2", "u2", 5), ("e3", "u3", 9), ("e4", "u1", 8)):
        org.survey(sid, "enps", score, t("2026-02-10"), user_id=user)


def build_support(org: Org) -> None:
    """§E. Cases k1–k6 on accounts A1 (u1) and A2 (u3)."""
    users(org)
    t = "2026-{}T00:00:00Z".format
    org.account("A1", "u1")
    org.account("A2", "u3")
    org.case("k1", "u1", t("02-02"), t("02-04"), account_id="A1")
    org.case("k2", "u1", t("01-20"), "2026-02-10T12:00:00Z", account_id="A1")
    org.case("k3", "u3", t("02-15"), account_id="A2")
    org.case("k4", "u3", t("02-20"), t("03-25"), account_id="A2")
    org.case("k5", "u1", t("02-03"), t("02-04"), account_id="A1", is_deleted=1)
    org.case("k6", "u1", t("03-21"), account_id="A1")


BUILDERS = (build_deals, build_activity, build_funnel, build_customers, build_support)


def generated_org(tmp_path_factory: Any, name: str, seed: int) -> Path:
    """A store file holding the generator's small org (for module-scoped fixtures)."""
    path = tmp_path_factory.mktemp(name) / "org.db"
    with Store.open(path) as store:
        build_org(store, "small", seed=seed)
    return path
