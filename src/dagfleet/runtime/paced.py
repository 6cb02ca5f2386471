"""Run Dagster's webserver or daemon with its code-server watch paced for a fleet.

Both keep, per code location, a thread that asks the location's server for its id
every second (`dagster._grpc.server_watcher.WATCH_INTERVAL`) to notice a restarted
server. With a fleet's worth of locations that is the largest idle cost on the
machine: each call opens a connection to the server, ~3 ms of CPU between both sides,
and every server pays for two callers. dagfleet does not need the webserver to
notice by itself: every publish and every restart reloads the location through
GraphQL at once (`FleetApp._on_published`), so the webserver's watch is only a
fallback, every WATCH_SECONDS["dagster_webserver"]. The daemon learns of a publish
through its watch: it sees a new commit's schedules and sensors within
WATCH_SECONDS["dagster-daemon"] (runs always reach the server behind the location's
socket, which is the new one). The daemon also reloads every location's definitions
every 60 s (`dagster._daemon.controller.RELOAD_WORKSPACE_INTERVAL`), which its watch
makes redundant for dagfleet's servers: every RELOAD_SECONDS instead.

The narrow patch: module attributes that Dagster reads when a watch thread starts and
at each workspace check; if this Dagster has no such attribute, nothing is changed.

    python -m dagfleet.runtime.paced dagster_webserver -h 127.0.0.1 -p 3000 -w workspace.yaml
    python -m dagfleet.runtime.paced dagster-daemon run -w workspace.yaml
"""

from __future__ import annotations

import sys

WATCH_SECONDS = {"dagster_webserver": 30.0, "dagster-daemon": 15.0}
RELOAD_SECONDS = 300.0
PROGRAMS = tuple(WATCH_SECONDS)


def _set(module: object, name: str, value: float) -> bool:
    if not isinstance(getattr(module, name, None), (int, float)):
        return False
    setattr(module, name, value)
    return True


def pace(program: str) -> bool:
    """Pace `program`'s watch (and the daemon's workspace reload); False when this Dagster
    has none of these attributes."""
    from dagster._grpc import server_watcher

    paced = _set(server_watcher, "WATCH_INTERVAL", WATCH_SECONDS[program])
    if program == "dagster-daemon":
        from dagster._daemon import controller

        paced = _set(controller, "RELOAD_WORKSPACE_INTERVAL", RELOAD_SECONDS) or paced
    return paced


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in PROGRAMS:
        sys.exit(f"usage: python -m dagfleet.runtime.paced {{{'|'.join(PROGRAMS)}}} ARGS...")
    program, args = argv[0], argv[1:]
    pace(program)
    if program == "dagster_webserver":
        from dagster_webserver.cli import main as run

        sys.argv = ["dagster-webserver", *args]
    else:
        from dagster._daemon.cli import main as run

        sys.argv = ["dagster-daemon", *args]
    run()  # type: ignore[no-untyped-call]


if __name__ == "__main__":
    main(sys.argv[1:])
