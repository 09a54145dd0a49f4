"""The pull loop's guarantees, with a scripted connector (the CRM connectors have
their own suites against the sandboxes)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

import pytest

from kpisync.connectors.base import ApiUsage, ObjectSpec, Page, Quarantined
from kpisync.errors import LimitReached, RunError
from kpisync.store import Store
from kpisync.sync import engine
from kpisync.sync.engine import sync


class Scripted:
    """Yields the pages it was given per object; raises where told."""

    crm = "testcrm"

    def __init__(self, pages: dict[str, list[Page | Exception]]) -> None:
        self.pages = pages
        self.cursors_seen: dict[str, str | None] = {}
        self.calls = 0

    def objects(self) -> Sequence[ObjectSpec]:
        return [ObjectSpec(name, ("accounts",), "modstamp") for name in self.pages]

    def pull(self, spec: ObjectSpec, cursor: str | None, *, full: bool = False) -> Iterator[Page]:
        self.cursors_seen[spec.name] = cursor
        for item in self.pages[spec.name]:
            self.calls += 1
            if isinstance(item, Exception):
                raise item
            yield item

    def usage(self) -> ApiUsage:
        return ApiUsage(self.calls)


def acct(i: int, **extra: object) -> dict[str, object]:
    return {"id": f"a{i}", "name": f"Account {i}", **extra}


def test_rows_and_cursor_land_together_and_a_failure_keeps_the_last_good_cursor() -> None:
    store = Store.open(":memory:")
    crm = Scripted(
        {
            "Account": [
                Page({"accounts": [acct(1), acct(2)]}, cursor="t2"),
                Page({"accounts": [acct(3)]}, cursor="t3"),
                RunError("connection reset mid-page"),
            ]
        }
    )
    summary = sync(crm, store)
    assert summary.status == "failed"
    assert store.count("accounts") == 3
    assert store.get_cursor("testcrm", "Account") == "t3"
    # the next run resumes at the stored cursor (inclusive), upserting repeats harmlessly
    crm.pages["Account"] = [Page({"accounts": [acct(3), acct(4)]}, cursor="t4")]
    assert sync(crm, store).status == "ok"
    assert crm.cursors_seen["Account"] == "t3"
    assert store.count("accounts") == 4


def test_one_object_failing_does_not_stop_the_others() -> None:
    store = Store.open(":memory:")
    crm = Scripted({"A": [RunError("boom")], "B": [Page({"accounts": [acct(1)]}, cursor="x")]})
    summary = sync(crm, store)
    assert summary.status == "partial"
    assert [o.status for o in summary.objects] == ["failed", "ok"]
    assert "A: boom" in (summary.error or "")


def test_limit_reached_stops_the_run_cleanly() -> None:
    store = Store.open(":memory:")
    crm = Scripted(
        {
            "A": [Page({"accounts": [acct(1)]}, cursor="c1"), LimitReached("daily API limit")],
            "B": [Page({"accounts": [acct(2)]})],
        }
    )
    summary = sync(crm, store)
    assert summary.status == "limit"
    assert store.get_cursor("testcrm", "A") == "c1"
    assert store.count("accounts") == 1  # B was not started
    row = store.conn.execute("SELECT status, error FROM sync_runs").fetchone()
    assert row == ("limit", "daily API limit")


def test_deletion_markers_and_full_rows_in_one_page() -> None:
    store = Store.open(":memory:")
    store.upsert("accounts", [acct(1, region="emea")])
    page = Page({"accounts": [acct(2), {"id": "a1", "is_deleted": 1}]}, cursor="c")
    sync(Scripted({"A": [page]}), store)
    assert store.conn.execute("SELECT id, name, region, is_deleted FROM accounts ORDER BY id").fetchall() == [
        ("a1", "Account 1", "emea", 1),
        ("a2", "Account 2", None, None),
    ]


def test_quarantined_records_are_kept_raw_with_the_reason() -> None:
    store = Store.open(":memory:")
    page = Page(
        {"accounts": [acct(1)]},
        cursor="c",
        quarantined=[Quarantined("bad1", "CreatedDate 'yesterday' is not a timestamp", '{"Id": "bad1"}')],
    )
    summary = sync(Scripted({"Account": [page]}), store)
    assert summary.objects[0].quarantined == 1
    assert store.conn.execute("SELECT record_id, reason, raw FROM quarantine").fetchall() == [
        ("bad1", "CreatedDate 'yesterday' is not a timestamp", '{"Id": "bad1"}')
    ]
    assert store.get_cursor("testcrm", "Account") == "c"


def test_stop_event_finishes_the_current_page() -> None:
    store = Store.open(":memory:")
    stop = threading.Event()
    pages = [Page({"accounts": [acct(i)]}, cursor=f"c{i}") for i in range(5)]

    def progress(name: str, rows: int) -> None:
        if rows == 2:
            stop.set()

    summary = sync(Scripted({"A": pages}), store, stop=stop, progress=progress)
    assert summary.status == "stopped"
    assert store.count("accounts") == 2
    assert store.get_cursor("testcrm", "A") == "c1"


def test_full_sync_ignores_the_cursor_and_unknown_objects_are_refused() -> None:
    store = Store.open(":memory:")
    store.set_cursor("testcrm", "A", "old")
    crm = Scripted({"A": [Page({"accounts": [acct(1)]}, cursor="new")]})
    sync(crm, store, full=True)
    assert crm.cursors_seen["A"] is None
    with pytest.raises(RunError, match="unknown object"):
        sync(crm, store, objects=["Nope"])


def test_pages_commit_in_batches_and_a_failed_batch_leaves_the_cursor_on_stored_rows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Several pages share a transaction; one that cannot be stored takes only its batch with it."""
    monkeypatch.setattr(engine, "BATCH_ROWS", 2)
    store = Store.open(":memory:")
    commits: list[str] = []
    store.conn.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)
    good = [Page({"accounts": [acct(i)]}, cursor=f"c{i}") for i in range(1, 6)]
    summary = sync(Scripted({"A": good}), store)
    assert summary.status == "ok" and store.count("accounts") == 5
    # pages 1-2, 3-4, 5: three batches, plus the run's own start and finish records
    assert len(commits) == 3 + 2

    store = Store.open(":memory:")
    unstorable = Page({"accounts": [{"id": "a4", "no_such_column": 1}]}, cursor="c4")
    with pytest.raises(ValueError, match="unknown columns"):
        sync(Scripted({"A": [*good[:3], unstorable, good[4]]}), store)
    # batch 1 (pages 1-2) committed; batch 2 (page 3 and the bad page 4) rolled back whole
    assert store.count("accounts") == 2
    assert store.get_cursor("testcrm", "A") == "c2"
