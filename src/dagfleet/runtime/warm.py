"""Warm parents, dagfleet's side: one zygote per Python env, code servers forked from it.

A code server started the cold way is a new interpreter that imports Dagster
(about a second and ~96 MiB of private memory) before it reads a line of user
code, and each of its runs and steps pays that again. With warm forks
(fleet.yaml `instance.warm_forks`, on by default) dagfleet starts one *zygote*
per env: `python -m dagfleet_runtime.warm` in that env, which imports Dagster once
and forks a code server per request. The forked server shares the zygote's pages
(copy-on-write), imports the user's code, forks its own forkserver for run workers
and steps, and runs `dagster api grpc` as before (dagfleet_runtime.warm has that
side and the reasons).

The zygote talks JSON lines: requests on its stdin, answers on its stdout, read by
one thread per zygote here. A forked server is not dagfleet's child but the
zygote's, so `ForkedProcess` stands in for `subprocess.Popen`: the zygote reports
each server's exit status, and if the zygote itself is gone the process is looked
at directly. Debug servers (debugpy must wrap the interpreter) and envs whose
zygote failed or reported threads start cold.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from dagfleet.runtime.processes import START_MARKER, Child, PidRegistry
from dagfleet.runtime.spare import spare_environ
from dagfleet.venvs.builder import PythonEnv

log = logging.getLogger(__name__)

READY_TIMEOUT = 120.0
FORK_TIMEOUT = 30.0


class ForkedProcess:
    """The part of `subprocess.Popen` dagfleet uses, for a process the zygote forked."""

    def __init__(self, pid: int, parent: Zygote) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._parent = parent
        self._done = threading.Event()
        self._created: float | None = None
        with contextlib.suppress(psutil.Error):
            self._created = psutil.Process(pid).create_time()

    def exited(self, code: int) -> None:
        self.returncode = code
        self._done.set()

    def _gone(self) -> bool:
        """Without its zygote (which reaps it), look at the process itself."""
        try:
            proc = psutil.Process(self.pid)
            if self._created is not None and proc.create_time() != self._created:
                return True  # the pid was reused
            return proc.status() == psutil.STATUS_ZOMBIE
        except psutil.Error:
            return True

    def poll(self) -> int | None:
        if self._done.is_set():
            return self.returncode
        if not self._parent.alive() and self._gone():
            self.exited(-1)  # exit status unknown: the zygote that would reap it is gone
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout or 0.0)
            self._done.wait(0.2 if left is None else min(0.2, left))
        assert self.returncode is not None
        return self.returncode


class Zygote:
    """One `python -m dagfleet_runtime.warm` process for one env."""

    def __init__(self, env: PythonEnv, log_path: Path, environ: dict[str, str]) -> None:
        self.env = env
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as out:
            self.proc = subprocess.Popen(
                [str(env.python), "-m", "dagfleet_runtime.warm"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=out,
                start_new_session=True,
                env=environ,
                cwd=env.path,  # never dagfleet's directory: `-m` puts the start dir on sys.path
            )
        self.ready = threading.Event()
        self.usable = False
        self.was_usable = False  # ever ready with one thread: worth starting again if it dies
        self._write = threading.Lock()
        self._ids = itertools.count()
        self._waiting: dict[int, tuple[threading.Event, dict[str, Any]]] = {}
        self._children: dict[int, ForkedProcess] = {}
        self._early_exits: dict[int, int] = {}
        self._lock = threading.Lock()
        threading.Thread(target=self._read, name=f"zygote-{env.hash[:8]}", daemon=True).start()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            try:
                msg = json.loads(raw)
            except ValueError:
                continue
            if msg.get("ready"):
                self.usable = msg.get("threads") == 1
                self.was_usable = self.usable
                if not self.usable:
                    log.warning(
                        "the warm parent of env %s has %s threads: its code servers start cold",
                        self.env.hash[:12],
                        msg.get("threads"),
                    )
                self.ready.set()
            elif "exit" in msg:
                with self._lock:
                    child = self._children.pop(msg["exit"], None)
                    if child is None:  # exited before its fork answer was handled
                        self._early_exits[msg["exit"]] = msg["code"]
                if child is not None:
                    child.exited(msg["code"])
            elif "id" in msg:
                with self._lock:
                    waiter = self._waiting.pop(msg["id"], None)
                if waiter is not None:
                    waiter[1].update(msg)
                    waiter[0].set()
        # EOF: the zygote is gone; whoever waits for it learns now.
        self.usable = False
        self.ready.set()
        with self._lock:
            waiting, self._waiting = list(self._waiting.values()), {}
        for event, _ in waiting:
            event.set()

    def fork(self, request: dict[str, Any]) -> ForkedProcess | None:
        """Ask for a code server; None if the zygote cannot (the caller starts cold)."""
        if not self.ready.wait(READY_TIMEOUT) or not self.usable or not self.alive():
            return None
        ident = next(self._ids)
        done = threading.Event()
        answer: dict[str, Any] = {}
        with self._lock:
            self._waiting[ident] = (done, answer)
        line = json.dumps({**request, "id": ident}).encode() + b"\n"
        assert self.proc.stdin is not None
        try:
            with self._write:
                self.proc.stdin.write(line)
                self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            with self._lock:
                self._waiting.pop(ident, None)
            return None
        if not done.wait(FORK_TIMEOUT) or "pid" not in answer:
            if answer.get("error"):
                log.warning("the warm parent refused a fork: %s", answer["error"])
            return None
        child = ForkedProcess(int(answer["pid"]), self)
        with self._lock:
            code = self._early_exits.pop(child.pid, None)
            if code is None:
                self._children[child.pid] = child
        if code is not None:
            child.exited(code)
        return child

    def close(self, grace: float = 5.0) -> None:
        with contextlib.suppress(OSError, ValueError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()  # EOF: the zygote exits by itself
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(grace)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


class WarmPool:
    """A zygote per env, started on first use and kept until dagfleet stops."""

    def __init__(self, pids: PidRegistry, log_dir: Path, marker: str) -> None:
        self.pids = pids
        self.log_dir = log_dir
        self.marker = marker
        self._zygotes: dict[str, Zygote] = {}
        self._lock = threading.Lock()
        self._closed = False

    def _zygote(self, env: PythonEnv) -> Zygote | None:
        with self._lock:
            if self._closed:
                return None
            current = self._zygotes.get(env.hash)
            if current is not None and current.alive():
                return current
            if current is not None and not current.was_usable:
                return None  # it never got ready (e.g. no dagfleet_runtime in the env): cold
            zygote = Zygote(env, self.log_dir / "warm-parents.log", spare_environ(self.marker))
            self._zygotes[env.hash] = zygote
            self.pids.add(zygote.proc.pid)
            return zygote

    def start(
        self,
        env: PythonEnv,
        name: str,
        args: list[str],
        cwd: Path,
        environ: dict[str, str],
        log_path: Path,
        target: dict[str, str | None],
        fork_socket: Path,
    ) -> Child | None:
        """A code server forked from `env`'s zygote; None when it cannot be had."""
        zygote = self._zygote(env)
        if zygote is None:
            return None
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as fh:
            fh.write(f"\n{START_MARKER} {name} (forked): {' '.join(args)}\n".encode())
        forked = zygote.fork(
            {
                "args": args,
                "cwd": str(cwd),
                "env": environ,
                "log": str(log_path),
                "target": target,
                "fork_socket": str(fork_socket),
            }
        )
        if forked is None:
            return None
        return Child(name, forked)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            zygotes, self._zygotes = list(self._zygotes.values()), {}
        for zygote in zygotes:
            zygote.close()
            self.pids.discard(zygote.proc.pid)
