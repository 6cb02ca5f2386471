"""The fleet's own logs: dagfleet's, the Dagster webserver's and daemon's, every location's.

All live in the logs directory (Layout.logs): `dagfleet.log`, `webserver.log`,
`daemon.log` and `<location>.log`. Tailing and following reuse `service.logs`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from dagfleet.layout import Layout
from dagfleet.registry import NotFound

PROCESSES = ("dagfleet", "webserver", "daemon")


def fleet_log_paths(
    layout: Layout, locations: Sequence[str], source: str | None
) -> dict[str, Path]:
    """{source: log file} for `source`, or for every process and location when None."""
    sources = [*PROCESSES, *locations]
    if source is None:
        return {name: layout.logs / f"{name}.log" for name in sources}
    if source not in sources:
        raise NotFound(
            f"unknown log source {source!r}: give one of {', '.join(sources)} (or none for all)"
        )
    return {source: layout.logs / f"{source}.log"}
