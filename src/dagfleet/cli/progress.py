"""Progress on stderr while locations sync: each location's current step.

The step is the message of the location's Synced condition while it is
Progressing (cloning, installing with uv, checking the load, publishing). On a
terminal a Rich status line shows the latest step; in a CI log each new step is
one plain line. Steps are read by polling statuses on a background thread, so
the command's own work (a blocking sync call) stays in the main thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

from rich.text import Text

from dagfleet.cli import output
from dagfleet.status import LocationStatus, Reason

Poll = Callable[[], Iterable[LocationStatus]]
POLL_SECONDS = 0.5


def step_of(status: LocationStatus) -> str | None:
    """'Progressing: installing dependencies' while the location syncs, else None."""
    synced = status.condition("Synced")
    if synced is None:
        return None
    if synced.reason == Reason.PROGRESSING or synced.status == "Unknown":
        first = synced.message.splitlines()[0] if synced.message else ""
        return f"{synced.reason}: {first}" if first else synced.reason
    return None


class Progress:
    """A status line on a terminal, plain lines when stderr is a log."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.tty = output.err.is_terminal
        self._last: dict[str, str] = {}
        self._status: Any = None
        self._lock = threading.Lock()

    def __enter__(self) -> Progress:
        if self.tty:
            self._status = output.err.status(Text(self.title))
            self._status.start()
        else:
            output.note(f"{self.title}...")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._status is not None:
            self._status.stop()

    def step(self, location: str, text: str) -> None:
        with self._lock:
            if self._last.get(location) == text:
                return
            self._last[location] = text
            if self._status is not None:
                width = max(20, output.width() - 4)
                self._status.update(Text(f"{location}: {text}"[:width]))
            else:
                output.note(f"{location}: {text}")

    def show(
        self, statuses: Iterable[LocationStatus], names: set[str] | None, finals: bool = False
    ) -> None:
        """Each location's current step; with `finals`, also when it is Ready or failed."""
        for status in statuses:
            if names is not None and status.location not in names:
                continue
            step = step_of(status) or (final_of(status) if finals else None)
            if step is not None:
                self.step(status.location, step)


def final_of(status: LocationStatus) -> str | None:
    """'Ready at <commit>', or the reason and first line of a failed sync, else None."""
    ready, synced = status.condition("Ready"), status.condition("Synced")
    if synced is not None and synced.status == "False" and synced.reason != Reason.PROGRESSING:
        first = synced.message.splitlines()[0] if synced.message else ""
        return f"{synced.reason}: {first}"
    if ready is not None and ready.status == "True":
        return f"Ready at {output.short(status.commit)}"
    return None


@contextmanager
def watching(
    title: str, poll: Poll, names: set[str] | None = None, finals: bool = False
) -> Iterator[Progress]:
    """Show the steps of `names` (all when None) until the block ends."""
    done = threading.Event()
    with Progress(title) as progress:

        def loop() -> None:
            while not done.wait(POLL_SECONDS):
                try:
                    progress.show(poll(), names, finals)
                except Exception:  # progress is a courtesy: a failed poll must not end the work
                    continue

        thread = threading.Thread(target=loop, name="cli-progress", daemon=True)
        thread.start()
        try:
            yield progress
        finally:
            done.set()
            thread.join(5)


def wait_loaded(poll: Poll, names: list[str], timeout: float) -> bool:
    """Show each location's steps until it is Ready or its sync failed; True if all loaded."""
    deadline = time.monotonic() + timeout
    pending = set(names)
    failed = False
    with Progress("waiting for the locations to load") as progress:
        while pending and time.monotonic() < deadline:
            for status in poll():
                name = status.location
                if name not in pending:
                    continue
                ready, synced = status.condition("Ready"), status.condition("Synced")
                if ready is not None and ready.status == "True":
                    output.note(f"{name}: Ready at {output.short(status.commit)}")
                    pending.discard(name)
                elif (
                    synced is not None
                    and synced.status == "False"
                    and synced.reason != Reason.PROGRESSING
                ):
                    output.error(f"{name}: {synced.reason} {synced.message[:500]}")
                    pending.discard(name)
                    failed = True
                else:
                    step = step_of(status)
                    if step is not None:
                        progress.step(name, step)
            if pending:
                time.sleep(POLL_SECONDS)
    if pending:
        output.error(f"still loading after {timeout:.0f}s: {', '.join(sorted(pending))}")
    return not pending and not failed
