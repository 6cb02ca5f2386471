"""One recorded sync attempt, as the API and the CLI show it."""

from __future__ import annotations

from pydantic import BaseModel

from dagfleet.events import Attempt


class StepTime(BaseModel):
    step: str
    seconds: float


class PublishAttempt(BaseModel):
    """A sync of one location: the commit, who wrote it, each step's seconds, how it ended."""

    location: str
    repo: str
    env: str
    commit: str | None
    previous: str | None
    author: str | None = None
    subject: str | None = None
    started: str  # ISO 8601, UTC
    finished: str
    seconds: float
    steps: list[StepTime]
    outcome: str  # published | failed | cancelled
    reason: str | None = None
    message: str | None = None
    transient: bool = False
    forced: bool = False

    @classmethod
    def of(cls, attempt: Attempt) -> PublishAttempt:
        return cls(
            location=attempt.location,
            repo=attempt.repo,
            env=attempt.env,
            commit=attempt.commit,
            previous=attempt.previous,
            author=attempt.author,
            subject=attempt.subject,
            started=attempt.started,
            finished=attempt.finished,
            seconds=attempt.seconds,
            steps=[StepTime(step=s, seconds=round(t, 3)) for s, t in attempt.steps],
            outcome=str(attempt.outcome),
            reason=attempt.reason,
            message=attempt.message,
            transient=attempt.transient,
            forced=attempt.forced,
        )
