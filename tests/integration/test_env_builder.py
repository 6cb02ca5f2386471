"""Real uv environments: built once per dependency hash, shared, never left half-built.

Needs a warm uv cache for dagster==1.13.27 (the project's own lock pins it).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import psutil
import pytest

from dagfleet.venvs.builder import EnvBuilder, InstallError, PythonEnv

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REQUIREMENTS = "dagster==1.13.27\n"


def versions(env: PythonEnv, *modules: str) -> list[str]:
    """`module.__version__` of each module, imported by the env's own interpreter."""
    code = f"import {', '.join(modules)}; print({', '.join(m + '.__version__' for m in modules)})"
    return subprocess.run(
        [str(env.python), "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()


def project(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture(scope="module")
def venvs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("venvs")


@pytest.fixture(scope="module")
def built(
    venvs: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[EnvBuilder, Path, PythonEnv, bool]:
    src = project(
        tmp_path_factory.mktemp("checkout"),
        {"requirements.txt": REQUIREMENTS, "sales/definitions.py": "defs = 1\n"},
    )
    builder = EnvBuilder(venvs, extras=("dagster-postgres",))
    env, built_now = builder.ensure(src)
    return builder, src, env, built_now


def test_builds_a_working_env(built: tuple[EnvBuilder, Path, PythonEnv, bool]) -> None:
    builder, src, env, built_now = built
    assert built_now is True
    assert env.path == builder.venvs / builder.hash_for(src)
    assert (env.path / ".dagfleet-complete").read_text() == env.hash + "\n"
    assert env.dagster_version() == "1.13.27"
    # Built under a temporary name and renamed: the interpreter must still work there.
    out = subprocess.run(
        [
            str(env.python),
            "-c",
            "import sys, dagster, dagster_postgres, dagfleet_runtime\n"
            "import importlib.util as u\n"
            "print(dagster.__version__, dagster_postgres.__version__, sys.prefix,"
            " u.find_spec('debugpy') is None)",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    # debugpy is not in any env: debugged servers get it from `EnvBuilder.tool`.
    assert out == ["1.13.27", "0.29.27", str(env.path), "True"]
    # Compiled at install: no process started from it compiles Dagster again.
    site = next(env.path.glob("lib/python3*/site-packages"))
    assert list((site / "dagster" / "__pycache__").glob("__init__.*.pyc"))


def test_reused_without_rebuild(built: tuple[EnvBuilder, Path, PythonEnv, bool]) -> None:
    builder, src, env, _ = built
    marker = env.path / ".dagfleet-complete"
    stamp = marker.stat().st_mtime_ns
    again, built_now = builder.ensure(src)
    assert (again, built_now) == (env, False)
    assert marker.stat().st_mtime_ns == stamp
    assert builder.existing(src) == env


def test_same_dependencies_share_the_env_code_changes_do_not_rebuild(
    built: tuple[EnvBuilder, Path, PythonEnv, bool], tmp_path: Path
) -> None:
    builder, _, env, _ = built
    other = project(
        tmp_path / "other-commit",
        {"requirements.txt": REQUIREMENTS, "sales/definitions.py": "defs = 2\n", "NEW.md": "x"},
    )
    assert builder.ensure(other) == (env, False)
    changed = project(tmp_path / "dep-change", {"requirements.txt": REQUIREMENTS + "# bump\n"})
    assert builder.existing(changed) is None
    assert builder.hash_for(changed) != env.hash


def test_uninstallable_requirement_leaves_nothing(
    venvs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Offline: the resolver answers from the cache and queries no registry for this name.
    monkeypatch.setenv("UV_OFFLINE", "1")
    bad = project(
        tmp_path / "bad", {"requirements.txt": REQUIREMENTS + "dagfleet-test-no-such-dist==1.0\n"}
    )
    builder = EnvBuilder(venvs)
    key = builder.hash_for(bad)
    before = {p.name for p in venvs.iterdir()}
    with pytest.raises(InstallError) as caught:
        builder.ensure(bad)
    assert "dagfleet-test-no-such-dist" in caught.value.tail
    assert str(caught.value).startswith("`uv pip install` failed")
    assert caught.value.transient is False  # the repo's to fix: not retried
    after = {p.name for p in venvs.iterdir()}
    assert after - before <= {f".{key}.lock"}, "no env and no .building dir left behind"
    assert builder.existing(bad) is None


def test_the_repos_own_dagster_version_wins(venvs: Path, tmp_path: Path) -> None:
    """A repo pinned to another dagster than dagfleet's own gets that one, and the
    instance's storage client resolved with it (never a computed pin)."""
    older = project(tmp_path / "older", {"requirements.txt": "dagster==1.13.25\n"})
    env, built_now = EnvBuilder(venvs, extras=("dagster-postgres",)).ensure(older)
    assert built_now is True
    assert env.dagster_version() == "1.13.25"
    out = versions(env, "dagster", "dagster_postgres")
    assert out == ["1.13.25", "0.29.25"]


def test_cancel_kills_the_install_and_refuses_new_ones(venvs: Path, tmp_path: Path) -> None:
    """On shutdown an install in progress is killed, not waited for."""
    import threading
    import time

    from dagfleet.venvs.builder import InstallCancelled

    slow = project(
        tmp_path / "slow",
        {
            "requirements.txt": REQUIREMENTS + "./slowpkg\n",
            "slowpkg/setup.py": "import time\ntime.sleep(600)\n",
        },
    )
    builder = EnvBuilder(venvs)
    caught: list[BaseException] = []

    def install() -> None:
        try:
            builder.ensure(slow)
        except BaseException as exc:
            caught.append(exc)

    worker = threading.Thread(target=install)
    worker.start()

    def building() -> list[psutil.Process]:
        return [
            p
            for p in psutil.Process().children(recursive=True)
            if "build_meta" in " ".join(p.cmdline())  # uv's PEP 517 build of slowpkg
        ]

    try:
        deadline = time.monotonic() + 120
        while not building() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert building(), "uv never started building slowpkg"
    finally:
        builder.cancel()  # also when the assertion failed: never leave uv running
        worker.join(30)
    assert not worker.is_alive()
    assert building() == []
    assert len(caught) == 1 and isinstance(caught[0], InstallCancelled)
    assert builder.existing(slow) is None
    with pytest.raises(InstallCancelled):
        EnvBuilder.ensure(builder, project(tmp_path / "later", {"requirements.txt": "six\n"}))


def test_repo_constraints_and_overrides_steer_the_resolution(venvs: Path, tmp_path: Path) -> None:
    """A repo file's uv controls: a constraint limits a version nobody pinned, an
    override replaces the repo's own pin; both change the env's hash."""
    from dagfleet.venvs.builder import Resolution

    src = project(tmp_path / "steered", {"requirements.txt": REQUIREMENTS + "six==1.16.0\nidna\n"})
    controls = Resolution(constraints=("idna<3.5",), overrides=("six==1.17.0",))
    builder = EnvBuilder(venvs)
    assert builder.hash_for(src, controls) != builder.hash_for(src)
    env, _ = builder.ensure(src, controls)
    out = subprocess.run(
        [str(env.python), "-c", "import idna, six; print(idna.__version__, six.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out[1] == "1.17.0"
    assert tuple(int(p) for p in out[0].split(".")[:2]) < (3, 5)


def test_storage_client_follows_the_repos_exact_dagster(venvs: Path, tmp_path: Path) -> None:
    """create-dagster pins the newest dagster (1.13.28), whose dagster-postgres may not be
    on the index yet: the env keeps the repo's dagster and gets the storage client of the
    same release series, never an ancient one that happens to have no dagster pin."""
    pinned = project(tmp_path / "pinned", {"requirements.txt": "dagster==1.13.28\n"})
    env, _ = EnvBuilder(venvs, extras=("dagster-postgres",)).ensure(pinned)
    out = versions(env, "dagster", "dagster_postgres")
    assert out[0] == "1.13.28"
    assert out[1].startswith("0.29."), out
