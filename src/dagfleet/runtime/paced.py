"""Run Dagster's webserver or daemon with its code-server watch paced for a fleet.

Both keep, per code location, a thread that asks the location's server for its id
every second (`dagster._grpc.server_watcher.WATCH_INTERVAL`) to notice a restarted
server. With a fleet's worth of locations that is the largest idle cost on the
machine: two gRPC calls per location per second, ~6 ms of CPU each second per
location between both sides. dagfleet does not need the webserver to notice by
itself: every publish reloads the location through GraphQL at once
(`FleetApp._on_published`). The daemon learns of a publish through the same watch;
it also refreshes its whole workspace every 60 s. So both run with a watch every
WATCH_SECONDS instead: a daemon sees a new commit's schedules and sensors within that
time (runs always reach the server behind the location's socket, which is the new one).

The narrow patch: the module attribute is the default every watch thread reads when
it starts; if this Dagster has no such attribute, nothing is changed.

    python -m dagfleet.runtime.paced dagster_webserver -h 127.0.0.1 -p 3000 -w workspace.yaml
    python -m dagfleet.runtime.paced dagster-daemon run -w workspace.yaml
"""

from __future__ import annotations

import sys

WATCH_SECONDS = 5.0
PROGRAMS = ("dagster_webserver", "dagster-daemon")


def pace() -> bool:
    """Set the watch interval; False when this Dagster does not have it."""
    from dagster._grpc import server_watcher

    if not isinstance(getattr(server_watcher, "WATCH_INTERVAL", None), (int, float)):
        return False
    server_watcher.WATCH_INTERVAL = WATCH_SECONDS  # type: ignore[assignment]
    return True


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in PROGRAMS:
        sys.exit(f"usage: python -m dagfleet.runtime.paced {{{'|'.join(PROGRAMS)}}} ARGS...")
    program, args = argv[0], argv[1:]
    pace()
    if program == "dagster_webserver":
        from dagster_webserver.cli import main as run

        sys.argv = ["dagster-webserver", *args]
    else:
        from dagster._daemon.cli import main as run

        sys.argv = ["dagster-daemon", *args]
    run()  # type: ignore[no-untyped-call]


if __name__ == "__main__":
    main(sys.argv[1:])
