"""Fault probe cases that need no running fleet: fleet files the CLI must refuse
(duplicate keys, deep nesting), where the render tests find their schemas, and
schemathesis against a real API server (as tests/integration/test_api_schemathesis.py).

Each case returns a CaseResult; bench/fault_probe.py runs them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from _fleet import ROOT, free_port
from _probe_summary import CaseResult

from tests.support.fleetproc import DAGFLEET

PYTEST = str(Path(sys.executable).parent / "pytest")
FLEET_YAML = "name: probe\nenvironments:\n- {name: A, branch: A}\n"
REPO_YAML = "name: r\ngit_url: https://git.example.com/r.git\n"


def _cli_on_files(fleet: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`dagfleet repo list` on `fleet`'s files: no API answers (a closed port)."""
    env = {**os.environ, "DAGFLEET_API_URL": f"http://127.0.0.1:{free_port()}"}
    return subprocess.run(
        [DAGFLEET, "repo", "list", "--fleet", str(fleet)],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        env=env,
    )


def _fleet_files(base: Path, fleet_yaml: str, repo_yaml: str) -> Path:
    shutil.rmtree(base, ignore_errors=True)
    (base / "repos").mkdir(parents=True)
    (base / "fleet.yaml").write_text(fleet_yaml)
    (base / "repos" / "r.yaml").write_text(repo_yaml)
    return base


def duplicate_keys(base: Path) -> CaseResult:
    """A duplicate key in a repo file and in fleet.yaml: exit 2 naming file and key."""
    seen: list[str] = []
    held = True
    tries = {
        "repos/r.yaml suspend": (FLEET_YAML, REPO_YAML + "suspend: true\nsuspend: false\n"),
        "fleet.yaml name": ("name: probe\nname: other\n" + FLEET_YAML.split("\n", 1)[1], REPO_YAML),
    }
    for i, (what, (fleet_yaml, repo_yaml)) in enumerate(tries.items()):
        done = _cli_on_files(_fleet_files(base / f"dup{i}", fleet_yaml, repo_yaml))
        file, key = what.split()
        said = done.stderr + done.stdout
        ok = done.returncode == 2 and Path(file).name in said and key in said
        held &= ok
        seen.append(
            f"{what}: exit {done.returncode}, {'named' if ok else 'said'} "
            f"{' '.join(said.split())[-160:]!r}"
        )
    return CaseResult("fleet_files_duplicate_keys", held, "; ".join(seen))


def deep_nesting(base: Path) -> CaseResult:
    """100,000 nested `[` in a repo file: exit 2 with a message, no traceback."""
    done = _cli_on_files(_fleet_files(base / "deep", FLEET_YAML, "x: " + "[" * 100_000 + "\n"))
    said = done.stderr + done.stdout
    held = done.returncode == 2 and "Traceback" not in said and "RecursionError" not in said
    return CaseResult(
        "fleet_files_deep_nesting",
        held,
        f"exit {done.returncode}: {' '.join(said.split())[-300:]!r}",
    )


def size_limit(base: Path, timeout: float = 30) -> CaseResult:
    """A ~10 MB repo file (300,000 environment entries): refused with exit 2 and a
    message within `timeout` s (it used to take 90 s and 1.3 GB, ignoring SIGTERM)."""
    entries = "".join(f"- {{name: V{i}, value: xxxxxxxxx}}\n" for i in range(300_000))
    files = _fleet_files(base / "big", FLEET_YAML, REPO_YAML + "environment:\n" + entries)
    size = (files / "repos" / "r.yaml").stat().st_size
    started = time.monotonic()
    try:
        done = _cli_on_files(files, timeout=timeout)
    except subprocess.TimeoutExpired:
        return CaseResult(
            "fleet_files_size_limit",
            False,
            f"{size / 2**20:.1f} MiB file: no answer in {timeout:.0f}s",
        )
    said = done.stderr + done.stdout
    held = done.returncode == 2 and "Traceback" not in said
    took = time.monotonic() - started
    return CaseResult(
        "fleet_files_size_limit",
        held,
        f"{size / 2**20:.1f} MiB file: exit {done.returncode} in {took:.1f}s: "
        f"{' '.join(said.split())[-250:]!r}",
    )


def render_schema_location(base: Path) -> CaseResult:
    """The render validation tests in a clone with no ../shared beside it: they skip
    with a message (exit 0), instead of failing the README's test command."""
    clone = base / "clone" / "repo"
    shutil.rmtree(clone.parent, ignore_errors=True)
    shutil.copytree(ROOT / "tests", clone / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", clone / "pyproject.toml")
    done = subprocess.run(
        [
            PYTEST,
            "-q",
            "-x",
            "-rs",
            "-p",
            "no:cacheprovider",
            "tests/integration/test_render_validation.py",
        ],
        cwd=clone,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env={k: v for k, v in os.environ.items() if not k.startswith("PYTEST")},
    )
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    skips = [line for line in lines if line.startswith("SKIPPED")][:2]
    tail = " ".join([*skips, lines[-1] if lines else done.stderr[-300:]])
    held = done.returncode == 0 and "skipped" in done.stdout.lower()
    return CaseResult(
        "render_tests_schema_location", held, f"pytest exit {done.returncode}: {tail}"
    )


def schemathesis_cases(base: Path, budget: int) -> CaseResult:
    """About `budget` schemathesis cases over every operation of a real API server
    (admin token, the fuzz controller of the integration test): no response a 5xx."""
    import schemathesis
    import yaml
    from hypothesis import HealthCheck, given, settings

    from dagfleet.api import ApiServer, ApiSettings, create_app
    from dagfleet.registry import Registry
    from dagfleet.spec.defaults import default_fleet_document
    from tests.integration.test_api_schemathesis import TOKEN, FuzzController

    root = base / "fuzz-fleet"
    shutil.rmtree(root, ignore_errors=True)
    (root / "repos").mkdir(parents=True)
    (root / "fleet.yaml").write_text(yaml.safe_dump(default_fleet_document()))
    Registry(root).create({"name": "sales", "git_url": "https://git.example.com/sales.git"})
    api_settings = ApiSettings(
        fleet_dir=root,
        tokens={TOKEN: "admin"},
        webhook_secret="fuzz-secret",
        follow_max_seconds=0.5,
    )
    server = ApiServer(create_app(api_settings, FuzzController(root)), "127.0.0.1", free_port())
    server.start()
    codes: Counter[int] = Counter()
    errors: list[str] = []
    server_errors: list[str] = []
    try:
        api = schemathesis.openapi.from_url(f"{server.url}/api/v1/openapi.json")
        operations = [r.ok() for r in api.get_all_operations()]  # type: ignore[union-attr]
        per = max(1, -(-budget // len(operations)))  # hypothesis may stop short
        for operation in operations:

            @given(case=operation.as_strategy())
            @settings(
                max_examples=per,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def run(case: Any) -> None:  # a schemathesis.Case
                try:
                    response = case.call(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
                except Exception as exc:  # a hang or a dropped connection counts against it
                    errors.append(f"{case.method} {case.formatted_path}: {type(exc).__name__}")
                    return
                codes[response.status_code] += 1
                if response.status_code >= 500:
                    server_errors.append(f"{case.method} {case.formatted_path}")

            run()
    finally:
        server.stop()
    tried = sum(codes.values()) + len(errors)
    held = tried > 0 and not server_errors and not errors
    detail = (
        f"{tried} cases over {len(operations)} operations, {len(server_errors)} x 5xx, "
        f"{len(errors)} request errors; codes {dict(sorted(codes.items()))}"
    )
    if server_errors or errors:
        detail += f"; first: {(server_errors + errors)[:3]}"
    return CaseResult("schemathesis_no_5xx", held, detail)
