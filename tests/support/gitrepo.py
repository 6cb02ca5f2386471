"""Real git repositories with Dagster code, served from bare `file://` remotes."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

IDENTITY = ["-c", "user.name=test", "-c", "user.email=test@example.com"]

TRIVIAL_DEFS = textwrap.dedent(
    """
    import os

    from dagster import Definitions, asset, define_asset_job, in_process_executor


    @asset
    def one() -> int:
        print("one says hello from", os.environ.get("DAGFLEET_LOCATION"))
        return 1


    @asset
    def two(one: int) -> int:
        return one + 1


    @asset
    def three(two: int) -> int:
        return two + 1


    trivial_job = define_asset_job("trivial_job", selection=["one", "two", "three"])
    defs = Definitions(
        assets=[one, two, three], jobs=[trivial_job], executor=in_process_executor
    )
    """
)


def git(*args: str, cwd: Path) -> str:
    result = subprocess.run(
        ["git", *IDENTITY, *args], cwd=cwd, capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


class CodeRepo:
    """A working clone plus its bare remote; tests commit and push like a user would."""

    def __init__(self, root: Path, name: str = "demo", branches: tuple[str, ...] = ("A", "B")):
        self.remote = root / f"{name}.git"
        self.work = root / f"{name}-work"
        self.work.mkdir(parents=True)
        git("init", "--quiet", "--initial-branch", branches[0], cwd=self.work)
        (self.work / "demo").mkdir()
        (self.work / "demo" / "__init__.py").write_text("")
        (self.work / "demo" / "definitions.py").write_text(TRIVIAL_DEFS)
        git("add", "-A", cwd=self.work)
        git("commit", "--quiet", "-m", "initial", cwd=self.work)
        for b in branches[1:]:
            git("branch", b, cwd=self.work)
        subprocess.run(
            ["git", "clone", "--bare", "--quiet", str(self.work), str(self.remote)], check=True
        )
        git("remote", "add", "origin", str(self.remote), cwd=self.work)
        git("fetch", "--quiet", "origin", cwd=self.work)

    @property
    def url(self) -> str:
        return self.remote.as_uri()

    def commit(self, files: dict[str, str], message: str, branch: str = "A") -> str:
        git("checkout", "--quiet", branch, cwd=self.work)
        for rel, text in files.items():
            path = self.work / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        git("add", "-A", cwd=self.work)
        git("commit", "--quiet", "-m", message, cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work)

    def push(self, branch: str = "A", force: bool = False) -> None:
        args = ["push", "--quiet", "origin", f"{branch}:{branch}"]
        if force:
            args.insert(1, "--force")
        git(*args, cwd=self.work)

    def tip(self, branch: str) -> str:
        return git("rev-parse", f"refs/heads/{branch}", cwd=self.remote)
