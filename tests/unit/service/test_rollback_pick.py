"""Which commit `dagfleet rollback` goes back to without --to, and which --to values it takes."""

from __future__ import annotations

import pytest

from dagfleet.history.models import PublishAttempt
from dagfleet.service.rollback import check_commit, pick_previous

pytestmark = pytest.mark.unit


def published(*pairs: tuple[str, str | None]) -> list[PublishAttempt]:
    """(commit, previous) pairs, newest first, as the store returns them."""
    return [
        PublishAttempt(
            location="demo-A",
            repo="demo",
            env="A",
            commit=commit,
            previous=previous,
            started="2026-01-01T00:00:00+00:00",
            finished="2026-01-01T00:00:01+00:00",
            seconds=1.0,
            steps=[],
            outcome="published",
        )
        for commit, previous in pairs
    ]


@pytest.mark.parametrize(
    ("history", "current", "expected"),
    [
        # 1 then 2 live: back to 1.
        (published(("c2", "c1"), ("c1", None)), "c2", "c1"),
        # Rolled back to 1 (pinned) after 3: rolling back again goes further back, not to 3.
        (published(("c1", "c3"), ("c3", "c2"), ("c2", "c1"), ("c1", None)), "c1", None),
        (published(("c2", "c3"), ("c3", "c2"), ("c2", "c1"), ("c1", None)), "c2", "c1"),
        # A restart republished 2 with nothing live before it: its first publish counts.
        (published(("c2", None), ("c2", "c1"), ("c1", None)), "c2", "c1"),
        # The first publish has no previous (the fleet started on it): the next older one.
        (published(("c2", None), ("c1", None)), "c2", "c1"),
        # The current commit predates the history: the newest other published commit.
        (published(("c2", "c1"), ("c1", None)), "c9", "c2"),
        # Nothing earlier.
        (published(("c1", None)), "c1", None),
        ([], None, None),
    ],
)
def test_pick_previous(history: list[PublishAttempt], current: str | None, expected: str) -> None:
    assert pick_previous(history, current) == expected


@pytest.mark.parametrize(
    ("to", "ok"),
    [
        ("a1b2c3d", True),
        ("A1B2C3D" * 5 + "A1B2C", True),
        ("a1b2c3", False),
        ("main", False),
        ("v1.0", False),
        ("a" * 41, False),
    ],
)
def test_check_commit(to: str, ok: bool) -> None:
    assert (check_commit(to) is None) is ok
