"""Latency of `GET /api/v1/locations` with 200 suspended repos and 50 concurrent clients.

A real uvicorn serves the real app (offline controller, statuses as the runtime
writes them for suspended repos) in its own process on a free port; 50 async
clients send a bounded number of requests (a warm-up first, not counted).

Prints one JSON object: endpoint, repos, locations_returned, clients, requests,
p50_ms, p99_ms, max_ms, requests_per_second and target_p99_ms.
Target on the 2-core dev machine: p99 <= 50 ms.

    uv run --frozen python bench/api.py [--requests 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

REPOS = 200
CLIENTS = 50
REQUESTS = 5000
WARMUP = 200
PATH = "/api/v1/locations"


def _fleet(root: Path) -> None:
    from dagfleet.layout import Layout
    from dagfleet.registry import Registry
    from dagfleet.spec.defaults import default_fleet_document
    from dagfleet.status import LocationStatus, Reason, StatusStore

    (root / "fleet.yaml").write_text(yaml.safe_dump(default_fleet_document()))
    (root / "repos").mkdir()
    registry = Registry(root)
    store = StatusStore(Layout.for_fleet(root).status)
    for i in range(REPOS):
        name = f"repo-{i:03d}"
        registry.create(
            {"name": name, "git_url": f"https://git.example.com/{name}.git", "suspend": True}
        )
        for env in ("A", "B"):
            status = LocationStatus(location=f"{name}-{env}", repo=name, env=env, commit="a" * 40)
            store.write(
                status.with_condition("Suspended", "True", Reason.SUSPENDED, "suspend: true")
            )


def _serve(root: str, port: int) -> None:
    import uvicorn

    from dagfleet.api import ApiSettings, create_app
    from dagfleet.offline import OfflineController

    settings = ApiSettings(fleet_dir=Path(root), port=port)
    app = create_app(settings, OfflineController(Path(root)))
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=60,
    )


async def _client(port: int, path: str, todo: list[int], out: list[float]) -> None:
    """One keep-alive connection; a minimal HTTP/1.1 client so the client's own cost
    (httpx parsing 200 kB bodies) does not dominate the figures on 2 shared cores."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    try:
        while todo:
            todo.pop()
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = head.split(b" ", 2)[1]
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            out.append(time.perf_counter() - start)
            if status != b"200":
                raise RuntimeError(f"{path}: {status.decode()}")
    finally:
        writer.close()


async def _run(port: int, path: str, n: int) -> tuple[list[float], float]:
    todo = list(range(n))
    out: list[float] = []
    start = time.perf_counter()
    await asyncio.gather(*(_client(port, path, todo, out) for _ in range(CLIENTS)))
    return out, time.perf_counter() - start


def main() -> None:
    from _fleet import free_port

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--requests", type=int, default=REQUESTS, help=f"requests measured (default {REQUESTS})"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dagfleet-bench-api-") as tmp:
        root = Path(tmp)
        _fleet(root)
        port = free_port()
        server = multiprocessing.get_context("spawn").Process(
            target=_serve, args=(str(root), port), daemon=True
        )
        server.start()
        try:
            url = f"http://127.0.0.1:{port}{PATH}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    count = len(httpx.get(url).json())
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            asyncio.run(_run(port, PATH, WARMUP))
            latencies, elapsed = asyncio.run(_run(port, PATH, args.requests))
        finally:
            server.terminate()
            server.join(10)
    ms = sorted(x * 1000 for x in latencies)
    result = {
        "endpoint": "GET /api/v1/locations",
        "repos": REPOS,
        "suspended": True,
        "locations_returned": count,
        "clients": CLIENTS,
        "requests": len(ms),
        "p50_ms": round(statistics.median(ms), 2),
        "p99_ms": round(ms[int(len(ms) * 0.99) - 1], 2),
        "max_ms": round(ms[-1], 2),
        "requests_per_second": round(len(ms) / elapsed, 1),
        "target_p99_ms": 50,
    }
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
