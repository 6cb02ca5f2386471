"""Common Dagster project shapes as real git repositories, made at test time.

Each shape is what some team's repository really looks like (a uv project with
its lock, setuptools with setup.py, poetry-core, pdm-backend, a `dg` project,
the output of the real `create-dagster` ...), with one job of three tiny
assets that runs in-process. `ShapeRepo(root, "uv_lock")` writes the files,
commits them to branch A, branches B from it and pushes both to a bare
`file://` remote, like `CodeRepo`. Registering it needs nothing but its URL:
dagfleet must discover the code target and build the environment itself.

Dagster is left unpinned or `>=1.13,<1.14` everywhere (create-dagster pins
its own version), so code servers may run a different 1.13.x than the central
instance.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.gitrepo import CodeRepo, git

DAGSTER_RANGE = "dagster>=1.13,<1.14"
CREATE_DAGSTER = "create-dagster==1.13.28"
TOOL_TIMEOUT = 600


def uv_binary() -> str:
    """The uv next to this interpreter (the project venv has one), else on PATH."""
    here = Path(sys.executable).parent / "uv"
    if here.exists():
        return str(here)
    found = shutil.which("uv") or shutil.which("uv", path=str(Path.home() / ".local" / "bin"))
    if not found:
        raise RuntimeError("uv not found: run scripts/bootstrap")
    return found


def run_tool(args: list[str], cwd: Path) -> str:
    """Run a tool as a user would, with its output in the error when it fails."""
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env["UV_PYTHON_DOWNLOADS"] = "never"
    env["DAGSTER_DISABLE_TELEMETRY"] = "true"
    result = subprocess.run(
        args,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result.stdout + result.stderr


def base_python() -> str:
    return getattr(sys, "_base_executable", sys.executable)


def assets_source(prefix: str, definitions: bool = True) -> str:
    """Three chained assets and a job that materializes them in-process.

    Names carry `prefix` so that many shapes can share one fleet (one webserver)
    without two locations defining the same asset key.
    """
    names = ", ".join(f"{prefix}_{a}" for a in ("raw", "clean", "report"))
    imports = "asset, define_asset_job, in_process_executor"
    body = textwrap.dedent(
        f"""
        from dagster import {"Definitions, " if definitions else ""}{imports}


        @asset
        def {prefix}_raw() -> int:
            return 1


        @asset
        def {prefix}_clean({prefix}_raw: int) -> int:
            return {prefix}_raw + 1


        @asset
        def {prefix}_report({prefix}_clean: int) -> int:
            return {prefix}_clean * 2


        {prefix}_job = define_asset_job(
            "{prefix}_job",
            selection=[{", ".join(repr(n) for n in names.split(", "))}],
            executor_def=in_process_executor,
        )
        """
    ).lstrip()
    if definitions:
        body += f"\ndefs = Definitions(assets=[{names}], jobs=[{prefix}_job])\n"
    return body


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())


def package(where: str, prefix: str) -> dict[str, str]:
    """A package at `where` (e.g. `src/foo`) whose `definitions` module holds the job."""
    return {f"{where}/__init__.py": "", f"{where}/definitions.py": assets_source(prefix)}


GITIGNORE = "__pycache__/\n.venv/\n*.egg-info/\nbuild/\ndist/\n"


# --- the shapes -------------------------------------------------------------------------


def _uv_lock(work: Path) -> None:
    write(
        work,
        {
            ".gitignore": GITIGNORE,
            "pyproject.toml": f"""
                [project]
                name = "uvlock-demo"
                version = "0.1.0"
                requires-python = ">=3.10"
                dependencies = ["{DAGSTER_RANGE}"]

                [build-system]
                requires = ["hatchling"]
                build-backend = "hatchling.build"

                [tool.dagster]
                module_name = "uvlock_demo.definitions"
                """,
            **package("src/uvlock_demo", "uvlock"),
        },
    )
    run_tool([uv_binary(), "lock", "--python", base_python()], work)


def _pep621_no_lock(work: Path) -> None:
    write(
        work,
        {
            ".gitignore": GITIGNORE,
            "pyproject.toml": f"""
                [project]
                name = "pep621-demo"
                version = "0.1.0"
                requires-python = ">=3.10"
                dependencies = ["{DAGSTER_RANGE}"]

                [build-system]
                requires = ["setuptools>=64"]
                build-backend = "setuptools.build_meta"

                [tool.setuptools.packages.find]
                include = ["pep621_demo*"]

                [tool.dagster]
                module_name = "pep621_demo.definitions"
                """,
            **package("pep621_demo", "pep621"),
            "pep621_demo_tests/__init__.py": "",
        },
    )


def _setup_py(work: Path) -> None:
    # What `dagster project scaffold` used to write, minus its pyproject.toml.
    write(
        work,
        {
            ".gitignore": GITIGNORE,
            "setup.py": f"""
                from setuptools import find_packages, setup

                setup(
                    name="setuppy_demo",
                    version="0.1.0",
                    packages=find_packages(exclude=["setuppy_demo_tests"]),
                    install_requires=["{DAGSTER_RANGE}"],
                )
                """,
            "workspace.yaml": """
                load_from:
                  - python_module: setuppy_demo.definitions
                """,
            **package("setuppy_demo", "setuppy"),
            "setuppy_demo_tests/__init__.py": "",
        },
    )


def _setup_cfg(work: Path) -> None:
    write(
        work,
        {
            ".gitignore": GITIGNORE,
            "setup.cfg": f"""
                [metadata]
                name = setupcfg-demo
                version = 0.1.0

                [options]
                packages = find:
                python_requires = >=3.10
                install_requires =
                    {DAGSTER_RANGE}

                [options.packages.find]
                exclude = tests*
                """,
            "pyproject.toml": """
                [build-system]
                requires = ["setuptools>=64"]
                build-backend = "setuptools.build_meta"
                """,
            "workspace.yaml": """
                load_from:
                  - python_module:
                      module_name: setupcfg_demo.definitions
                """,
            **package("setupcfg_demo", "setupcfg"),
            "tests/__init__.py": "",
        },
    )


def _requirements(work: Path) -> None:
    write(
        work,
        {
            ".gitignore": GITIGNORE,
            "requirements.txt": f"{DAGSTER_RANGE}\n",
            "definitions.py": assets_source("reqs"),
            "workspace.yaml": """
                load_from:
                  - python_file: definitions.py
                """,
        },
    )


def _poetry_core(work: Path) -> None:
    write(
        work,
        {
            ".gitignore": GITIGNORE,
            "pyproject.toml": """
                [tool.poetry]
                name = "poetry-demo"
                version = "0.1.0"
                description = "a Dagster project built with poetry-core"
                authors = ["Data Team <data@example.com>"]
                packages = [{ include = "poetry_demo", from = "src" }]

                [tool.poetry.dependencies]
                python = ">=3.10,<3.15"
                dagster = ">=1.13,<1.14"

                [build-system]
                requires = ["poetry-core>=1.0.0"]
                build-backend = "poetry.core.masonry.api"

                [tool.dagster]
                module_name = "poetry_demo.definitions"
                """,
            **package("src/poetry_demo", "poetry"),
        },
    )


def _pdm_backend(work: Path) -> None:
    write(
        work,
        {
            ".gitignore": GITIGNORE,
            "pyproject.toml": f"""
                [project]
                name = "pdm-demo"
                version = "0.1.0"
                requires-python = ">=3.10"
                dependencies = ["{DAGSTER_RANGE}"]

                [build-system]
                requires = ["pdm-backend"]
                build-backend = "pdm.backend"

                [tool.pdm]
                distribution = true

                [tool.dagster]
                module_name = "pdm_demo.definitions"
                """,
            **package("src/pdm_demo", "pdm"),
        },
    )


DG_DEFINITIONS = """
    from pathlib import Path

    from dagster import definitions, load_from_defs_folder


    @definitions
    def defs():
        return load_from_defs_folder(path_within_project=Path(__file__).parent)
    """


def _dg_project(work: Path) -> None:
    # Hand-written, as create-dagster lays it out (src/<root_module>/defs/...).
    write(
        work,
        {
            ".gitignore": GITIGNORE,
            "pyproject.toml": f"""
                [project]
                name = "dgproj_demo"
                version = "0.1.0"
                requires-python = ">=3.10,<3.15"
                dependencies = ["{DAGSTER_RANGE}"]

                [build-system]
                requires = ["hatchling"]
                build-backend = "hatchling.build"

                [tool.hatch.build.targets.wheel]
                force-include = {{ "pyproject.toml" = "pyproject.toml" }}

                [tool.dg]
                directory_type = "project"

                [tool.dg.project]
                root_module = "dgproj_demo"
                registry_modules = ["dgproj_demo.components.*"]
                """,
            "src/dgproj_demo/__init__.py": "",
            "src/dgproj_demo/definitions.py": DG_DEFINITIONS,
            "src/dgproj_demo/defs/__init__.py": "",
            "src/dgproj_demo/defs/assets.py": assets_source("dgproj", definitions=False),
            "tests/__init__.py": "",
        },
    )


def _dg_no_force_include(work: Path) -> None:
    # A dg project written by hand without create-dagster's hatch `force-include` of
    # pyproject.toml: an installed (non-editable) package carries no [tool.dg] table,
    # so load_from_defs_folder must still find the project from where it runs.
    _dg_project(work)
    pyproject = work / "pyproject.toml"
    text = pyproject.read_text()
    force = 'force-include = { "pyproject.toml" = "pyproject.toml" }'
    text = text.replace(f"[tool.hatch.build.targets.wheel]\n{force}\n\n", "")
    assert "force-include" not in text
    pyproject.write_text(text.replace("dgproj", "dgplain"))
    src = work / "src"
    (src / "dgproj_demo").rename(src / "dgplain_demo")
    assets = src / "dgplain_demo" / "defs" / "assets.py"
    assets.write_text(assets_source("dgplain", definitions=False))


def _code_location_target_module(work: Path) -> None:
    write(
        work,
        {
            ".gitignore": GITIGNORE,
            "pyproject.toml": f"""
                [project]
                name = "target_demo"
                version = "0.1.0"
                requires-python = ">=3.10"
                dependencies = ["{DAGSTER_RANGE}"]

                [build-system]
                requires = ["hatchling"]
                build-backend = "hatchling.build"

                [tool.dg]
                directory_type = "project"

                [tool.dg.project]
                root_module = "target_demo"
                code_location_target_module = "target_demo.location"
                """,
            # No definitions.py: only the declared target module holds the Definitions.
            "src/target_demo/__init__.py": "",
            "src/target_demo/location.py": assets_source("target"),
        },
    )


def _unpinned_dagster(work: Path) -> None:
    write(
        work,
        {
            ".gitignore": GITIGNORE,
            "pyproject.toml": """
                [project]
                name = "unpinned_demo"
                version = "0.1.0"
                requires-python = ">=3.10"
                dependencies = ["dagster"]

                [build-system]
                requires = ["hatchling"]
                build-backend = "hatchling.build"

                [tool.dagster]
                module_name = "unpinned_demo.definitions"
                """,
            **package("unpinned_demo", "unpinned"),
        },
    )


def _create_dagster(work: Path) -> None:
    # `create-dagster project .` names the project after the directory (sales_dg).
    run_tool(
        [
            str(Path(uv_binary()).with_name("uvx")),
            "--from",
            CREATE_DAGSTER,
            "create-dagster",
            "project",
            ".",
            "--no-uv-sync",
        ],
        work,
    )
    write(work, {"src/sales_dg/defs/sales.py": assets_source("sales", definitions=False)})


@dataclass(frozen=True)
class Shape:
    name: str
    repo: str  # a valid dagfleet repo name
    prefix: str  # asset and job names start with it
    build: Callable[[Path], None] = field(repr=False)
    dirname: str | None = None  # the working clone's directory name, if it matters
    note: str = ""

    @property
    def job(self) -> str:
        return f"{self.prefix}_job"

    @property
    def assets(self) -> tuple[str, ...]:
        return tuple(f"{self.prefix}_{a}" for a in ("raw", "clean", "report"))


SHAPES: dict[str, Shape] = {
    s.name: s
    for s in (
        Shape("uv_lock", "uv-lock", "uvlock", _uv_lock, note="uv.lock, hatchling, src/"),
        Shape("pep621_no_lock", "pep621", "pep621", _pep621_no_lock, note="setuptools, flat"),
        Shape("setup_py", "setup-py", "setuppy", _setup_py, note="setup.py + workspace.yaml"),
        Shape("setup_cfg", "setup-cfg", "setupcfg", _setup_cfg, note="setup.cfg + build-system"),
        Shape("requirements", "requirements", "reqs", _requirements, note="python_file"),
        Shape("poetry_core", "poetry-core", "poetry", _poetry_core, note="[tool.poetry], src/"),
        Shape("pdm_backend", "pdm-backend", "pdm", _pdm_backend, note="pdm-backend, src/"),
        Shape("dg_project", "dg-project", "dgproj", _dg_project, note="root_module + defs/"),
        Shape(
            "dg_no_force_include",
            "dg-plain",
            "dgplain",
            _dg_no_force_include,
            note="root_module + defs/, no hatch force-include of pyproject.toml",
        ),
        Shape(
            "code_location_target_module",
            "target-module",
            "target",
            _code_location_target_module,
            note="[tool.dg.project] code_location_target_module",
        ),
        Shape("unpinned_dagster", "unpinned", "unpinned", _unpinned_dagster, note="`dagster`"),
        Shape(
            "create_dagster",
            "sales-dg",
            "sales",
            _create_dagster,
            dirname="sales_dg",
            note=f"uvx {CREATE_DAGSTER} project sales_dg --no-uv-sync",
        ),
    )
}


class ShapeRepo(CodeRepo):
    """A working clone of one shape plus its bare remote, branches A and B.

    `commit`, `push`, `tip` and `url` behave as `CodeRepo`'s.
    """

    def __init__(self, root: Path, shape: str, name: str | None = None) -> None:
        self.shape = SHAPES[shape]
        self.name = name or self.shape.repo
        self.remote = root / f"{self.name}.git"
        self.work = root / f"{self.name}-work" / (self.shape.dirname or self.name)
        self.work.mkdir(parents=True)
        self.shape.build(self.work)
        git("init", "--quiet", "--initial-branch", "A", cwd=self.work)
        git("add", "-A", cwd=self.work)
        git("commit", "--quiet", "-m", f"{self.shape.name}: initial", cwd=self.work)
        git("branch", "B", cwd=self.work)
        subprocess.run(
            ["git", "clone", "--bare", "--quiet", str(self.work), str(self.remote)], check=True
        )
        git("remote", "add", "origin", str(self.remote), cwd=self.work)
        git("fetch", "--quiet", "origin", cwd=self.work)

    @property
    def location(self) -> str:
        return f"{self.name}-A"

    def files(self) -> list[str]:
        return git("ls-files", cwd=self.work).splitlines()
