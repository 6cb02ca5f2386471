"""The queued writer both database logs share (publish history, audit log): the oldest
items dropped when the queue is full, `flush`, the backoff that new items do not cut
short, and `close` writing what is queued until its deadline.

The destination is an in-memory list that can be told to fail, so each behaviour
is exact and quick; the real stores under a real writer are in
tests/integration/test_audit_store.py and test_publish_history.py.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import pytest

from dagfleet.history.queued import RETRY_FIRST, QueuedWriter


class ListStore:
    """Batches kept in a list; `failing` makes every write raise."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.tries: list[float] = []  # when each write was tried (monotonic)
        self.failing = threading.Event()
        self.closed = False

    def write(self, batch: list[int]) -> None:
        self.tries.append(time.monotonic())
        if self.failing.is_set():
            raise ConnectionError("database is restarting")
        self.batches.append(batch)

    def where(self) -> str:
        return "postgresql://fleet:***@db.internal/fleet"

    def close(self) -> None:
        self.closed = True


class NumberWriter(QueuedWriter[int]):
    def __init__(self, store: ListStore, max_queued: int = 100) -> None:
        super().__init__(
            store,
            log_name="numbers",
            items=("number", "numbers"),
            thread="t",
            max_queued=max_queued,
        )
        self.list_store = store

    def _write(self, batch: list[int]) -> None:
        self.list_store.write(batch)


@pytest.fixture
def store() -> ListStore:
    return ListStore()


@pytest.fixture
def writer(store: ListStore) -> Iterator[NumberWriter]:
    made = NumberWriter(store, max_queued=3)
    yield made
    store.failing.clear()
    made.close(timeout=2)


def _start_failing(writer: NumberWriter, store: ListStore, *items: int) -> None:
    """The writer running against a database that fails, with `items` queued."""
    store.failing.set()
    writer.start()
    for item in items:
        writer._enqueue(item)


def _messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == __name__]


def test_a_full_queue_drops_the_oldest_and_says_how_many(
    writer: NumberWriter, store: ListStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    for n in range(1, 6):  # before the thread runs: 1 and 2 fall out of a queue of 3
        writer._enqueue(n)
    writer.start()
    assert writer.flush(5)  # dropped items count as done: flush does not wait for them
    assert store.batches == [[3, 4, 5]]  # one batch, in order
    assert "numbers: 2 numbers dropped (queue full)" in _messages(caplog)


def test_flush_waits_for_what_was_queued_and_times_out_while_the_database_fails(
    writer: NumberWriter, store: ListStore
) -> None:
    _start_failing(writer, store, 1)
    assert not writer.flush(0.3)
    store.failing.clear()
    assert writer.flush(RETRY_FIRST + 5)  # the retry after the first backoff writes it
    assert store.batches == [[1]]
    assert writer.running


def test_new_items_do_not_cut_the_backoff_short(
    writer: NumberWriter, store: ListStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    _start_failing(writer, store, 1)
    deadline = time.monotonic() + 5
    while not store.tries and time.monotonic() < deadline:
        time.sleep(0.01)
    assert store.tries, "the writer never tried"
    for n in (2, 3):  # each wakes the thread, which must go back to waiting
        time.sleep(0.2)
        writer._enqueue(n)
    store.failing.clear()
    assert writer.flush(RETRY_FIRST + 5)
    assert store.tries[1] - store.tries[0] >= RETRY_FIRST - 0.05
    assert store.batches == [[1, 2, 3]]
    # The message names the log, the count and the database (as given: no password).
    assert (
        "numbers: writing 1 number to postgresql://fleet:***@db.internal/fleet failed "
        "(retrying in 1 s): database is restarting"
    ) in _messages(caplog)


def test_close_writes_what_is_queued_then_closes_the_store(
    writer: NumberWriter, store: ListStore
) -> None:
    writer.start()
    for n in (1, 2):
        writer._enqueue(n)
    writer.close(timeout=5)
    assert not writer.running
    assert [n for batch in store.batches for n in batch] == [1, 2]
    assert store.closed


def test_close_gives_up_at_its_deadline_and_says_what_was_lost(
    writer: NumberWriter, store: ListStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    _start_failing(writer, store, 1, 2)
    began = time.monotonic()
    writer.close(timeout=0.6)
    took = time.monotonic() - began
    assert 0.5 <= took < 0.6 + 0.5  # retried until the deadline (every 0.2 s), not beyond
    assert len(store.tries) >= 2
    assert not writer.running
    assert store.batches == []
    assert store.closed
    assert "numbers: 2 numbers not written at stop" in _messages(caplog)


def test_a_queue_needs_room_for_one_item(store: ListStore) -> None:
    with pytest.raises(ValueError, match="numbers: max_queued must be at least 1, not 0"):
        NumberWriter(store, max_queued=0)
