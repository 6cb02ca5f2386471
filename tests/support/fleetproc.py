"""Run `dagfleet up` as a real subprocess on free ports, and always stop it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import yaml

from tests.support.dagster_client import DagsterTestClient

DAGFLEET = str(Path(sys.executable).parent / "dagfleet")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # the thing may not be up yet
            last_exc = exc
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout:.0f}s waiting for {what} (last error: {last_exc})"
    )


def write_fleet(
    directory: Path,
    repos: dict[str, dict[str, Any]],
    environments: list[dict[str, Any]] | None = None,
    **spec: Any,
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    doc = {
        "name": "test",
        "environments": environments
        or [{"name": "A", "branch": "A"}, {"name": "B", "branch": "B"}],
        **spec,
    }
    (directory / "fleet.yaml").write_text(yaml.safe_dump(doc))
    (directory / "repos").mkdir(exist_ok=True)
    for name, repo in repos.items():
        (directory / "repos" / f"{name}.yaml").write_text(yaml.safe_dump({"name": name, **repo}))
    return directory


def promote_demo(api: str, fleet_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """`dagfleet promote demo --from A --to B` against the API at `api`, output captured."""
    where = ["--api", api, "--fleet", str(fleet_dir)]
    return subprocess.run(
        [DAGFLEET, "promote", "demo", "--from", "A", "--to", "B", *where, *extra],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def dagfleet_processes(state_root: Path) -> list[psutil.Process]:
    """Every live process started for this fleet (they carry DAGFLEET_STATE)."""
    found = []
    for proc in psutil.process_iter(["pid"]):
        with contextlib.suppress(psutil.Error):
            if proc.environ().get("DAGFLEET_STATE") == str(state_root):
                found.append(proc)
    return found


class RunningFleet:
    def __init__(
        self,
        fleet_dir: Path | None,
        extra: list[str] | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ):
        """`fleet_dir=None` runs `dagfleet up` without --fleet in `cwd` (the default fleet)."""
        self.cwd = cwd or fleet_dir or Path.cwd()
        self.fleet_dir = fleet_dir
        base = fleet_dir if fleet_dir is not None else self.cwd / ".dagfleet"
        self.state = base / ".dagfleet" if base.name != ".dagfleet" else base
        self.web_port = free_port()
        self.api_port = free_port()
        self.log_path = self.cwd.parent / f"up-{self.web_port}.log"
        self.env = {**os.environ, **(env or {})}
        self.extra = extra or []
        self.proc: subprocess.Popen[bytes] | None = None
        self.gql = DagsterTestClient(f"http://127.0.0.1:{self.web_port}")
        self.api = f"http://127.0.0.1:{self.api_port}/api/v1"

    def start(self) -> RunningFleet:
        log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        fleet_args = ["--fleet", str(self.fleet_dir)] if self.fleet_dir is not None else []
        self.proc = subprocess.Popen(
            [
                DAGFLEET,
                "up",
                *fleet_args,
                "--port",
                str(self.web_port),
                "--api-port",
                str(self.api_port),
                "-v",
                *self.extra,
            ],
            cwd=self.cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
        )
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_loaded(self, locations: set[str], timeout: float = 240) -> None:
        def loaded() -> bool:
            assert self.proc is not None and self.proc.poll() is None, self.log()[-3000:]
            return locations <= self.gql.loaded_locations()

        wait_for(loaded, timeout, f"locations {sorted(locations)} loaded")

    def status(self, location: str) -> dict[str, Any]:
        path = self.state / "status" / f"{location}.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def pid(self, location: str, timeout: float = 30) -> int:
        """The pid of the location's live code server, once its status names it: the
        webserver shows a location a moment before its status records the server."""
        found: int = wait_for(
            lambda: self.status(location).get("pid"), timeout, f"{location}'s pid in its status"
        )
        return found

    def commit(self, location: str, timeout: float = 30) -> str:
        """The commit the location serves, once its status names it: like the pid, the
        status is written a moment after the webserver shows the location."""
        found: str = wait_for(
            lambda: self.status(location).get("commit"),
            timeout,
            f"{location}'s commit in its status",
        )
        return found

    def condition(self, location: str, type_: str) -> dict[str, Any]:
        for c in self.status(location).get("conditions", []):
            if c["type"] == type_:
                return dict(c)
        return {}

    def wait_serving(self, location: str, sha: str, timeout: float = 60) -> None:
        """Wait until the status records `sha` as live and Synced. The webserver is
        reloaded just before the status is written, so new assets can show in the UI
        a moment before the status names their commit."""

        def serving() -> bool:
            synced = self.condition(location, "Synced").get("status") == "True"
            return synced and self.status(location).get("commit") == sha

        wait_for(serving, timeout, f"{location} serving {sha[:12]}")

    def wait_synced_reason(
        self, location: str, reason: str, timeout: float = 300
    ) -> dict[str, Any]:
        """Wait until the Synced condition has `reason`; that condition."""

        def reached() -> dict[str, Any]:
            synced = self.condition(location, "Synced")
            return synced if synced.get("reason") == reason else {}

        return dict(wait_for(reached, timeout, f"{location} Synced={reason}"))

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout: float = 30) -> float:
        """SIGTERM dagfleet; returns seconds until it and all its children were gone."""
        started = time.monotonic()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        leftovers = (
            wait_for(
                lambda: not dagfleet_processes(self.state) or None,
                5,
                "children to exit",
            )
            if dagfleet_processes(self.state)
            else None
        )
        del leftovers
        self.gql.close()
        return time.monotonic() - started

    def force_cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        for proc in dagfleet_processes(self.state):
            # Not every process leads a group: a forked server's forkserver and runs share
            # the server's (killpg of their own pid is ESRCH).
            with contextlib.suppress(psutil.Error, ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(psutil.Error):
                proc.kill()
