"""Code target discovery from a checkout's pyproject.toml or workspace.yaml."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from dagfleet.discovery import DiscoveryError, discover_target

pytestmark = pytest.mark.unit

SEED_000_WORKSPACE = """\
load_from:
  # 1. The main location, synced from this git repo
  - python_module:
      module_name: my_dagster_project.definitions
      location_name: "git_synced_code"

  # 2. The playground location, for ad-hoc testing
  - python_package:
      package_name: playground
      location_name: "playground"
"""


def checkout(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


@pytest.mark.parametrize(
    ("case", "files", "kind", "value"),
    [
        (
            "[tool.dagster] module_name",
            {"pyproject.toml": '[tool.dagster]\nmodule_name = "sales.defs"\n'},
            "module_name",
            "sales.defs",
        ),
        (
            "[tool.dagster] python_file",
            {"pyproject.toml": '[tool.dagster]\npython_file = "src/defs.py"\n'},
            "python_file",
            "src/defs.py",
        ),
        (
            "[tool.dagster] package_name",
            {"pyproject.toml": '[tool.dagster]\npackage_name = "sales"\n'},
            "package_name",
            "sales",
        ),
        (
            "[tool.dagster] module_name preferred over python_file",
            {"pyproject.toml": '[tool.dagster]\npython_file = "d.py"\nmodule_name = "m"\n'},
            "module_name",
            "m",
        ),
        (
            "[tool.dg.project] root_module",
            {
                "pyproject.toml": '[tool.dg]\ndirectory_type = "project"\n'
                '[tool.dg.project]\nroot_module = "sales"\n'
            },
            "module_name",
            "sales.definitions",
        ),
        (
            "[tool.dg.project] code_location_target_module wins over root_module",
            {
                "pyproject.toml": '[tool.dg.project]\nroot_module = "sales"\n'
                'code_location_target_module = "sales.custom_defs"\n'
            },
            "module_name",
            "sales.custom_defs",
        ),
        (
            "[tool.dagster] wins over [tool.dg]",
            {
                "pyproject.toml": '[tool.dagster]\nmodule_name = "a"\n'
                '[tool.dg.project]\nroot_module = "b"\n'
            },
            "module_name",
            "a",
        ),
        (
            "pyproject before workspace.yaml",
            {
                "pyproject.toml": '[tool.dagster]\nmodule_name = "from_pyproject"\n',
                "workspace.yaml": "load_from:\n  - python_module: from_workspace\n",
            },
            "module_name",
            "from_pyproject",
        ),
        (
            "pyproject without a target falls through to workspace.yaml",
            {
                "pyproject.toml": '[project]\nname = "x"\n[tool.dagster]\n'
                'code_location_name = "x"\n',
                "workspace.yaml": "load_from:\n  - python_module: from_workspace\n",
            },
            "module_name",
            "from_workspace",
        ),
        (
            "seed 000 workspace.yaml, playground entry skipped",
            {"workspace.yaml": SEED_000_WORKSPACE},
            "module_name",
            "my_dagster_project.definitions",
        ),
        (
            "playground entry first is skipped too",
            {
                "workspace.yaml": "load_from:\n"
                "  - python_package: {package_name: playground, location_name: playground}\n"
                "  - python_file: {relative_path: defs/main.py, location_name: x}\n"
            },
            "python_file",
            "defs/main.py",
        ),
        (
            "workspace python_file string form",
            {"workspace.yaml": "load_from:\n  - python_file: defs.py\n"},
            "python_file",
            "defs.py",
        ),
        (
            "workspace python_module string form",
            {"workspace.yaml": "load_from:\n  - python_module: sales.defs\n"},
            "module_name",
            "sales.defs",
        ),
        (
            "workspace python_package mapping",
            {"workspace.yaml": "load_from:\n  - python_package: {package_name: sales}\n"},
            "package_name",
            "sales",
        ),
        (
            "grpc_server entries are not code targets",
            {
                "workspace.yaml": "load_from:\n"
                "  - grpc_server: {host: x, port: 4000, location_name: remote}\n"
                "  - python_module: {module_name: here}\n"
            },
            "module_name",
            "here",
        ),
        (
            "workspace.yml spelling",
            {"workspace.yml": "load_from:\n  - python_module: sales.defs\n"},
            "module_name",
            "sales.defs",
        ),
    ],
)
def test_discovered(
    tmp_path: Path, case: str, files: dict[str, str], kind: str, value: str
) -> None:
    target = discover_target(checkout(tmp_path, files))
    assert (target.kind, target.value, target.working_directory) == (kind, value, ".")


def test_working_directory_is_where_discovery_looks(tmp_path: Path) -> None:
    root = checkout(
        tmp_path,
        {
            "pyproject.toml": '[tool.dagster]\nmodule_name = "top"\n',
            "sub/pyproject.toml": '[tool.dagster]\nmodule_name = "nested.defs"\n',
        },
    )
    target = discover_target(root, "sub")
    assert (target.value, target.working_directory) == ("nested.defs", "sub")
    assert target.dagster_args()[:2] == ["-m", "nested.defs"]


@pytest.mark.parametrize(
    ("case", "files", "message"),
    [
        (
            "nothing at all",
            {"README.md": "hi"},
            "no code target: set module_name, python_file or package_name in the repo file, "
            "or add [tool.dagster] module_name to pyproject.toml, or a workspace.yaml",
        ),
        (
            "pyproject without dagster settings",
            {"pyproject.toml": '[project]\nname = "x"\n'},
            "no code target: set module_name",
        ),
        (
            "invalid TOML",
            {"pyproject.toml": "[tool.dagster\nmodule_name = 1\n"},
            "pyproject.toml: invalid TOML: ",
        ),
        (
            "invalid workspace YAML",
            {"workspace.yaml": "load_from: [\n"},
            "workspace.yaml: invalid YAML: ",
        ),
        (
            "workspace without load_from",
            {"workspace.yaml": "something: else\n"},
            "workspace.yaml: load_from: add at least one python_module entry",
        ),
        (
            "workspace that is a list",
            {"workspace.yaml": "- python_module: x\n"},
            "workspace.yaml: load_from: add at least one python_module entry",
        ),
        (
            "workspace with only the playground",
            {
                "workspace.yaml": "load_from:\n"
                "  - python_package: {package_name: playground, location_name: playground}\n"
            },
            "workspace.yaml: load_from: no python_module, python_package or python_file entry",
        ),
        (
            "workspace with only grpc servers",
            {"workspace.yaml": "load_from:\n  - grpc_server: {host: x, port: 1}\n"},
            "workspace.yaml: load_from: no python_module, python_package or python_file entry",
        ),
        (
            "[tool.dagster] invalid module name",
            {"pyproject.toml": '[tool.dagster]\nmodule_name = "my-pkg.defs"\n'},
            "module_name: 'my-pkg.defs' is not a valid Python module name",
        ),
        (
            "[tool.dg] invalid root module",
            {"pyproject.toml": '[tool.dg.project]\nroot_module = "os; rm"\n'},
            "module_name: 'os; rm.definitions' is not a valid Python module name",
        ),
        (
            "workspace python_file leaving the repo",
            {"workspace.yaml": "load_from:\n  - python_file: ../../etc/defs.py\n"},
            "python_file: '../../etc/defs.py' leaves the repository: remove '..'",
        ),
        (
            "workspace absolute python_file",
            {"workspace.yaml": "load_from:\n  - python_file: {relative_path: /etc/defs.py}\n"},
            "python_file: '/etc/defs.py' is absolute",
        ),
        (
            "workspace invalid package name",
            {"workspace.yaml": "load_from:\n  - python_package: {package_name: 'a b'}\n"},
            "package_name: 'a b' is not a valid Python module name",
        ),
    ],
)
def test_discovery_errors(tmp_path: Path, case: str, files: dict[str, str], message: str) -> None:
    with pytest.raises(DiscoveryError) as caught:
        discover_target(checkout(tmp_path, files))
    assert str(caught.value).startswith(message)


def test_workspace_python_package_string_form(tmp_path: Path) -> None:
    root = checkout(tmp_path, {"workspace.yaml": "load_from:\n  - python_package: sales\n"})
    target = discover_target(root)
    assert (target.kind, target.value) == ("package_name", "sales")


def test_workspace_entry_attribute_and_working_directory_kept(tmp_path: Path) -> None:
    root = checkout(
        tmp_path,
        {
            "workspace.yaml": "load_from:\n  - python_module:\n      module_name: pkg.defs\n"
            "      attribute: prod_defs\n      working_directory: src\n"
        },
    )
    target = discover_target(root)
    assert (target.attribute, target.working_directory) == ("prod_defs", "src")
