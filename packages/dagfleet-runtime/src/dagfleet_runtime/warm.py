"""Warm parents: code servers forked from a Python that has already imported Dagster,
and run workers and steps forked from a parent that has already imported the user's code.

This module runs inside a location's environment (`python -m dagfleet_runtime.warm`),
started by dagfleet once per environment (dagfleet.runtime.warm is the other side).
Three kinds of process take part:

- the *zygote* (this module's `main`): imports Dagster, its gRPC server and its
  executors, freezes the heap (`gc.freeze`, so that the collector never writes to
  the pages children share) and waits for requests on stdin, one JSON line each.
  It stays single-threaded, which is what makes `fork` safe. For each request it
  forks a code server and answers its pid; when a code server exits it reports
  the exit status, so dagfleet can tell a crash from a stop.
- the *code server*: a forked zygote that starts a session of its own, takes the
  location's log, working directory and environment, imports the user's module
  (Dagster's own loader, so the server later finds it in `sys.modules`), forks
  its forkserver, then runs `dagster api grpc` with the usual arguments.
- the *forkserver*: Python's own (`multiprocessing.forkserver.main`), forked from
  the code server after the user's code was imported and before any thread was
  started. Dagster's gRPC server starts run workers with the "spawn" start method
  and its multiprocess executor starts each step the same way unless the job
  configures otherwise; both are pointed at this forkserver instead (`_patch`), so
  a run worker or a step costs a fork rather than a new interpreter that imports
  Dagster and the user's code again. Run workers use the same forkserver for
  their steps. Everything stays in the code server's process group.

What is not forked: anything whose parent is not single-threaded when the fork
happens. If importing the user's code starts a thread, no forkserver is started
and runs use Dagster's spawn path as before (the log says so). A job that sets
its executor's `start_method` keeps it. The stdlib forkserver internals used here
are those of CPython 3.9 to 3.13; other versions keep the spawn path.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import os
import selectors
import signal
import socket
import sys
from collections.abc import Callable, Mapping
from typing import Any

# True in a code server once its forkserver runs; inherited by run workers and steps.
_FORKS_READY = False
_FORKSERVER_PID = 0
START_MARKER = "--- dagfleet: starting"


def thread_count() -> int:
    """Threads of this process as the kernel sees them (C extensions' threads included)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        import threading

        return threading.active_count()


def name_process(title: str) -> None:
    """What `ps` and `top` show for this process (Linux's 15-character name): every forked
    process would otherwise show the zygote's own command line."""
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(15, title.encode()[:15], 0, 0, 0)  # PR_SET_NAME


def forkserver_supported() -> bool:
    return (3, 9) <= sys.version_info[:2] <= (3, 13) and sys.platform.startswith("linux")


# ---- the zygote -------------------------------------------------------------------------


# Imported by every run worker and step process when it opens the instance (storage,
# migrations, compute logs) and executes its plan: ~450 modules, about 1.5 s each time
# on 2 busy cores when left to the child. Any of them may be missing in an older Dagster
# or an env without PostgreSQL; those are skipped.
RUN_MODULES = (
    "sqlalchemy",
    "alembic.config",
    "alembic.runtime.migration",
    "alembic.script",
    "upath",
    "dagster._core.execution.api",
    "dagster._core.execution.plan.execute_plan",
    "dagster._core.executor.in_process",
    "dagster._core.instance.factory",
    "dagster._core.instance.runs",
    "dagster._core.launcher",
    "dagster._core.run_coordinator",
    "dagster._core.storage.alembic",
    "dagster._core.storage.event_log.sqlite",
    "dagster._core.storage.local_compute_log_manager",
    "dagster._core.storage.migration.utils",
    "dagster._core.storage.noop_compute_log_manager",
    "dagster._core.storage.root",
    "dagster._core.storage.runs.sqlite",
    "dagster._core.storage.schedules.sqlite",
    "dagster._core.storage.sql",
    "dagster._core.storage.sqlite_storage",
    "dagster._core.system_config.composite_descent",
    "dagster._core.utility_ops",
    "dagster_postgres",
    "dagfleet_runtime.compute_logs",
)


def _warm_imports() -> None:
    """What every code server, run worker and step of this env imports anyway."""
    import importlib

    for name in ("dagster", "dagster._cli", "dagster._grpc.server"):
        importlib.import_module(name)  # these must be there
    for name in RUN_MODULES:
        with contextlib.suppress(Exception):
            importlib.import_module(name)
    _patch()


def _reply(msg: Mapping[str, Any]) -> None:
    os.write(1, (json.dumps(msg) + "\n").encode())


def main() -> int:
    """The zygote's loop: fork a code server per request line, report exits."""
    name_process("dagfleet-warm")
    _warm_imports()
    # One resource tracker (named semaphores of multiprocessing queues) for the env's
    # processes, inherited through the forks, instead of a new interpreter per server.
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()
    threads = thread_count()
    gc.collect()
    gc.freeze()
    _reply({"ready": True, "pid": os.getpid(), "threads": threads})
    if threads != 1:
        # Forking a multi-threaded process can copy a lock held by another thread.
        print(f"dagfleet warm parent: {threads} threads after importing Dagster", file=sys.stderr)

    sig_r, sig_w = os.pipe()
    os.set_blocking(sig_r, False)
    os.set_blocking(sig_w, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(sig_w)
    selector = selectors.DefaultSelector()
    selector.register(0, selectors.EVENT_READ)
    selector.register(sig_r, selectors.EVENT_READ)
    pending = b""
    children: set[int] = set()
    while True:
        for key, _ in selector.select():
            if key.fd == sig_r:
                with contextlib.suppress(BlockingIOError):
                    os.read(sig_r, 512)
                _reap(children)
                continue
            data = os.read(0, 65536)
            if not data:
                # dagfleet closed our stdin: it is stopping. Code servers are its to stop.
                return 0
            pending += data
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                _serve_request(line, threads, children, (sig_r, sig_w, selector))


def _reap(children: set[int]) -> None:
    for pid in list(children):
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            children.discard(pid)
            continue
        if done:
            children.discard(pid)
            _reply({"exit": pid, "code": os.waitstatus_to_exitcode(status)})


def _serve_request(
    line: bytes, threads: int, children: set[int], loop: tuple[int, int, Any]
) -> None:
    try:
        request = json.loads(line)
    except ValueError as exc:
        _reply({"error": f"bad request: {exc}"})
        return
    ident = request.get("id")
    if threads != 1:
        _reply({"id": ident, "error": f"the warm parent has {threads} threads"})
        return
    gc.freeze()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            sig_r, sig_w, selector = loop
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            selector.close()
            os.close(sig_r)
            os.close(sig_w)
            code = _code_server(request)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)
    children.add(pid)
    _reply({"id": ident, "pid": pid})


# ---- the code server --------------------------------------------------------------------


def _redirect(log: str) -> None:
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    sys.stdin = open(0, closefd=False)  # noqa: SIM115 - fd 0 lives as long as the process
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115


def _code_server(request: Mapping[str, Any]) -> int:
    os.setsid()  # its own process group: dagfleet stops server, runs and steps together
    name_process("dagfleet-server")
    _redirect(request["log"])
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    # The path `python -m dagster` would start with: its directory first (Dagster's loader
    # sets that entry aside while importing user code), then PYTHONPATH (read at interpreter
    # start, which for the zygote was long ago), then the env's own entries.
    extra = [p for p in request["env"].get("PYTHONPATH", "").split(os.pathsep) if p]
    sys.path[:] = [os.getcwd(), *extra, *sys.path[1:]]
    gc.enable()
    fork_socket = request.get("fork_socket")
    if fork_socket and forkserver_supported():
        _preload(request.get("target") or {}, request["cwd"])
        threads = thread_count()
        if threads == 1:
            _start_forkserver(fork_socket)
        else:
            print(
                f"dagfleet: the code's import left {threads} threads running: run workers "
                "and steps start as new interpreters (spawn)",
                file=sys.stderr,
            )
    _pace_idle()
    from dagster._cli import main as dagster_main

    sys.argv = ["dagster", *request["args"]]
    return int(dagster_main() or 0)  # type: ignore[no-untyped-call]


def _pace_idle() -> None:
    """An idle server wakes its main thread ten times a second (grpc's wait loop) and its
    run cleanup twice a second; a fleet has one server per location. Once a second and
    every two seconds halve its idle CPU; a termination still ends the wait at once (it
    is an event), and a run worker that died unexpectedly is reported up to 2 s later.
    Module attributes of this grpc and Dagster, left alone when they are not there."""
    import grpc._common as common
    from dagster._grpc import server

    if isinstance(getattr(common, "MAXIMUM_WAIT_TIMEOUT", None), (int, float)):
        common.MAXIMUM_WAIT_TIMEOUT = 1.0
    if isinstance(getattr(server, "CLEANUP_TICK", None), (int, float)):
        server.CLEANUP_TICK = 2.0


def _preload(target: Mapping[str, Any], cwd: str) -> None:
    """Import the user's code the way Dagster's loader will, so that the server finds it
    in `sys.modules` and the forkserver's children inherit it. An error is left for the
    server to report (it imports again and fails the same way)."""
    from dagster._core.code_pointer import load_python_file, load_python_module

    workdir = target.get("working_directory") or cwd
    baseline = set(sys.modules)
    modules = []
    try:
        if target.get("python_file"):
            modules.append(load_python_file(target["python_file"], workdir))
        for name in (target.get("module_name"), target.get("package_name")):
            if name:
                modules.append(load_python_module(name, workdir))
    except BaseException:  # the server reports it, with Dagster's own wording
        for name in [n for n in sys.modules if n not in baseline]:
            sys.modules.pop(name, None)
        modules = []
    for module in modules:
        _resolve(module)
    gc.collect()
    gc.freeze()


def _resolve(module: Any) -> None:
    """Build the module's repositories once (`Definitions.get_repository_def` caches on
    the object), so that the server and every run and step inherit them resolved."""
    try:
        from dagster._core.definitions.reconstruct import repository_def_from_target_def
        from dagster._core.workspace.autodiscovery import loadable_targets_from_loaded_module

        for loadable in loadable_targets_from_loaded_module(module):
            repository_def_from_target_def(loadable.target_definition)
    except Exception:  # the server loads them itself and reports what fails
        pass


def _start_forkserver(path: str) -> None:
    """Fork Python's forkserver from this (single-threaded) process and point this
    process's multiprocessing at it."""
    import multiprocessing.forkserver as fs

    global _FORKS_READY, _FORKSERVER_PID
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    os.chmod(path, 0o600)
    listener.listen()
    alive_r, alive_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(alive_w)
            name_process("dagfleet-runs")  # and so are named the runs and steps it forks
            _FORKS_READY, _FORKSERVER_PID = True, os.getpid()
            # Its children connect to it (main() sets the address they inherit); they
            # must not start a forkserver of their own while this one lives.
            fs._forkserver.ensure_running = _child_ensure_running  # type: ignore[method-assign]
            fs.main(listener.fileno(), alive_r, [], None, None)
        except SystemExit:
            pass
        except BaseException:
            import traceback

            traceback.print_exc()
            code = 1
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)
            os._exit(code)
    listener.close()
    os.close(alive_r)
    server = fs._forkserver
    server._forkserver_address = path  # type: ignore[attr-defined]
    server._forkserver_alive_fd = alive_w  # type: ignore[attr-defined]
    server._forkserver_pid = pid  # type: ignore[attr-defined]
    _FORKS_READY, _FORKSERVER_PID = True, pid


def _child_ensure_running() -> None:
    """In a run worker or step (a child of the forkserver): keep using the forkserver
    that forked us while it lives; if it died, fall back to the stdlib's own."""
    import multiprocessing.forkserver as fs
    from multiprocessing import resource_tracker

    global _FORKS_READY
    resource_tracker.ensure_running()
    if os.getppid() == _FORKSERVER_PID:
        return
    server = fs._forkserver
    server._forkserver_address = None  # type: ignore[attr-defined]
    server._forkserver_alive_fd = None  # type: ignore[attr-defined]
    server._forkserver_pid = None  # type: ignore[attr-defined]
    del server.ensure_running
    _FORKS_READY = False
    server.ensure_running()


# ---- the narrow patches -----------------------------------------------------------------


def _wrap_init(cls: type, adjust: Callable[..., None]) -> None:
    original = cls.__init__  # type: ignore[misc]
    if getattr(original, "_dagfleet_warm", False):
        return

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        adjust(self, original, args, kwargs)

    __init__._dagfleet_warm = True  # type: ignore[attr-defined]
    cls.__init__ = __init__  # type: ignore[misc]


def _patch() -> None:
    """Point Dagster's run workers and default multiprocess steps at the forkserver.

    Both are checked against what this Dagster does (an attribute, a keyword); when
    it does something else the patch does nothing and Dagster's own path is kept.
    """
    import inspect
    import multiprocessing

    from dagster._core.executor.multiprocess import MultiprocessExecutor
    from dagster._grpc.server import DagsterApiServer

    def server_init(self: Any, original: Callable[..., None], args: Any, kwargs: Any) -> None:
        original(self, *args, **kwargs)
        current = getattr(self, "_mp_ctx", None)
        if _FORKS_READY and isinstance(current, multiprocessing.context.SpawnContext):
            self._mp_ctx = multiprocessing.get_context("forkserver")

    signature = inspect.signature(MultiprocessExecutor.__init__)
    params = signature.parameters

    def executor_init(self: Any, original: Callable[..., None], args: Any, kwargs: Any) -> None:
        if _FORKS_READY:
            given = signature.bind_partial(self, *args, **kwargs).arguments
            positional = len(args) >= list(params).index("start_method")
            if given.get("start_method") is None and not positional:  # the job chose none
                kwargs["start_method"] = "forkserver"
                if given.get("explicit_forkserver_preload") is None:
                    kwargs["explicit_forkserver_preload"] = []
        original(self, *args, **kwargs)

    _wrap_init(DagsterApiServer, server_init)
    if "start_method" in params and "explicit_forkserver_preload" in params:
        _wrap_init(MultiprocessExecutor, executor_init)


if __name__ == "__main__":
    sys.exit(main())
