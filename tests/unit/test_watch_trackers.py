"""The instance watcher's decisions: which tick and daemon events a record calls for."""

from __future__ import annotations

from dagster._core.scheduler.instigation import InstigatorTick, InstigatorType, TickData, TickStatus
from dagster_shared.error import SerializableErrorInfo

from dagfleet.events import Kind
from dagfleet.watch.daemon import DaemonTracker
from dagfleet.watch.ticks import STALE, TickTracker


def where(selector_id: str) -> tuple[str, str, str]:
    return ("sales-prod", "sales", "prod") if selector_id == "sel" else ("", "", "")


def tick(tick_id: int, status: TickStatus, at: float = 1000.0) -> InstigatorTick:
    error = None
    if status == TickStatus.FAILURE:
        cause = SerializableErrorInfo("RuntimeError: the API said 503\n", [], "RuntimeError")
        error = SerializableErrorInfo(
            "SensorExecutionError: Error occurred during the execution of evaluation_fn\n",
            [],
            "SensorExecutionError",
            cause=cause,
        )
    data = TickData(
        instigator_origin_id="origin",
        instigator_name="orders",
        instigator_type=InstigatorType.SENSOR,
        status=status,
        timestamp=at,
        selector_id="sel",
        error=error,
        run_ids=["r1"] if status == TickStatus.SUCCESS else None,
        skip_reason="nothing new" if status == TickStatus.SKIPPED else None,
    )
    return InstigatorTick(tick_id, data)


def test_failed_and_recovered_ticks() -> None:
    tracker = TickTracker(where)
    assert tracker.events([tick(1, TickStatus.SKIPPED)], now=1000) == []  # noise: nothing
    assert tracker.events([tick(2, TickStatus.STARTED)], now=1000) == []
    assert tracker.open == {2}
    failed = tracker.events([tick(2, TickStatus.FAILURE)], now=1001)
    assert [e.kind for e in failed] == [Kind.TICK_FAILED]
    assert tracker.open == set()
    event = failed[0]
    assert (event.location, event.repo, event.env) == ("sales-prod", "sales", "prod")
    assert event.data["name"] == "orders"
    assert event.data["type"] == "sensor"
    assert event.data["error"] == "RuntimeError: the API said 503"  # the root cause
    # A skipped tick right after a failure says it works again; the next one says nothing.
    assert [e.kind for e in tracker.events([tick(3, TickStatus.SKIPPED)], now=1002)] == [
        Kind.TICK_SUCCEEDED
    ]
    assert tracker.events([tick(4, TickStatus.SKIPPED)], now=1003) == []
    assert [e.kind for e in tracker.events([tick(5, TickStatus.SUCCESS)], now=1004)] == [
        Kind.TICK_SUCCEEDED
    ]
    assert tracker.cursor == 5


def test_a_tick_left_started_is_not_followed_forever() -> None:
    tracker = TickTracker(where)
    tracker.events([tick(7, TickStatus.STARTED, at=0.0)], now=10)
    assert tracker.open == {7}
    tracker.events([tick(7, TickStatus.STARTED, at=0.0)], now=STALE + 1)
    assert tracker.open == set()


def test_daemon_down_then_up_once_each() -> None:
    daemon = DaemonTracker(tolerance=90)
    assert daemon.event(1000, True, 995) is None  # up at start: nothing to say
    assert daemon.event(1080, True, 995) is None  # within the tolerance
    down = daemon.event(1090, True, 995)
    assert down is not None and down.kind is Kind.DAEMON_DOWN
    assert daemon.event(1200, True, 995) is None  # still down: said once
    up = daemon.event(1210, True, 1205)
    assert up is not None and up.kind is Kind.DAEMON_UP
    assert daemon.event(1211, True, 1205) is None


def test_daemon_that_never_beats_is_down_after_the_tolerance() -> None:
    daemon = DaemonTracker(tolerance=90)
    assert daemon.event(1000, True, None) is None
    event = daemon.event(1091, True, None)
    assert event is not None and event.kind is Kind.DAEMON_DOWN


def test_no_daemon_no_daemon_events() -> None:
    daemon = DaemonTracker(tolerance=90)
    assert daemon.event(1000, False, None) is None
    assert daemon.event(5000, False, None) is None
