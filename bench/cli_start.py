"""CLI start-up: median wall time of `dagfleet --version`, `status` and `repo list`.

Each command runs N times as a fresh process (the installed console script next
to this interpreter) in a fleet of `--repos` repos with no fleet running, so
`status` and `repo list` read the fleet files. Also reports, for each command,
whether any of the server stack (fastapi, uvicorn, dagster, watchfiles,
debugpy) was imported, from `python -X importtime`.

Prints one JSON object: runs, repos, median_seconds {command: s},
min_seconds {command: s}, heavy_imports {command: [modules]}.

    uv run --frozen python bench/cli_start.py [--runs 10] [--repos 20]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DAGFLEET = str(Path(sys.executable).parent / "dagfleet")
COMMANDS = {"--version": ["--version"], "status": ["status"], "repo list": ["repo", "list"]}
HEAVY = ("fastapi", "uvicorn", "dagster", "watchfiles", "debugpy")


def write_fleet(root: Path, repos: int) -> Path:
    (root / "repos").mkdir(parents=True)
    (root / "fleet.yaml").write_text("name: bench\nenvironments: [{name: A}, {name: B}]\n")
    for i in range(repos):
        name = f"repo{i}"
        (root / "repos" / f"{name}.yaml").write_text(
            f"name: {name}\ngit_url: /srv/git/{name}.git\nmodule_name: {name}.definitions\n"
        )
    return root


def env() -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("DAGFLEET_")}
    out["DAGFLEET_API_URL"] = "http://127.0.0.1:9"  # nobody listens: the files are read
    return out


def timed(args: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run([DAGFLEET, *args], cwd=cwd, env=env(), capture_output=True, check=True)
    return time.perf_counter() - start


def heavy_imports(args: list[str], cwd: Path) -> list[str]:
    code = (
        "import sys; from dagfleet.cli import main; sys.argv = ['dagfleet', *sys.argv[1:]]; main()"
    )
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code, *args],
        cwd=cwd,
        env=env(),
        capture_output=True,
        text=True,
        check=False,
    )
    names = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "|" in line}
    return sorted(n for n in names if n.split(".")[0] in HEAVY)


def main(runs: int, repos: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="dagfleet-cli-bench-") as tmp:
        fleet = write_fleet(Path(tmp) / "fleet", repos)
        times: dict[str, list[float]] = {name: [] for name in COMMANDS}
        for name, args in COMMANDS.items():
            timed(args, fleet)  # warm the file cache and .pyc files
            times[name] = [timed(args, fleet) for _ in range(runs)]
        return {
            "runs": runs,
            "repos": repos,
            "median_seconds": {k: round(statistics.median(v), 3) for k, v in times.items()},
            "min_seconds": {k: round(min(v), 3) for k, v in times.items()},
            "heavy_imports": {k: heavy_imports(a, fleet) for k, a in COMMANDS.items()},
        }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="runs per command (default 10)")
    parser.add_argument("--repos", type=int, default=20, help="repos in the fleet (default 20)")
    ns = parser.parse_args()
    print(json.dumps(main(ns.runs, ns.repos), indent=2))
