"""Errors a user sees when the fleet files are wrong: each names file, field and fix."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SpecProblem:
    """One thing wrong with one file, phrased so the user knows what to change."""

    file: str
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.field}: " if self.field else f"{self.file}: "
        return where + self.message


class SpecError(Exception):
    """The fleet could not be loaded; carries every problem found, not just the first."""

    def __init__(self, problems: list[SpecProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))
