"""/metrics at the root, as Prometheus scrapers expect: the real app over a real fleet
directory and real processes. The same text as /api/v1/metrics, the same auth, plus
dagfleet's own process metrics and each live code server's memory and CPU."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from dagfleet.api import ApiSettings, create_app
from dagfleet.layout import Layout
from dagfleet.offline import OfflineController
from dagfleet.spec.defaults import default_fleet_document
from dagfleet.status import LocationStatus, Reason, StatusStore
from dagfleet.status.liveness import FleetLock
from tests.support.fleetproc import wait_for

pytestmark = pytest.mark.integration
READER = "read-token-1"


@pytest.fixture
def fleet_dir(tmp_path: Path) -> Path:
    (tmp_path / "fleet.yaml").write_text(yaml.safe_dump(default_fleet_document()))
    (tmp_path / "repos").mkdir()
    repo = {"name": "sales", "git_url": "https://git.example.com/sales.git"}
    (tmp_path / "repos" / "sales.yaml").write_text(yaml.safe_dump(repo))
    return tmp_path


@pytest.fixture
def running(fleet_dir: Path) -> Iterator[None]:
    """Hold the fleet lock as `dagfleet up` does: statuses are then read as they are."""
    lock = FleetLock.acquire(Layout.for_fleet(fleet_dir), fleet_dir)
    yield
    lock.release()


@pytest.fixture
def server_process() -> Iterator[subprocess.Popen[bytes]]:
    """A live process standing for a code server: it holds 50 MB and burns a little CPU."""
    code = "import sys\nx = bytearray(50_000_000)\nsum(range(3_000_000))\nsys.stdin.read()\n"
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE)
    yield proc
    proc.kill()
    proc.wait(10)


def _status(location: str, pid: int | None) -> LocationStatus:
    s = LocationStatus(location=location, repo="sales", env=location[-1], commit="d" * 40, pid=pid)
    return s.with_condition("Serving", "True", Reason.CODE_SERVER_RUNNING, "serving")


def _value(text: str, line_start: str) -> float:
    lines = [line for line in text.splitlines() if line.startswith(line_start)]
    assert len(lines) == 1, (line_start, text)
    return float(lines[0].rsplit(" ", 1)[1])


def test_root_metrics_has_location_process_and_code_server_metrics(
    fleet_dir: Path, running: None, server_process: subprocess.Popen[bytes]
) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(30)
    store = StatusStore(Layout.for_fleet(fleet_dir).status)
    store.write(_status("sales-A", server_process.pid))
    store.write(_status("sales-B", dead.pid))  # its code server is gone: skipped
    app = create_app(
        ApiSettings(fleet_dir=fleet_dir, status_cache_seconds=0), OfflineController(fleet_dir)
    )
    memory = 'dagfleet_code_server_resident_memory_bytes{env="A"'
    with TestClient(app) as client:
        # Until the stand-in holds its memory (it starts in parallel with the app).

        def scraped() -> Any:
            got = client.get("/metrics")
            return got if _value(got.text, memory) >= 50e6 else None

        resp = wait_for(scraped, 60, "the code server's memory in /metrics")
        old = client.get("/api/v1/metrics")
    assert resp.status_code == 200 and old.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    text = resp.text
    labels = '{env="A",location="sales-A",repo="sales"}'
    assert f"dagfleet_location_ready{labels} 1.0" in text and "dagfleet_location_ready" in old.text
    assert _value(text, f"dagfleet_code_server_resident_memory_bytes{labels}") >= 50e6
    assert _value(text, f"dagfleet_code_server_cpu_seconds_total{labels}") > 0
    assert 'location="sales-B"' not in text.split("dagfleet_code_server_cpu_seconds")[1]
    assert 'dagfleet_code_server_resident_memory_bytes{env="B"' not in text
    # dagfleet's own process, platform and garbage collector.
    assert _value(text, "process_resident_memory_bytes ") > 0
    assert "process_cpu_seconds_total " in text
    assert "python_info{" in text and "python_gc_objects_collected_total{" in text


def test_root_metrics_needs_the_same_token(fleet_dir: Path, running: None) -> None:
    settings = ApiSettings(
        fleet_dir=fleet_dir, tokens={READER: "read", "admin-1": "admin"}, status_cache_seconds=0
    )
    with TestClient(create_app(settings, OfflineController(fleet_dir))) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/api/v1/metrics").status_code == 401
        bad = client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401
        ok = client.get("/metrics", headers={"Authorization": f"Bearer {READER}"})
        assert ok.status_code == 200 and "dagfleet_locations 0.0" in ok.text
        assert "process_resident_memory_bytes" in ok.text
