"""Process-group primitives, below both `envs` (installers) and `runtime` (servers).

Every child dagfleet starts gets its own session, so one signal to its group
reaches the grandchildren too (uv's resolvers, Dagster's subprocesses).
"""

from __future__ import annotations

import contextlib
import os
import signal


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    """Signal a whole process group; a group that is already gone is not an error."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
