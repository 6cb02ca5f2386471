"""Scenario: a developer attaches a debugger to environment A (seed 000, workflow C),
stops on a breakpoint inside an asset while a run launched from the UI executes,
reads a local variable, continues, and the run succeeds.

The client is a small Debug Adapter Protocol client written here, speaking DAP
over TCP as VS Code does. debugpy reports each process that runs asset code
(the run worker, and each step with the multiprocess executor) with a
`debugpyAttach` event; the client opens a new connection per event and
attaches with the event's body. Such a child waits until its session sends
`configurationDone`, so attaching must happen in the background while the
run is launched.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import queue
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.fleetproc import DAGFLEET, wait_for, write_fleet
from tests.support.gitrepo import TRIVIAL_DEFS, CodeRepo

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BREAK_LINE_TEXT = "    return one + 1"  # in asset `two`, whose argument `one` is 1
BREAK_LINE = TRIVIAL_DEFS.splitlines().index(BREAK_LINE_TEXT) + 1
MULTIPROCESS_DEFS = TRIVIAL_DEFS.replace("in_process_executor", "multiprocess_executor")


class Session:
    """One DAP connection: numbered requests, responses by sequence, events to a queue."""

    def __init__(self, port: int, name: str, events: queue.Queue[tuple[Session, dict[str, Any]]]):
        self.name = name
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.settimeout(None)
        self.seq = itertools.count(1)
        self.lock = threading.Lock()
        self.responses: dict[int, queue.Queue[dict[str, Any]]] = {}
        self.events = events
        self.own_events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.closed = threading.Event()
        self.reader = threading.Thread(target=self._read, name=f"dap-{name}", daemon=True)
        self.reader.start()

    def _read(self) -> None:
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    chunk = self.sock.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                header, buf = buf.split(b"\r\n\r\n", 1)
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in header.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
                while len(buf) < length:
                    chunk = self.sock.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                message = json.loads(buf[:length])
                buf = buf[length:]
                self._dispatch(message)
        except OSError:
            return
        finally:
            self.closed.set()

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "response":
            with self.lock:
                waiter = self.responses.get(message["request_seq"])
            if waiter is not None:
                waiter.put(message)
        elif kind == "event":
            self.own_events.put(message)
            self.events.put((self, message))
        elif kind == "request":  # reverse requests (runInTerminal...): not supported
            self._write(
                {
                    "type": "response",
                    "request_seq": message["seq"],
                    "success": False,
                    "command": message["command"],
                    "message": "not supported by this client",
                }
            )

    def _write(self, message: dict[str, Any]) -> None:
        body = json.dumps(message).encode()
        self.sock.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def send(self, command: str, arguments: dict[str, Any] | None = None) -> int:
        with self.lock:
            seq = next(self.seq)
            self.responses[seq] = queue.Queue()
            self._write(
                {"seq": seq, "type": "request", "command": command, "arguments": arguments or {}}
            )
        return seq

    def response(self, seq: int, timeout: float = 30) -> dict[str, Any]:
        message = self.responses[seq].get(timeout=timeout)
        assert message["success"], f"{self.name}: {message.get('command')}: {message}"
        body: dict[str, Any] = message.get("body") or {}
        return body

    def request(
        self, command: str, arguments: dict[str, Any] | None = None, timeout: float = 30
    ) -> dict[str, Any]:
        return self.response(self.send(command, arguments), timeout)

    def wait_event(self, name: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            event = self.own_events.get(timeout=max(0.01, deadline - time.monotonic()))
            if event["event"] == name:
                return event

    def disconnect(self) -> None:
        """Ask, wait for the answer, then close (closing mid-request kills the adapter)."""
        if not self.closed.is_set():
            with contextlib.suppress(Exception):
                self.request("disconnect", {"terminateDebuggee": False}, timeout=15)
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


class Debugger:
    """A VS Code stand-in: attaches to the root process and every child debugpy reports."""

    def __init__(self, port: int, breakpoints: dict[str, list[int]]) -> None:
        self.port = port
        self.breakpoints = breakpoints
        self.events: queue.Queue[tuple[Session, dict[str, Any]]] = queue.Queue()
        self.sessions: list[Session] = []
        self.stopped: queue.Queue[tuple[Session, dict[str, Any]]] = queue.Queue()
        self.verified: list[dict[str, Any]] = []
        self.children: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._pump = threading.Thread(target=self._run, name="dap-events", daemon=True)

    def attach(self, config: dict[str, Any], name: str) -> Session:
        session = Session(self.port, name, self.events)
        self.sessions.append(session)
        session.request(
            "initialize",
            {
                "clientID": "dagfleet-test",
                "adapterID": "debugpy",
                "pathFormat": "path",
                "linesStartAt1": True,
                "columnsStartAt1": True,
                "supportsRunInTerminalRequest": False,
            },
        )
        # debugpy answers `attach` only after configurationDone; `initialized` comes first.
        attach_seq = session.send("attach", config)
        session.wait_event("initialized")
        for path, lines in self.breakpoints.items():
            body = session.request(
                "setBreakpoints",
                {"source": {"path": path}, "breakpoints": [{"line": n} for n in lines]},
            )
            self.verified.extend(body.get("breakpoints", []))
        session.request("configurationDone")
        session.response(attach_seq)
        return session

    def start(self) -> None:
        self.attach(
            {"name": "root", "justMyCode": False, "subProcess": True, "redirectOutput": False},
            "root",
        )
        self._pump.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                session, event = self.events.get(timeout=0.2)
            except queue.Empty:
                continue
            if event["event"] == "debugpyAttach":
                config = dict(event["body"])
                self.children.append(config)
                # Attach from a thread: a child's own children must not wait for this one.
                threading.Thread(target=self._attach_child, args=(config,), daemon=True).start()
            elif event["event"] == "stopped":
                self.stopped.put((session, event))

    def _attach_child(self, config: dict[str, Any]) -> None:
        try:
            self.attach(config, f"child-{config.get('subProcessId', '?')}")
        except Exception as exc:  # reported by the test, not lost in a thread
            self.errors.append(repr(exc))

    def close(self) -> None:
        self._stop.set()
        # Children first, the root last.
        for session in reversed(self.sessions):
            session.disconnect()


def debug_fleet(tmp_path: Path, repo: CodeRepo) -> Path:
    return write_fleet(
        tmp_path / "fleet",
        {"demo": {"git_url": repo.url, "module_name": "demo.definitions", "poll_interval": 1}},
        environments=[{"name": "A", "branch": "A", "debug": True}],
    )


def stop_in_asset(fleet: Any, tmp_path: Path) -> None:
    # What a developer runs first: the port and the VS Code configuration.
    shown = subprocess.run(
        [DAGFLEET, "debug", "demo-A", "--fleet", str(fleet.fleet_dir), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    doc = json.loads(shown.stdout)
    port = doc["port"]
    assert port == fleet.status("demo-A")["debug_port"] and port >= 5678, doc
    config = doc["launch_json"]["configurations"][0]
    assert config["connect"] == {"host": "127.0.0.1", "port": port}
    assert config["subProcess"] is True and config["justMyCode"] is False
    remote_root = config["pathMappings"][0]["remoteRoot"]
    assert remote_root == str(fleet.state / "checkouts" / "demo-A" / "current")
    assert doc["kubernetes"]["command"] == (
        "kubectl port-forward -n test-a deployment/demo-a 5678:5678"
    )
    # VS Code maps ${workspaceFolder}/demo/definitions.py through pathMappings to this
    # path under the `current` link; the code server itself runs from the commit
    # directory the link points to, and debugpy matches the breakpoint all the same.
    source = f"{remote_root}/demo/definitions.py"
    print(f"debug port {port}; breakpoint {source}:{BREAK_LINE}")

    debugger = Debugger(port, {source: [BREAK_LINE]})
    try:
        debugger.start()
        started = time.monotonic()
        run_id = fleet.gql.launch("demo-A", "trivial_job")
        print(f"launchRun under debugpy took {time.monotonic() - started:.2f}s")
        try:
            session, event = debugger.stopped.get(timeout=120)
        except queue.Empty:
            raise AssertionError(
                f"no stop; children {debugger.children}; verified {debugger.verified}; "
                f"errors {debugger.errors}; run {fleet.gql.run_status(run_id)}"
            ) from None
        print(f"stopped {time.monotonic() - started:.2f}s after launch in {session.name}")
        assert event["body"]["reason"] == "breakpoint", event
        thread_id = event["body"]["threadId"]
        frames = session.request("stackTrace", {"threadId": thread_id, "levels": 5})
        top = frames["stackFrames"][0]
        assert top["line"] == BREAK_LINE, top
        assert top["name"] == "two", top
        print(f"top frame {top['name']} at {top['source'].get('path')}:{top['line']}")
        scopes = session.request("scopes", {"frameId": top["id"]})["scopes"]
        local = next(s for s in scopes if s["name"].lower().startswith("local"))
        variables = session.request(
            "variables", {"variablesReference": local["variablesReference"]}
        )["variables"]
        values = {v["name"]: v["value"] for v in variables}
        assert values.get("one") == "1", values
        session.request("continue", {"threadId": thread_id})
        assert fleet.gql.wait_run(run_id) == "SUCCESS"
        # A child that exits while its session is being set up (a step process that
        # finished, a multiprocessing helper) is reported by the adapter as disconnected.
        print(f"{len(debugger.children)} child processes attached; errors: {debugger.errors}")
        assert [e for e in debugger.errors if "disconnected unexpectedly" not in e] == []
    finally:
        debugger.close()
    # The adapter survived the clean disconnect: the port still answers.
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass


def test_breakpoint_in_asset_with_in_process_executor(
    tmp_path: Path, code_repo: CodeRepo, start_fleet
) -> None:
    fleet = start_fleet(debug_fleet(tmp_path, code_repo), extra=["--no-daemon"])
    fleet.wait_loaded({"demo-A"})
    wait_for(lambda: fleet.status("demo-A").get("debug_port"), 30, "a debug port in the status")
    stop_in_asset(fleet, tmp_path)
    # Without a client attached, runs are not held.
    started = time.monotonic()
    run_id = fleet.gql.launch("demo-A", "trivial_job")
    launched = time.monotonic()
    assert fleet.gql.wait_run(run_id) == "SUCCESS"
    print(
        f"without a client: launchRun {launched - started:.2f}s, "
        f"run done {time.monotonic() - started:.2f}s"
    )


@pytest.mark.skipif(os.environ.get("DAGFLEET_SKIP_MULTIPROCESS") == "1", reason="opt-out")
def test_breakpoint_in_asset_with_multiprocess_executor(
    tmp_path: Path, code_repo: CodeRepo, start_fleet
) -> None:
    code_repo.commit({"demo/definitions.py": MULTIPROCESS_DEFS}, "multiprocess executor")
    code_repo.push("A")
    fleet = start_fleet(debug_fleet(tmp_path, code_repo), extra=["--no-daemon"])
    fleet.wait_loaded({"demo-A"})
    wait_for(lambda: fleet.status("demo-A").get("debug_port"), 30, "a debug port in the status")
    stop_in_asset(fleet, tmp_path)
