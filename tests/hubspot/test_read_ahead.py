"""The read-ahead threads of a full pull (pull.ahead): order, errors, and stopping when left early."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from kpisync.connectors.hubspot.pull import ahead


def test_items_come_in_order_and_an_error_after_the_items_before_it() -> None:
    def items() -> Iterator[int]:
        yield from range(5)
        raise RuntimeError("page 6 failed")

    got: list[int] = []
    with pytest.raises(RuntimeError, match="page 6 failed"):
        for item in ahead(items(), 2, "test-ahead", 5.0):
            got.append(item)
    assert got == [0, 1, 2, 3, 4]


def test_leaving_early_stops_the_thread_and_closes_the_source() -> None:
    pulled: list[int] = []
    closed = threading.Event()

    def items() -> Iterator[int]:
        try:
            for n in range(1_000):
                pulled.append(n)
                yield n
        finally:
            closed.set()

    reader = ahead(items(), 2, "test-ahead", 5.0)
    assert next(reader) == 0
    time.sleep(0.2)  # the thread fills the queue and waits
    reader.close()
    assert closed.wait(5)
    assert len(pulled) <= 5  # the queue's two, one waiting to be put, not the whole source
    assert not [t for t in threading.enumerate() if t.name == "test-ahead"]


def test_nested_read_aheads_stop_together() -> None:
    closed = threading.Event()

    def items() -> Iterator[int]:
        try:
            yield from range(1_000)
        finally:
            closed.set()

    outer = ahead((n * 2 for n in ahead(items(), 3, "test-inner", 5.0)), 2, "test-outer", 5.0)
    assert [next(outer) for _ in range(3)] == [0, 2, 4]
    outer.close()
    assert closed.wait(5)
