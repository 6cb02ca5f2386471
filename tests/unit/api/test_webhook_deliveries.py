"""Remembered webhook deliveries: per provider, time-limited, bounded, keyed by id and body."""

from __future__ import annotations

import pytest

from dagfleet.api.webhook import Deliveries, delivery_keys

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_keys_are_the_providers_delivery_id_and_the_body() -> None:
    keys = delivery_keys("github", {"x-github-delivery": "g-1"}, b"{}")
    first, second = keys
    assert first == "id:g-1" and second.startswith("body:")
    gitlab = {"idempotency-key": "k-1", "x-gitlab-event-uuid": "e-1"}
    assert "id:k-1" in delivery_keys("gitlab", gitlab, b"{}")
    assert "id:e-1" in delivery_keys("gitlab", {"x-gitlab-event-uuid": "e-1"}, b"{}")
    assert len(delivery_keys("github", {}, b"{}")) == 1  # no id: the body alone
    assert delivery_keys("github", {}, b"a") != delivery_keys("github", {}, b"b")


def test_a_replay_within_the_window_then_forgotten_after_it() -> None:
    clock = Clock()
    seen = Deliveries(window=60, clock=clock)
    keys = delivery_keys("github", {"x-github-delivery": "d"}, b"body")
    assert seen.replayed("github", keys) is None
    clock.now += 30
    replay = seen.replayed("github", keys)
    assert replay is not None and replay.seconds_ago == 30 and "'d'" in replay.reason()
    assert seen.replayed("gitea", keys) is None  # per provider
    clock.now += 61
    assert seen.replayed("github", keys) is None


def test_memory_is_bounded_oldest_first() -> None:
    seen = Deliveries(memory=4, clock=Clock())
    for i in range(10):
        assert seen.replayed("github", {f"id:{i}": str(i)}) is None
    assert seen.replayed("github", {"id:9": "9"}) is not None
    assert seen.replayed("github", {"id:0": "0"}) is None  # forgotten: over the bound


def test_forget_lets_a_retry_through() -> None:
    seen = Deliveries(clock=Clock())
    keys = {"id:x": "x", "body:y": "y"}
    assert seen.replayed("gitlab", keys) is None
    seen.forget("gitlab", keys)
    assert seen.replayed("gitlab", keys) is None
