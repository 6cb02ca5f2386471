"""The fault probe's pure parts: one case's outcome and the JSON summary it prints.

No I/O here: bench/fault_probe.py runs the cases and prints `summarize(results)`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

DETAIL_MAX = 600  # characters of detail kept per case: enough to say what broke


@dataclass(frozen=True)
class CaseResult:
    """One probe case: its name, whether the fleet held, and what was seen."""

    name: str
    held: bool
    detail: str

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "held": self.held, "detail": clip(self.detail)}


def clip(text: str, limit: int = DETAIL_MAX) -> str:
    """`text` cut to `limit` characters, the cut marked, so one noisy case stays readable."""
    return text if len(text) <= limit else text[: limit - 15] + " ...[truncated]"


def crashed(name: str, exc: BaseException) -> CaseResult:
    """A case whose own code raised: the fleet did not hold (a hang or a refusal that
    never came is a break, not a probe error to hide)."""
    return CaseResult(name, False, f"probe raised {type(exc).__name__}: {exc}")


def run_case(name: str, check: Callable[[], CaseResult]) -> CaseResult:
    """Run one case; an exception becomes a broken case naming it."""
    try:
        return check()
    except Exception as exc:  # a measurement: record it, go on to the next case
        return crashed(name, exc)


def summarize(results: Iterable[CaseResult]) -> dict[str, Any]:
    """{"tried", "held", "broke", "cases": [{"name", "held", "detail"}]} in run order.

    Case names must be unique: the summary is compared run to run by name.
    """
    cases = list(results)
    names = [c.name for c in cases]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"probe case names must be unique; repeated: {', '.join(dupes)}")
    held = sum(1 for c in cases if c.held)
    return {
        "tried": len(cases),
        "held": held,
        "broke": len(cases) - held,
        "cases": [c.as_json() for c in cases],
    }
