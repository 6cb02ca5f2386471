"""Warm spare code servers: a Python that has already imported Dagster, waiting for a job.

Starting `dagster api grpc` spends about a second importing Dagster before it
reads a line of user code. A publish cannot start earlier than the push, but it
can skip that second: for each environment in use, dagfleet keeps one spare
process that has imported Dagster's CLI and gRPC server and blocks on its stdin.
A publish hands it the command line, working directory, environment and log
file as one JSON line; the spare redirects its output, replaces its
environment and runs the same `dagster api grpc` entry point. Spares are never
used for debug environments (debugpy must wrap the process from the start).
Set DAGFLEET_WARM_SPARES=0 to turn them off (they cost one idle process per env).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import threading
from pathlib import Path

from dagfleet.runtime.processes import START_MARKER, Child, PidRegistry
from dagfleet.venvs.builder import PythonEnv

log = logging.getLogger(__name__)

BOOT = """
import json, os, sys
import dagster
import dagster._grpc.server
from dagster._cli import main as dagster_main
line = sys.stdin.readline()
if not line:
    sys.exit(0)
cmd = json.loads(line)
fd = os.open(cmd["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
os.dup2(fd, 1)
os.dup2(fd, 2)
os.close(fd)
devnull = os.open(os.devnull, os.O_RDONLY)
os.dup2(devnull, 0)
os.close(devnull)
os.chdir(cmd["cwd"])
os.environ.clear()
os.environ.update(cmd["env"])
# PYTHONPATH is read at interpreter start, which for a spare was long ago. Its entries go
# after sys.path[0]: Dagster's loader sets that first entry aside while importing user code.
for entry in reversed([p for p in cmd["env"].get("PYTHONPATH", "").split(os.pathsep) if p]):
    sys.path.insert(1, entry)
sys.argv = ["dagster", *cmd["args"]]
sys.exit(dagster_main())
"""


def enabled() -> bool:
    return os.environ.get("DAGFLEET_WARM_SPARES", "1") != "0"


def spare_environ(marker: str) -> dict[str, str]:
    # The spare's initial environment stays visible in /proc/<pid>/environ after it
    # takes a job, so it starts with the allowlist only: never dagfleet's secrets.
    from dagfleet.runtime.environ import PASSTHROUGH

    env = {k: os.environ[k] for k in PASSTHROUGH if k in os.environ}
    env.update({"DAGFLEET_STATE": marker, "PYTHONUNBUFFERED": "1"})
    return env


class SparePool:
    """At most one idle spare per Python environment."""

    def __init__(self, pids: PidRegistry, log_dir: Path, marker: str) -> None:
        self.pids = pids
        self.log_dir = log_dir
        self.marker = marker
        self._spares: dict[str, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()
        self._closed = False
        # While the fleet starts, spares would compete for the CPU with the servers
        # that are starting for real: remember the envs and start spares afterwards.
        self._held: dict[str, PythonEnv] | None = {}

    def release(self) -> None:
        """Start-up is over: start the spares asked for meanwhile, and any later at once."""
        with self._lock:
            held, self._held = self._held or {}, None
        for env in held.values():
            self.replenish(env)

    def take(self, env: PythonEnv) -> subprocess.Popen[bytes] | None:
        with self._lock:
            proc = self._spares.pop(env.hash, None)
        if proc is None or proc.poll() is not None:
            return None
        return proc

    def assign(
        self,
        proc: subprocess.Popen[bytes],
        name: str,
        args: list[str],
        cwd: Path,
        environ: dict[str, str],
        log_path: Path,
    ) -> Child | None:
        """Give the spare its job; None if it died meanwhile (the caller starts cold)."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as fh:
            fh.write(f"\n{START_MARKER} {name} (warm): {' '.join(args)}\n".encode())
        line = json.dumps(
            {"args": args, "cwd": str(cwd), "env": environ, "log": str(log_path)}
        ).encode()
        assert proc.stdin is not None
        try:
            proc.stdin.write(line + b"\n")
            proc.stdin.close()
        except (BrokenPipeError, OSError):
            self.pids.discard(proc.pid)
            return None
        return Child(name, proc)

    def replenish(self, env: PythonEnv) -> None:
        """Start a spare for `env` in the background if there is none."""
        if not enabled() or self._closed:
            return
        with self._lock:
            if self._held is not None:
                self._held[env.hash] = env
                return
            current = self._spares.get(env.hash)
            if current is not None and current.poll() is None:
                return
            self.log_dir.mkdir(parents=True, exist_ok=True)
            with open(self.log_dir / "spares.log", "ab") as out:
                proc = subprocess.Popen(
                    [str(env.python), "-c", BOOT],
                    stdin=subprocess.PIPE,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    env=spare_environ(self.marker),
                )
            self._spares[env.hash] = proc
            self.pids.add(proc.pid)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            spares, self._spares = list(self._spares.values()), {}
        for proc in spares:
            with contextlib.suppress(OSError):
                if proc.stdin is not None:
                    proc.stdin.close()  # EOF: the spare exits by itself
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
            self.pids.discard(proc.pid)
