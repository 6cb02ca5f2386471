"""Restart pacing: immediate first restart, doubling delays, a cap, and forgiveness."""

from __future__ import annotations

import itertools

from dagfleet.runtime.backoff import Backoff


def crash_loop(backoff: Backoff, crashes: int, uptime: float) -> list[float]:
    """Restart times of a process that dies `uptime` seconds after each start."""
    now, times = 0.0, []
    for _ in range(crashes):
        now += backoff.wait(now)
        times.append(now)
        backoff.restarted(now)
        now += uptime
        backoff.running(times[-1], now)
    return times


def test_first_restart_is_immediate_then_delays_double_up_to_the_cap() -> None:
    times = crash_loop(Backoff(first=1.0, cap=8.0), crashes=7, uptime=0.1)
    gaps = [round(b - a, 6) for a, b in itertools.pairwise(times)]
    assert times[0] == 0.0
    assert gaps == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_a_crash_after_the_wait_is_over_restarts_at_once() -> None:
    backoff = Backoff(first=1.0, cap=60.0)
    backoff.restarted(0.0)
    assert backoff.wait(0.5) == 0.5
    assert backoff.wait(3.0) == 0.0


def test_staying_up_for_the_cap_forgives_the_crash_loop() -> None:
    backoff = Backoff(first=1.0, cap=8.0)
    crash_loop(backoff, crashes=5, uptime=0.1)
    assert backoff.delay == 8.0
    backoff.running(started=100.0, now=107.9)
    assert backoff.delay == 8.0
    backoff.running(started=100.0, now=108.0)
    assert backoff.delay == 1.0
    assert backoff.wait(108.0) == 0.0
