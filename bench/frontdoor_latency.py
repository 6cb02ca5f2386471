"""What the front door adds to a GraphQL query, with 50 concurrent clients.

A real Dagster webserver (two code locations) and a real front door
(`dagfleet frontdoor serve`, its own process, in front of it) with local users.
The load comes from wrk (C; `apt-get install wrk`), so the load generator does
not take the CPU the two servers need: 50 connections, each sending the same
query (`{ version }`, cheap for Dagster, so the front door's share shows) as
soon as the last answer came. Through the front door every request carries a
viewer's session cookie, so it is authenticated, CSRF-checked and its GraphQL
parsed by the gate. Direct and front-door runs alternate (--runs each). Prints
one JSON object: wrk's p50 and p99 of each (median over the runs), the
differences, and throughput. Target: <= 5 ms added at p50.

    uv run --frozen python bench/frontdoor_latency.py [--clients 50] [--seconds 10] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.fleetproc import free_port, wait_for
from tests.support.frontdoor import PASSWORD, dagster_webserver, fleet_dir

BODY = json.dumps({"query": "query Version { version }"})
TARGET_MS = 5.0
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def lua(headers: dict[str, str]) -> str:
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(BODY)}"]
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    return "\n".join(lines) + "\n"


def wrk(url: str, script: Path, clients: int, seconds: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{clients}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    assert errors is None, out

    def ms(text: str) -> float:
        number, unit = re.fullmatch(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
        return float(number) * _UNITS[unit]

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert rps and "50" in found and "99" in found, out
    return {"p50_ms": ms(found["50"]), "p99_ms": ms(found["99"]), "rps": float(rps.group(1))}


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: round(statistics.median(r[k] for r in runs), 2) for k in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench/frontdoor_latency.py needs wrk: apt-get install wrk")
    with tempfile.TemporaryDirectory() as tmp, dagster_webserver(Path(tmp) / "dagster") as web:
        fleet = fleet_dir(Path(tmp))
        port = free_port()
        door_url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "DAGFLEET_SESSION_KEY": "b" * 48}
        door = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dagfleet.cli",
                "frontdoor",
                "serve",
                "--fleet",
                str(fleet),
                "--port",
                str(port),
                "--upstream",
                web.url,
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:

            def healthy() -> bool:
                try:
                    return httpx.get(f"{door_url}/auth/healthz").status_code == 200
                except httpx.HTTPError:
                    return False

            wait_for(healthy, 60, "the front door")
            with httpx.Client(base_url=door_url, headers={"origin": door_url}) as c:
                page = c.get("/auth/login").text
                csrf = page.split('name=csrf value="')[1].split('"')[0]
                signed = c.post(
                    "/auth/login",
                    data={"username": "val", "password": PASSWORD, "csrf": csrf, "next": "/"},
                )
                assert signed.status_code == 303, signed.text
                cookie = "; ".join(f"{k}={v}" for k, v in c.cookies.items())
            plain = Path(tmp) / "direct.lua"
            plain.write_text(lua({"content-type": "application/json"}))
            viewer = Path(tmp) / "door.lua"
            viewer.write_text(
                lua({"content-type": "application/json", "cookie": cookie, "origin": door_url})
            )
            wrk(f"{door_url}/graphql", viewer, args.clients, 2)  # warm both paths
            wrk(f"{web.url}/graphql", plain, args.clients, 2)
            runs: dict[str, list[dict[str, float]]] = {"direct": [], "door": []}
            for _ in range(args.runs):
                runs["direct"].append(wrk(f"{web.url}/graphql", plain, args.clients, args.seconds))
                runs["door"].append(wrk(f"{door_url}/graphql", viewer, args.clients, args.seconds))
        finally:
            door.terminate()
            door.wait(20)
    direct, door_figures = median_of(runs["direct"]), median_of(runs["door"])
    added_p50 = round(door_figures["p50_ms"] - direct["p50_ms"], 2)
    print(
        json.dumps(
            {
                "clients": args.clients,
                "seconds": args.seconds,
                "runs": args.runs,
                "direct": direct,
                "front_door": door_figures,
                "added_p50_ms": added_p50,
                "added_p99_ms": round(door_figures["p99_ms"] - direct["p99_ms"], 2),
                "each_run": runs,
                "target_added_p50_ms": TARGET_MS,
                "meets_target": added_p50 <= TARGET_MS,
                "loadavg": os.getloadavg(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
