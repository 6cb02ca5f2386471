"""Fault injection for crash tests: die by SIGKILL right after a named step.

`DAGFLEET_FAULT_KILL_AFTER=<step>` makes the process kill itself the first time
it passes that step, exactly as a `kill -9` would, so tests can prove that
every step of a publish is safe to interrupt. Unset (always, outside tests),
`checkpoint` does nothing.
"""

from __future__ import annotations

import os
import signal

ENV = "DAGFLEET_FAULT_KILL_AFTER"
STEPS = ("export", "env", "loaded", "current", "takeover", "status")


def checkpoint(step: str) -> None:
    if os.environ.get(ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)
