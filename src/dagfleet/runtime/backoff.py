"""Restart pacing for supervised processes: capped exponential backoff that forgives.

The first restart after a crash is immediate. While crashes keep coming, each
restart waits twice as long as the one before it, up to `cap`. A process that
stays up for `cap` seconds has recovered: its next crash is repaired at once
again. A crash loop therefore costs little, and a one-off crash days later is not
punished for the loop it once was in.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Backoff:
    first: float = 1.0
    cap: float = 60.0
    delay: float = field(init=False)
    not_before: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self.delay = self.first

    def wait(self, now: float) -> float:
        """Seconds to wait before a restart may start at `now`."""
        return max(0.0, self.not_before - now)

    def restarted(self, now: float) -> None:
        """Record a restart at `now`; the next one waits twice as long."""
        self.not_before = now + self.delay
        self.delay = min(self.delay * 2, self.cap)

    def running(self, started: float, now: float) -> None:
        """Note that the process started at `started` is still up at `now`."""
        if now - started >= self.cap:
            self.delay = self.first
            self.not_before = 0.0
