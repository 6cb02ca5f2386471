"""Ready is derived from Serving, Synced and Suspended; transitions keep their timestamps."""

from __future__ import annotations

import pytest

from dagfleet.status import Condition, LocationStatus, Reason, derive_ready

pytestmark = pytest.mark.unit

OLD = "2000-01-01T00:00:00+00:00"


def cond(type_: str, status: str, reason: str, message: str = "") -> Condition:
    return Condition(
        type=type_,
        status=status,  # type: ignore[arg-type]
        reason=reason,
        message=message,
        last_transition=OLD,
    )


SERVING = cond("Serving", "True", Reason.CODE_SERVER_RUNNING, "serving abc123")
CRASHED = cond("Serving", "False", Reason.CODE_SERVER_CRASHED, "exit code -9")
STARTING = cond("Serving", "Unknown", Reason.CODE_SERVER_STARTING, "starting")
NEVER = cond("Serving", "False", Reason.NO_GOOD_COMMIT, "no commit has loaded yet")
SYNCED = cond("Synced", "True", Reason.PUBLISHED, "abc123 published")
INSTALL_FAILED = cond(
    "Synced", "False", Reason.DEPENDENCY_INSTALL_FAILED, "def456: No solution for nope==9"
)
INVALID = cond("Synced", "False", Reason.DEFINITIONS_INVALID, "def456: SyntaxError")
SUSPENDED = cond("Suspended", "True", Reason.SUSPENDED, "suspend: true")
NOT_SUSPENDED = cond("Suspended", "False", Reason.SUSPENDED, "")


@pytest.mark.parametrize(
    ("case", "conditions", "status", "reason", "message"),
    [
        ("nothing known yet", [], "Unknown", "Progressing", ""),
        ("only synced", [SYNCED], "Unknown", "Progressing", ""),
        (
            "first sync failed before anything served",
            [cond("Synced", "False", Reason.CODE_TARGET_NOT_FOUND, "abc: no code target")],
            "False",
            "CodeTargetNotFound",
            "abc: no code target",
        ),
        (
            "first sync still in progress",
            [cond("Synced", "False", Reason.PROGRESSING, "publishing abc")],
            "Unknown",
            "Progressing",
            "",
        ),
        ("serving and synced", [SERVING, SYNCED], "True", "CodeServerRunning", "serving abc123"),
        ("serving, never synced", [SERVING], "True", "CodeServerRunning", "serving abc123"),
        (
            "last good wins: serving while a newer commit failed",
            [SERVING, INSTALL_FAILED],
            "True",
            "CodeServerRunning",
            "serving abc123; newer commit not published: DependencyInstallFailed",
        ),
        (
            "last good wins with invalid definitions",
            [SYNCED, SERVING, INVALID],
            "True",
            "CodeServerRunning",
            "serving abc123; newer commit not published: DefinitionsInvalid",
        ),
        (
            "never served and install failed",
            [NEVER, INSTALL_FAILED],
            "False",
            "DependencyInstallFailed",
            "def456: No solution for nope==9",
        ),
        ("crashed while synced", [CRASHED, SYNCED], "False", "CodeServerCrashed", "exit code -9"),
        ("starting", [STARTING, SYNCED], "Unknown", "CodeServerStarting", "starting"),
        ("suspended wins over serving", [SERVING, SYNCED, SUSPENDED], "False", "Suspended", ""),
        ("suspended wins over failure", [NEVER, INVALID, SUSPENDED], "False", "Suspended", ""),
        (
            "Suspended False is ignored",
            [SERVING, NOT_SUSPENDED],
            "True",
            "CodeServerRunning",
            "serving abc123",
        ),
        (
            "a stale Ready in the input is ignored",
            [cond("Ready", "True", "Whatever"), NEVER],
            "False",
            "NoGoodCommit",
            "no commit has loaded yet",
        ),
    ],
)
def test_derive_ready(
    case: str, conditions: list[Condition], status: str, reason: str, message: str
) -> None:
    ready = derive_ready(conditions)
    assert (ready.type, ready.status, ready.reason, ready.message) == (
        "Ready",
        status,
        reason,
        message,
    )


def status_with(*conditions: Condition) -> LocationStatus:
    s = LocationStatus(location="sales-A", repo="sales", env="A")
    for c in conditions:
        s = s.with_condition(c.type, c.status, c.reason, c.message)
    # Age every timestamp so that a change made "now" is visible.
    aged = [c.model_copy(update={"last_transition": OLD}) for c in s.conditions]
    return s.model_copy(update={"conditions": aged})


def test_with_condition_keeps_one_condition_per_type_and_ready_last() -> None:
    s = status_with(SERVING, SYNCED)
    s = s.with_condition("Synced", "False", Reason.DEFINITIONS_INVALID, "boom")
    assert [c.type for c in s.conditions] == ["Serving", "Synced", "Ready"]
    assert (
        s.condition("Synced") is not None and s.condition("Synced").reason == "DefinitionsInvalid"
    )
    assert s.ready


@pytest.mark.parametrize(
    ("case", "start", "change", "changed_kept", "ready_kept", "ready"),
    [
        (
            "same status, new reason: both timestamps kept",
            [SERVING, SYNCED],
            ("Synced", "True", Reason.PINNED, "pinned"),
            True,
            True,
            "True",
        ),
        (
            "synced flips, Ready stays True: only Synced moves",
            [SERVING, SYNCED],
            ("Synced", "False", Reason.DEFINITIONS_INVALID, "bad"),
            False,
            True,
            "True",
        ),
        (
            "serving flips: Ready flips and moves",
            [SERVING, SYNCED],
            ("Serving", "False", Reason.CODE_SERVER_CRASHED, "killed"),
            False,
            False,
            "False",
        ),
        (
            "suspended: Ready flips",
            [SERVING, SYNCED],
            ("Suspended", "True", Reason.SUSPENDED, ""),
            False,
            False,
            "False",
        ),
        (
            "first good commit serves: Ready flips to True",
            [NEVER, INSTALL_FAILED],
            ("Serving", "True", Reason.CODE_SERVER_RUNNING, "serving"),
            False,
            False,
            "True",
        ),
    ],
)
def test_last_transition(
    case: str,
    start: list[Condition],
    change: tuple[str, str, str, str],
    changed_kept: bool,
    ready_kept: bool,
    ready: str,
) -> None:
    s = status_with(*start).with_condition(*change)  # type: ignore[arg-type]
    changed = s.condition(change[0])
    assert changed is not None
    assert (changed.status, changed.reason, changed.message) == change[1:]
    assert (changed.last_transition == OLD) is changed_kept
    others = [c for c in s.conditions if c.type not in (change[0], "Ready")]
    assert all(c.last_transition == OLD for c in others)
    r = s.condition("Ready")
    assert r is not None and r.status == ready
    assert (r.last_transition == OLD) is ready_kept
    assert s.ready is (ready == "True")


def test_status_survives_json_round_trip() -> None:
    s = status_with(SERVING, INSTALL_FAILED)
    again = LocationStatus.model_validate_json(s.model_dump_json())
    assert again == s
    assert again.ready
