"""The Controller used when no fleet is running: files and last written statuses only.

Edits still go through the registry; the next `dagfleet up` picks them up.
Anything that needs the runtime (sync, promote, webhooks) is refused with 503.
Statuses of a fleet that is not running say so (`as_stopped`), whether it stopped
cleanly or died without writing them.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from dagfleet.control import ControlError, PromoteOutcome, SyncOutcome
from dagfleet.layout import Layout
from dagfleet.registry import Registry
from dagfleet.spec import Fleet, SpecError, load_fleet
from dagfleet.spec.load import FLEET_FILE, REPOS_DIR
from dagfleet.status import LocationStatus, StatusStore
from dagfleet.status.liveness import as_stopped, fleet_running

NOT_RUNNING = "no running fleet: start it with `dagfleet up`"


class OfflineController:
    def __init__(self, fleet_dir: Path) -> None:
        self.fleet_dir = fleet_dir
        self.layout = Layout.for_fleet(fleet_dir)
        self.store = StatusStore(self.layout.status)
        # Parsed status files by (mtime, size): polling re-reads only what changed.
        self._parsed: dict[str, tuple[tuple[int, int], LocationStatus | None]] = {}
        self._envs: tuple[tuple[int, int], list[str]] = ((0, 0), [])

    def _env_order(self) -> list[str]:
        path = self.fleet_dir / FLEET_FILE
        try:
            st = path.stat()
        except FileNotFoundError:
            return []
        key = (st.st_mtime_ns, st.st_size)
        if self._envs[0] != key:
            try:
                envs = [e.name for e in Registry(self.fleet_dir).fleet_spec().environments]
            except SpecError:
                envs = []
            self._envs = (key, envs)
        return self._envs[1]

    def _read_all(self) -> list[LocationStatus]:
        out, seen = [], set()
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.store.directory):
                if not entry.name.endswith(".json"):
                    continue
                st = entry.stat()
                key = (st.st_mtime_ns, st.st_size)
                cached = self._parsed.get(entry.name)
                if cached is None or cached[0] != key:
                    cached = (key, self.store.read(entry.name.removesuffix(".json")))
                    self._parsed[entry.name] = cached
                seen.add(entry.name)
                if cached[1] is not None:
                    out.append(cached[1])
        for gone in set(self._parsed) - seen:
            del self._parsed[gone]
        return out

    def fleet(self) -> Fleet:
        return load_fleet(self.fleet_dir)

    def registry_changed(self) -> None:
        """Nothing runs, so nothing to tell."""

    def playground_changed(self, env: str) -> None:
        """Nothing runs; a fleet started later serves the files it finds."""

    def statuses(self) -> list[LocationStatus]:
        """Last written status of every location of a registered repo, by repo then env.

        Only file names are read for the repos, not the files: validating 200 repo
        files costs seconds, and a status is shown whether or not its file is valid.
        """
        repos = {p.stem for p in (self.fleet_dir / REPOS_DIR).glob("*.y*ml")}
        order = {name: i for i, name in enumerate(self._env_order())}
        known = [s for s in self._read_all() if s.repo in repos]
        if not fleet_running(self.layout):
            known = [as_stopped(s) for s in known]
        return sorted(known, key=lambda s: (s.repo, order.get(s.env, len(order)), s.env))

    def sync(self, repo: str | None, env: str | None, wait: bool) -> list[SyncOutcome]:
        raise ControlError(NOT_RUNNING, 503)

    def request_sync_for_push(self, git_url: str, branch: str) -> list[str]:
        raise ControlError(NOT_RUNNING, 503)

    def promote(self, repo: str, source: str, target: str, merge: bool) -> PromoteOutcome:
        raise ControlError(NOT_RUNNING, 503)
