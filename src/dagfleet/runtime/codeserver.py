"""One `dagster api grpc` process per location, handed over without downtime.

Why `dagster api grpc` and not `dagster code-server start`: the latter reloads
code in place but costs a proxy plus a child (~163 MiB per location measured)
and still has to load the new code after we have checked it. Here the check
*is* the new server: it starts from the new commit's checkout and environment
on a private Unix socket, and only once it has loaded its definitions is that
socket hard-linked over the location's stable socket path (an atomic rename).
New connections reach the new server at once; the old one finishes the runs
it is executing and is then shut down. The webserver's workspace names only
the stable path, so no workspace rewrite is needed to publish.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from dagfleet.runtime import grpc
from dagfleet.runtime.processes import Child, output_since_start, spawn
from dagfleet.runtime.spare import SparePool
from dagfleet.runtime.warm import WarmPool
from dagfleet.spec import CodeTarget
from dagfleet.venvs.builder import PythonEnv

LOAD_TIMEOUT = 300.0
_counter = itertools.count()


class LoadFailed(Exception):
    """The new code did not load; `detail` is the user's error (traceback tail)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class LoadCancelled(Exception):
    """dagfleet is stopping: the load was abandoned, nothing is known about the code."""


@dataclass
class Server:
    child: Child
    socket: Path
    sha: str
    env: PythonEnv
    checkout: Path
    debug_port: int | None = None
    started: float = field(default_factory=time.monotonic)

    def alive(self) -> bool:
        return self.child.alive()


def server_args(
    env: PythonEnv,
    target: CodeTarget,
    location: str,
    socket: Path,
    debug_port: int | None,
) -> list[str]:
    """The code server's command line (pure)."""
    args = [str(env.python)]
    if debug_port is not None:
        # debugpy follows subprocesses: the run worker and each step process
        # become debuggable through this one port (issue 6).
        args += ["-m", "debugpy", "--listen", f"127.0.0.1:{debug_port}"]
    args += ["-m", "dagster", "api", "grpc", "--socket", str(socket)]
    args += target.dagster_args()
    args += ["--location-name", location, "--lazy-load-user-code"]
    return args


def warm_target(target: CodeTarget) -> dict[str, str | None]:
    """What a forked server preloads (pure): the target as `dagster api grpc` gets it."""
    return {
        "python_file": target.python_file,
        "module_name": target.module_name,
        "package_name": target.package_name,
        "working_directory": ".",
    }


def fork_socket(socket: Path) -> Path:
    """Where a forked server's forkserver listens for its run workers and steps (pure)."""
    return socket.with_suffix(".fork")


def start(
    *,
    location: str,
    sha: str,
    checkout: Path,
    env: PythonEnv,
    target: CodeTarget,
    run_dir: Path,
    environ: dict[str, str],
    log: Path,
    debug_port: int | None = None,
    spares: SparePool | None = None,
    warm: WarmPool | None = None,
) -> Server:
    run_dir.mkdir(parents=True, exist_ok=True)
    socket = run_dir / f"{location}.{sha[:10]}.{os.getpid()}-{next(_counter)}.sock"
    with contextlib.suppress(FileNotFoundError):
        socket.unlink()
    cwd = checkout / target.working_directory
    name = f"code server {location}@{sha[:10]}"
    args = server_args(env, target, location, socket, debug_port)
    child = None
    if warm is not None and debug_port is None:
        # args[0:3] are `python -m dagster`; the zygote already is that interpreter.
        child = warm.start(
            env, name, args[3:], cwd, environ, log, warm_target(target), fork_socket(socket)
        )
    spare = None
    if spares is not None and child is None and debug_port is None:
        spare = spares.take(env)
    if spare is not None and spares is not None:
        # args[0] is the interpreter; the spare already is one.
        child = spares.assign(spare, name, args[3:], cwd, environ, log)
    if child is None:
        child = spawn(name, args, cwd=cwd, env=environ, log=log)
    return Server(child, socket, sha, env, checkout, debug_port)


def wait_loaded(
    server: Server,
    log: Path,
    timeout: float = LOAD_TIMEOUT,
    cancel: threading.Event | None = None,
) -> None:
    """Block until the server serves its definitions; raise LoadFailed with the error.

    Raises LoadCancelled as soon as `cancel` is set (dagfleet is stopping).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cancel is not None and cancel.is_set():
            raise LoadCancelled(f"stopped while {server.child.name} was loading")
        if not server.alive():
            raise LoadFailed(output_since_start(log, 30) or "the code server exited while starting")
        if server.socket.exists() and grpc.is_serving(server.socket):
            error = grpc.load_error(server.socket)
            if error is not None:
                raise LoadFailed(error)  # callers shorten it, error line first
            return
        time.sleep(0.02)
    raise LoadFailed(f"the code server did not answer within {timeout:.0f}s")


def take_over(server: Server, stable: Path) -> None:
    """Make `stable` reach `server`: hard-link its socket, rename over the stable path."""
    tmp = stable.with_name(f".{stable.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.link(server.socket, tmp)
    os.replace(tmp, stable)


def retire(server: Server, drain_timeout: float = 3600.0, grace: float = 10.0) -> None:
    """Let the old server finish the runs it executes, then stop it and its socket."""
    deadline = time.monotonic() + drain_timeout
    while server.alive() and time.monotonic() < deadline and grpc.active_runs(server.socket):
        time.sleep(1.0)
    server.child.stop(grace)
    remove_sockets(server)


def remove_sockets(server: Server) -> None:
    for path in (server.socket, fork_socket(server.socket)):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
