"""Fault and bad-input probe (issue 16): start a real fleet, try each fault or hostile
input against it, and print one JSON object saying which held.

    uv run --frozen python bench/fault_probe.py [--only NAME,NAME] [--fuzz-cases 300]

Prints {"tried": N, "held": N, "broke": N, "cases": [{"name", "held", "detail"}]}
and exits 0 even when cases break: it is a measurement, re-run after fixes to
record the figures. Progress goes to stderr. About 5-10 minutes on 2 cores.

The fleet: the demo repo (tests/support/gitrepo.py, a local file:// remote) in
environments A (with a playground) and B, polling every second, with the daemon,
an admin and a viewer token, a webhook secret, and a secret planted through an
`environment` entry `from_env`. Cases, each a function with one pass condition:

- kill -9 of a code server, the webserver, the daemon: each comes back, the
  location serves again;
- the remote gone and back: sync fails cleanly (GitFetchFailed) while the last
  good commit keeps serving, and recovers; the failure message names the mirror;
- 50 parallel registrations through the API: each lands or is refused cleanly,
  every registry file is valid YAML naming its repo;
- hostile names, git URLs, refs and paths (API: 4xx; `repo add`: exit 2),
  nothing written;
- playground and log path traversal refused; bad webhook signatures refused;
  a viewer token cannot change anything; the planted secret never appears in
  logs, API responses or `render compose` output;
- schemathesis against a real API server: no 5xx;
- the issue's seven items: ETag via HEAD and an empty If-Match refused;
  duplicate keys refused; deep nesting and a 10 MB file exit 2; webhook replay a no-op; status
  Progressing while a slow commit loads; kill -9 of `dagfleet up` leaves no
  process and status shows nothing Ready; the render tests' schema location.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml
from _fleet import (
    WEBHOOK_SECRET,
    CodeRepo,
    RunningFleet,
    dagfleet_processes,
    wait_for,
    write_fleet,
)
from _probe_offline import (
    deep_nesting,
    duplicate_keys,
    render_schema_location,
    schemathesis_cases,
    size_limit,
)
from _probe_summary import CaseResult, run_case, summarize

from tests.support.fleetproc import DAGFLEET
from tests.support.gitrepo import TRIVIAL_DEFS

ADMIN = "probe-admin-token"
VIEWER = "probe-viewer-token"
SECRET_SOURCE = "DAGFLEET_PROBE_SECRET_SOURCE"  # dagfleet's variable the repo file references


def log(message: str) -> None:
    print(f"[probe {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def oneline(text: str, limit: int = 200) -> str:
    return " ".join(text.split())[-limit:]


@dataclass
class Probe:
    """The running fleet and what the cases share."""

    base: Path
    repo: CodeRepo
    fleet_dir: Path
    fleet: RunningFleet
    secret: str
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def state(self) -> Path:
        return self.fleet.state

    def http(self, token: str | None = ADMIN) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.fleet.api, headers=headers, timeout=30)

    def repo_files(self) -> dict[str, float]:
        return {p.name: p.stat().st_mtime for p in (self.fleet_dir / "repos").iterdir()}

    def child(self, marker: str) -> psutil.Process | None:
        """The `up` process's direct child whose command line has `marker`."""
        assert self.fleet.proc is not None
        for proc in dagfleet_processes(self.state):
            with contextlib.suppress(psutil.Error):
                if proc.ppid() == self.fleet.proc.pid and marker in " ".join(proc.cmdline()):
                    return proc
        return None

    def serving(self, location: str = "demo-A") -> bool:
        return location in self.fleet.gql.loaded_locations()


def signed(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def push_body(p: Probe, branch: str = "A") -> bytes:
    return json.dumps(
        {"ref": f"refs/heads/{branch}", "repository": {"clone_url": p.repo.url}}
    ).encode()


# --- processes -------------------------------------------------------------------------


def kill9_code_server(p: Probe) -> CaseResult:
    pid = p.fleet.pid("demo-A")
    os.kill(pid, signal.SIGKILL)
    start = time.monotonic()
    wait_for(
        lambda: (
            p.fleet.status("demo-A").get("pid") not in (None, pid)
            and p.fleet.condition("demo-A", "Ready").get("status") == "True"
            and p.serving()
        ),
        90,
        "a new code server for demo-A",
    )
    return CaseResult(
        "kill9_code_server",
        True,
        f"pid {pid} killed; demo-A served again after "
        f"{time.monotonic() - start:.1f}s by pid {p.fleet.status('demo-A').get('pid')}",
    )


def _kill9_child(p: Probe, name: str, marker: str, check: Callable[[], bool]) -> CaseResult:
    proc = p.child(marker)
    if proc is None:
        return CaseResult(name, False, f"no child of dagfleet up running {marker}")
    old = proc.pid
    proc.kill()
    start = time.monotonic()

    def back() -> bool:
        new = p.child(marker)
        return new is not None and new.pid != old and check()

    wait_for(back, 120, f"a new {marker} serving demo-A")
    new = p.child(marker)
    return CaseResult(
        name,
        True,
        f"pid {old} killed; {marker} back as pid {new.pid if new else '?'} "
        f"in {time.monotonic() - start:.1f}s, demo-A served",
    )


def kill9_webserver(p: Probe) -> CaseResult:
    return _kill9_child(p, "kill9_webserver", "dagster_webserver", p.serving)


def kill9_daemon(p: Probe) -> CaseResult:
    def steady() -> bool:  # alive for a few seconds, and the location still serves
        proc = p.child("dagster-daemon")
        return proc is not None and time.time() - proc.create_time() > 3 and p.serving()

    return _kill9_child(p, "kill9_daemon", "dagster-daemon", steady)


# --- git -----------------------------------------------------------------------------------


def remote_gone_and_back(p: Probe) -> CaseResult:
    moved = p.repo.remote.with_name("moved-away.git")
    p.repo.remote.rename(moved)
    try:
        failed = p.fleet.wait_synced_reason("demo-A", "GitFetchFailed", 90)
        p.notes["fetch_error"] = str(failed.get("message", ""))
        ready = p.fleet.condition("demo-A", "Ready").get("status") == "True"
        still = p.serving()
    finally:
        moved.rename(p.repo.remote)
    wait_for(lambda: p.fleet.condition("demo-A", "Synced").get("status") == "True", 90, "recovery")
    held = ready and still
    return CaseResult(
        "remote_gone_and_back",
        held,
        f"while gone: GitFetchFailed, Ready={ready}, serving={still}; recovered to Synced",
    )


def fetch_error_names_mirror(p: Probe) -> CaseResult:
    """The fetch failure seen while the remote was gone names the mirror's path (it
    read `git --git-dir fetch --prune ...`, the path missing)."""
    message = p.notes.get("fetch_error")
    if message is None:
        return CaseResult("fetch_error_names_mirror", False, "no fetch failure was seen")
    mirrors = str(p.state / "git")
    dangling = re.search(r"--git-dir(\s+-|\s+fetch|\s*$)", message) is not None
    named = mirrors in message and not dangling
    return CaseResult(
        "fetch_error_names_mirror",
        named,
        f"names a mirror under {mirrors}: {mirrors in message}; --git-dir without a path: "
        f"{dangling}; message: {' '.join(message.split())[:300]!r}",
    )


# --- registry -----------------------------------------------------------------------------


def parallel_registrations(p: Probe) -> CaseResult:
    names = [f"par{i:02d}" for i in range(50)]
    codes: dict[str, int | str] = {}

    def register(name: str) -> None:
        body = {
            "name": name,
            "git_url": f"https://git.example.com/{name}.git",
            "suspend": True,
        }
        try:
            with p.http() as c:
                codes[name] = c.post("/repos", json=body).status_code
        except httpx.HTTPError as exc:
            codes[name] = type(exc).__name__

    threads = [threading.Thread(target=register, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    bad_files: list[str] = []
    for path in sorted((p.fleet_dir / "repos").glob("*.yaml")):
        try:
            doc = yaml.safe_load(path.read_text())
            if not isinstance(doc, dict) or doc.get("name") != path.stem:
                bad_files.append(path.name)
        except yaml.YAMLError:
            bad_files.append(path.name)
    landed = [n for n, c in codes.items() if c == 201]
    unclean = {
        n: c for n, c in codes.items() if not (c == 201 or (isinstance(c, int) and 400 <= c < 500))
    }
    missing = [n for n in landed if not (p.fleet_dir / "repos" / f"{n}.yaml").exists()]
    with p.http() as c:
        listed = {r["name"] for r in c.get("/repos").json()}
    unlisted = [n for n in landed if n not in listed]
    with p.http() as c:  # clean up: the later cases see only demo
        for n in landed:
            c.delete(f"/repos/{n}")
    held = len(codes) == 50 and not unclean and not bad_files and not missing and not unlisted
    return CaseResult(
        "parallel_registrations_50",
        held,
        f"{len(landed)} landed, {len(codes) - len(landed) - len(unclean)} refused cleanly, "
        f"unclean {unclean}, invalid files {bad_files}, landed without a file {missing}, "
        f"not listed {unlisted}",
    )


HOSTILE_BODIES: list[tuple[str, dict[str, Any]]] = [
    ("name ../escape", {"name": "../escape"}),
    ("name a/b", {"name": "a/b"}),
    ("name -rf", {"name": "-rf"}),
    ("name 300 chars", {"name": "n" * 300}),
    ("name NUL", {"name": "bad\u0000name"}),
    ("url ext::", {"git_url": "ext::sh -c touch% {canary}"}),
    ("url --upload-pack", {"git_url": "--upload-pack=touch {canary}"}),
    ("url -oProxyCommand", {"git_url": "ssh://-oProxyCommand=touch%20{canary}/x"}),
    ("url empty", {"git_url": ""}),
    ("url newline", {"git_url": "https://git.example.com/x.git\n[core]"}),
    ("ref a..b", {"branch": "a..b"}),
    ("ref -x", {"branch": "--upload-pack=x"}),
    ("ref space", {"branch": "a b"}),
    ("ref refs/../x", {"branch": "refs/../x"}),
    ("path ../../etc/passwd", {"python_file": "../../etc/passwd"}),
    ("path /etc", {"working_directory": "/etc"}),
    ("secret from_file ..", {"environment": [{"name": "K", "from_file": "../../k"}]}),
    ("module os;rm", {"module_name": "os; rm -rf /"}),
]

HOSTILE_CLI: list[tuple[str, list[str]]] = [
    ("name ../escape", ["../escape", "--git-url", "https://git.example.com/x.git"]),
    ("url ext::", ["hostile1", "--git-url", "ext::sh -c touch% {canary}"]),
    ("url --upload-pack", ["hostile2", "--git-url", "--upload-pack=touch {canary}"]),
    ("ref a..b", ["hostile3", "--git-url", "https://git.example.com/x.git", "--branch", "a..b"]),
    (
        "path ../..",
        [
            "hostile4",
            "--git-url",
            "https://git.example.com/x.git",
            "--python-file",
            "../../etc/passwd",
        ],
    ),
    (
        "secret-file ..",
        ["hostile5", "--git-url", "https://git.example.com/x.git", "--secret-file", "K=../k"],
    ),
]


def hostile_repo_add(p: Probe) -> CaseResult:
    canary = p.base / "canary-hostile"
    before = p.repo_files()
    wrong: list[str] = []
    with p.http() as c:
        for what, fields in HOSTILE_BODIES:
            body = {"name": "hostile", "git_url": "https://git.example.com/x.git"}
            body.update(json.loads(json.dumps(fields).replace("{canary}", str(canary))))
            r = c.post("/repos", json=body)
            if not 400 <= r.status_code < 500:
                wrong.append(f"API {what}: {r.status_code}")
                with contextlib.suppress(Exception):
                    c.delete(f"/repos/{body['name']}")
    env = {**os.environ, "DAGFLEET_API_TOKEN": ADMIN}
    for what, args in HOSTILE_CLI:
        args = [a.replace("{canary}", str(canary)) for a in args]
        done = subprocess.run(
            [
                DAGFLEET,
                "repo",
                "add",
                *args,
                "--fleet",
                str(p.fleet_dir),
                "--api",
                p.fleet.api.removesuffix("/api/v1"),
                "--timeout",
                "5",
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
            env=env,
        )
        if done.returncode != 2:
            wrong.append(f"CLI {what}: exit {done.returncode} {oneline(done.stderr, 120)!r}")
    time.sleep(2)  # a fetch started by an accepted URL would have run by now
    after = p.repo_files()
    written = sorted(set(after.items()) - set(before.items()))
    if canary.exists():
        wrong.append("the canary file was created: a hostile URL ran a command")
    held = not wrong and not written
    return CaseResult(
        "hostile_repo_add",
        held,
        f"{len(HOSTILE_BODIES)} API bodies, {len(HOSTILE_CLI)} CLI calls; "
        f"not refused: {wrong}; files written: {written}",
    )


# --- traversal, webhooks, tokens ---------------------------------------------------------


TRAVERSAL_GETS = [
    "/playground/A/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/playground/A/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "/playground/A/%2Fetc%2Fpasswd",
    "/playground/..%2F..%2Fetc/passwd",
    "/logs?source=../../../../etc/passwd",
    "/logs?source=/etc/passwd",
    "/logs?source=..%2F..%2Ffleet.yaml",
    "/repos/demo/logs?env=../../../etc",
    "/repos/..%2F..%2Fetc/logs",
]


def path_traversal(p: Probe) -> CaseResult:
    outside = p.base / "escaped.py"
    wrong: list[str] = []
    with p.http() as c:
        for path in TRAVERSAL_GETS:
            r = c.get(path)
            if not 400 <= r.status_code < 500 or "root:" in r.text:
                wrong.append(f"GET {path}: {r.status_code}")
        escape = "..%2F" * 8 + str(outside).lstrip("/").replace("/", "%2F")
        for path in [
            f"/playground/A/{escape}",
            "/playground/A/%2e%2e/%2e%2e/escaped.py",
            f"/playground/A/%2F{str(outside).lstrip('/').replace('/', '%2F')}",
        ]:
            r = c.put(path, content=b"print('escaped')\n", headers={"Content-Type": "text/plain"})
            if not 400 <= r.status_code < 500:
                wrong.append(f"PUT {path}: {r.status_code}")
            r = c.delete(path)
            if not 400 <= r.status_code < 500:
                wrong.append(f"DELETE {path}: {r.status_code}")
    if outside.exists() or (p.fleet_dir.parent / "escaped.py").exists():
        wrong.append("a file was written outside the playground")
    return CaseResult(
        "playground_and_log_traversal",
        not wrong,
        f"{len(TRAVERSAL_GETS)} GETs, 6 PUT/DELETE; not refused: {wrong}",
    )


def webhook_signatures(p: Probe) -> CaseResult:
    body = push_body(p)
    other = push_body(p, "B")
    tries: list[tuple[str, dict[str, str], bytes]] = [
        ("unsigned", {"X-GitHub-Event": "push"}, body),
        (
            "wrong secret",
            {"X-GitHub-Event": "push", "X-Hub-Signature-256": signed(body, "nope")},
            body,
        ),
        (
            "other body's signature",
            {"X-GitHub-Event": "push", "X-Hub-Signature-256": signed(other)},
            body,
        ),
        ("empty signature", {"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256="}, body),
        ("gitea wrong", {"X-Gitea-Event": "push", "X-Gitea-Signature": "0" * 64}, body),
        ("gitlab wrong token", {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "nope"}, body),
        (
            "good github plus bad gitlab",
            {
                "X-GitHub-Event": "push",
                "X-Hub-Signature-256": signed(body),
                "X-Gitlab-Token": "nope",
            },
            body,
        ),
    ]
    wrong = []
    with p.http(None) as c:
        for what, headers, content in tries:
            r = c.post(
                "/hooks/git",
                content=content,
                headers={**headers, "Content-Type": "application/json"},
            )
            if r.status_code != 401:
                wrong.append(f"{what}: {r.status_code}")
        good = c.post(
            "/hooks/git",
            content=body,
            headers={
                "X-GitHub-Event": "push",
                "X-Hub-Signature-256": signed(body),
                "Content-Type": "application/json",
            },
        )
    held = not wrong and good.status_code in (200, 202)
    return CaseResult(
        "webhook_signatures",
        held,
        f"{len(tries)} bad deliveries; not refused with 401: {wrong}; "
        f"a good one: {good.status_code}",
    )


def webhook_replay(p: Probe) -> CaseResult:
    """A delivery never seen before syncs; the same signed delivery again is a no-op.
    The body is unique to this case (a push's `after`), so no earlier case's delivery
    makes the first one a replay."""
    doc = json.loads(push_body(p))
    doc["after"] = secrets.token_hex(20)
    body = json.dumps(doc).encode()
    headers = {
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": f"probe-{secrets.token_hex(8)}",
        "X-Hub-Signature-256": signed(body),
        "Content-Type": "application/json",
    }
    with p.http(None) as c:
        first = c.post("/hooks/git", content=body, headers=headers)
        second = c.post("/hooks/git", content=body, headers=headers)
    again = (
        second.json()
        if second.headers.get("content-type", "").startswith("application/json")
        else {}
    )
    noop = second.status_code != 200 or not again.get("locations")
    synced = first.status_code == 200 and bool(first.json().get("locations"))
    held = synced and noop
    return CaseResult(
        "webhook_replay_noop",
        held,
        f"first {first.status_code} {oneline(first.text, 150)}; same delivery again "
        f"{second.status_code} {oneline(second.text, 150)}",
    )


def viewer_cannot_change(p: Probe) -> CaseResult:
    before = (p.fleet_dir / "repos" / "demo.yaml").read_bytes()
    changes = [
        ("POST", "/repos", {"name": "viewer-made", "git_url": "https://git.example.com/v.git"}),
        ("PATCH", "/repos/demo", {"suspend": True}),
        ("PUT", "/repos/demo", {"name": "demo", "git_url": "https://git.example.com/v.git"}),
        ("DELETE", "/repos/demo", None),
        ("POST", "/repos/demo/sync", None),
        ("POST", "/locations/demo-A/rollback", {"to": None}),
        ("POST", "/locations/demo-A/unpin", None),
        ("POST", "/promote", {"repo": "demo", "source": "A", "target": "B", "merge": False}),
    ]
    wrong = []
    with p.http(VIEWER) as c:
        for method, path, body in changes:
            r = c.request(method, path, json=body)
            if r.status_code != 403:
                wrong.append(f"{method} {path}: {r.status_code}")
        r = c.put("/playground/A/viewer.py", content=b"x = 1\n")
        if r.status_code != 403:
            wrong.append(f"PUT /playground/A/viewer.py: {r.status_code}")
        can_read = c.get("/repos/demo").status_code == 200
    with p.http(None) as c:
        anonymous = c.patch("/repos/demo", json={"suspend": True}).status_code
    unchanged = (p.fleet_dir / "repos" / "demo.yaml").read_bytes() == before
    held = not wrong and can_read and anonymous == 401 and unchanged
    return CaseResult(
        "viewer_token_cannot_change",
        held,
        f"{len(changes) + 1} changes as viewer; not 403: {wrong}; viewer reads: {can_read}; "
        f"no token: {anonymous}; demo.yaml unchanged: {unchanged}",
    )


# --- secrets -----------------------------------------------------------------------------


def renderable(p: Probe) -> Path:
    """A copy of the fleet's files whose git URL a deployment could reach: render
    refuses file:// remotes (rightly), and the secret reference is what matters."""
    copy = p.base / "render-fleet"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(p.fleet_dir, copy, ignore=shutil.ignore_patterns(".dagfleet"))
    demo = copy / "repos" / "demo.yaml"
    doc = yaml.safe_load(demo.read_text())
    doc["git_url"] = "https://git.example.com/demo.git"
    demo.write_text(yaml.safe_dump(doc))
    return copy


def secrets_never_shown(p: Probe) -> CaseResult:
    found: list[str] = []
    with p.http() as c:
        for path in [
            "/repos",
            "/repos/demo",
            "/locations",
            "/locations/demo-A",
            "/environments",
            "/fleet",
            "/whoami",
            "/audit",
            "/metrics",
            "/alerts",
            "/logs?tail=5000",
            "/repos/demo/logs?tail=5000",
            "/locations/demo-A/history",
        ]:
            r = c.get(path)
            if p.secret in r.text:
                found.append(f"API {path}")
    logs = [p.fleet.log_path, *sorted(p.state.rglob("*.log")), *sorted(p.state.rglob("*.json"))]
    for file in logs:
        with contextlib.suppress(OSError):
            if p.secret in file.read_text(errors="replace"):
                found.append(str(file.relative_to(p.base)))
    out = p.base / "render-compose"
    done = subprocess.run(
        [
            DAGFLEET,
            "render",
            "compose",
            "--fleet",
            str(renderable(p)),
            "--out",
            str(out),
            "--tag",
            "probe",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, SECRET_SOURCE: p.secret},  # set where render could read it
    )
    rendered = [f for f in out.rglob("*") if f.is_file()] if out.exists() else []
    for f in rendered:
        if p.secret in f.read_text(errors="replace"):
            found.append(f"render {f.relative_to(out)}")
    if p.secret in done.stdout + done.stderr:
        found.append("render output")
    held = not found and done.returncode == 0 and bool(rendered)
    return CaseResult(
        "secrets_never_shown",
        held,
        f"13 API responses, {len(logs)} log/status files, render compose exit "
        f"{done.returncode} ({len(rendered)} files); the secret found in: {found}",
    )


# --- the issue's items ---------------------------------------------------------------------


def etag_head_if_match(p: Probe) -> CaseResult:
    with p.http() as c:
        head = c.head("/repos/demo")
        etag = head.headers.get("etag", "")
        answers = {}
        for label, value in [("empty", ""), ("malformed", "not-an-etag")]:
            r = c.patch("/repos/demo", json={"poll_interval": 1}, headers={"If-Match": value})
            answers[label] = r.status_code
    held = head.status_code == 200 and bool(etag) and all(a in (400, 412) for a in answers.values())
    return CaseResult(
        "etag_head_if_match",
        held,
        f"HEAD /repos/demo: {head.status_code}, ETag {etag!r}; PATCH with If-Match "
        f"empty: {answers['empty']}, malformed: {answers['malformed']}",
    )


SLOW_IMPORT = 45  # seconds the slow commit's definitions take to import


def progressing_while_slow_commit(p: Probe) -> CaseResult:
    """Push a commit whose definitions take SLOW_IMPORT s to import: while it loads,
    the API's status of demo-A shows a Progressing condition naming that commit, and
    the old commit is still the one served."""
    old = p.fleet.commit("demo-A")
    slow = p.repo.commit(
        {"demo/definitions.py": f"import time\ntime.sleep({SLOW_IMPORT})\n" + TRIVIAL_DEFS},
        "slow to import",
    )
    p.repo.push("A")
    seen: list[str] = []

    def shows_progressing() -> bool:
        with p.http(VIEWER) as c:
            status = c.get("/locations/demo-A").json()
        for cond in status.get("conditions", []):
            if "Progressing" in (cond.get("type"), cond.get("reason")):
                message = str(cond.get("message", ""))
                seen.append(f"{cond.get('type')}: {oneline(message, 100)}")
                if slow[:12] in message:
                    return bool(status.get("commit") == old)
        return False

    try:
        wait_for(shows_progressing, SLOW_IMPORT - 10, "Progressing with the slow commit")
        held = True
    except AssertionError:
        held = False
    table = subprocess.run(  # what a person sees meanwhile: `dagfleet status`
        [DAGFLEET, "status", "--fleet", str(p.fleet_dir), "-o", "wide"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={**os.environ, "DAGFLEET_API_TOKEN": ADMIN},
    )
    demo_a = [line for line in table.stdout.splitlines() if "demo-A" in line]
    in_table = any("progressing" in line.lower() for line in demo_a)
    held = held and in_table
    seen.append(f"dagfleet status: {oneline(' | '.join(demo_a), 160)}")
    status = p.fleet.status("demo-A")
    conds = {c["type"]: c.get("reason") for c in status.get("conditions", [])}
    return CaseResult(
        "status_progressing_while_loading",
        held,
        f"old {old[:12]}, slow {slow[:12]}; status commit {str(status.get('commit'))[:12]}, "
        f"conditions {conds}; Progressing seen: {sorted(set(seen))[:3]}",
    )


def kill9_up_leaves_nothing(p: Probe) -> CaseResult:
    before = len(dagfleet_processes(p.state))
    p.fleet.kill9()
    time.sleep(8)
    left = []
    for proc in dagfleet_processes(p.state):
        with contextlib.suppress(psutil.Error):
            left.append(f"{proc.pid} {' '.join(proc.cmdline())[:60]}")
    done = subprocess.run(
        [DAGFLEET, "status", "--fleet", str(p.fleet_dir), "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={**os.environ, "DAGFLEET_API_URL": p.fleet.api.removesuffix("/api/v1")},
    )
    try:
        shown: Any = json.loads(done.stdout)
    except ValueError:
        shown = None
    if not isinstance(shown, list):  # `dagfleet status -o json` is a list of locations
        ready = [f"unreadable status output: {oneline(done.stdout + done.stderr, 120)!r}"]
    else:
        ready = [
            str(loc.get("location"))
            for loc in shown
            if any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in loc.get("conditions", [])
            )
        ]
    p.fleet.force_cleanup()
    held = not left and not ready
    return CaseResult(
        "kill9_up_leaves_nothing",
        held,
        f"{before} processes before; 8s after kill -9 of up: {len(left)} left {left[:4]}; "
        f"status (exit {done.returncode}) shows Ready: {ready}",
    )


# --- running it ----------------------------------------------------------------------------


LIVE: list[tuple[str, Callable[[Probe], CaseResult]]] = [
    ("kill9_code_server", kill9_code_server),
    ("kill9_webserver", kill9_webserver),
    ("kill9_daemon", kill9_daemon),
    ("remote_gone_and_back", remote_gone_and_back),
    ("fetch_error_names_mirror", fetch_error_names_mirror),
    ("parallel_registrations_50", parallel_registrations),
    ("hostile_repo_add", hostile_repo_add),
    ("playground_and_log_traversal", path_traversal),
    ("webhook_signatures", webhook_signatures),
    ("webhook_replay_noop", webhook_replay),
    ("viewer_token_cannot_change", viewer_cannot_change),
    ("etag_head_if_match", etag_head_if_match),
    ("secrets_never_shown", secrets_never_shown),
    ("status_progressing_while_loading", progressing_while_slow_commit),
    ("kill9_up_leaves_nothing", kill9_up_leaves_nothing),  # last: it ends the fleet
]
OFFLINE = [
    "fleet_files_duplicate_keys",
    "fleet_files_deep_nesting",
    "fleet_files_size_limit",
    "render_tests_schema_location",
    "schemathesis_no_5xx",
]


def start_probe_fleet(base: Path) -> Probe:
    repo = CodeRepo(base / "remotes")
    secret = f"probe-secret-{secrets.token_hex(12)}"
    fleet_dir = write_fleet(
        base / "fleet",
        {
            "demo": {
                "git_url": repo.url,
                "module_name": "demo.definitions",
                "poll_interval": 1,
                "environment": [{"name": "PROBE_SECRET", "from_env": SECRET_SOURCE}],
            }
        },
        environments=[
            {"name": "A", "branch": "A", "playground": True},
            {"name": "B", "branch": "B"},
        ],
    )
    fleet = RunningFleet(
        fleet_dir,
        env={
            SECRET_SOURCE: secret,
            "DAGFLEET_API_TOKENS": f"{ADMIN}:admin,{VIEWER}:viewer",
            "DAGFLEET_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "DAGFLEET_API_TOKEN": ADMIN,
        },
    )
    # With tokens set, the front door (--port) wants one: the test client sends the admin's.
    fleet.gql.client.headers["Authorization"] = f"Bearer {ADMIN}"
    fleet.start()
    return Probe(base, repo, fleet_dir, fleet, secret)


def run_probe(base: Path, only: set[str] | None, fuzz_cases: int) -> list[CaseResult]:
    results: list[CaseResult] = []

    def wanted(name: str) -> bool:
        return only is None or name in only

    def record(name: str, check: Callable[[], CaseResult]) -> None:
        log(f"case {name} ...")
        started = time.monotonic()
        result = run_case(name, check)
        results.append(result)
        log(
            f"case {name}: {'held' if result.held else 'BROKE'} "
            f"({time.monotonic() - started:.0f}s) {oneline(result.detail, 300)}"
        )

    offline: dict[str, Callable[[], CaseResult]] = {
        "fleet_files_duplicate_keys": lambda: duplicate_keys(base / "files"),
        "fleet_files_deep_nesting": lambda: deep_nesting(base / "files"),
        "fleet_files_size_limit": lambda: size_limit(base / "files"),
        "render_tests_schema_location": lambda: render_schema_location(base),
        "schemathesis_no_5xx": lambda: schemathesis_cases(base, fuzz_cases),
    }
    for name in OFFLINE:
        if wanted(name):
            record(name, offline[name])
    live = [(n, f) for n, f in LIVE if wanted(n)]
    if not live:
        return results
    if any(n == "fetch_error_names_mirror" for n, _ in live) and not any(
        n == "remote_gone_and_back" for n, _ in live
    ):
        live.insert(0, ("remote_gone_and_back", remote_gone_and_back))
    log("starting the fleet ...")
    probe = start_probe_fleet(base)
    try:
        try:
            probe.fleet.wait_loaded({"demo-A", "demo-B"}, 300)
            probe.fleet.pid("demo-A")
            wait_for(lambda: probe.child("dagster-daemon"), 60, "the daemon")
        except Exception as exc:
            log(f"the fleet did not start: {exc}")
            results.extend(
                CaseResult(n, False, f"the fleet did not start: {oneline(str(exc), 400)}")
                for n, _ in live
            )
            return results
        log("fleet up")
        for name, case in live:
            record(name, lambda case=case: case(probe))  # type: ignore[misc]
    finally:
        with contextlib.suppress(Exception):
            probe.fleet.stop()
        probe.fleet.force_cleanup()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    names = OFFLINE + [n for n, _ in LIVE]
    parser.add_argument("--only", default="", help=f"comma-separated cases: {', '.join(names)}")
    parser.add_argument(
        "--fuzz-cases", type=int, default=300, help="schemathesis cases in all (default 300)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    only = {n.strip() for n in args.only.split(",") if n.strip()} or None
    unknown = sorted((only or set()) - set(names))
    if unknown:
        parser.error(f"unknown cases {unknown}; known: {', '.join(names)}")
    base = Path(tempfile.mkdtemp(prefix="dagfleet-probe-"))
    started = time.monotonic()
    try:
        results = run_probe(base, only, args.fuzz_cases)
    finally:
        if args.keep:
            log(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    out = summarize(results)
    out["seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
