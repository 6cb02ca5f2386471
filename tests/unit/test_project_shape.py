"""Which files decide how a checkout is installed (uv's rules), read without installing."""

from __future__ import annotations

from pathlib import Path

import pytest

from dagfleet.venvs import dagster_range
from dagfleet.venvs.builder import Resolution, _conflicting_dagster, is_transient
from dagfleet.venvs.dagster_range import DagsterVersionUnsupported
from dagfleet.venvs.project import detect, locked_version

pytestmark = pytest.mark.unit


def tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


BUILD = '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'
PROJECT = '[project]\nname = "p"\nversion = "0"\ndependencies = ["dagster"]\n'


@pytest.mark.parametrize(
    ("files", "locked", "packaged", "sources"),
    [
        ({"pyproject.toml": PROJECT + BUILD, "uv.lock": ""}, True, True, ["pyproject.toml"]),
        ({"pyproject.toml": PROJECT}, False, False, ["pyproject.toml"]),
        (
            {"pyproject.toml": PROJECT + BUILD + "[tool.uv]\npackage = false\n"},
            False,
            False,
            ["pyproject.toml"],
        ),
        ({"setup.py": "from setuptools import setup\nsetup()\n"}, False, True, ["setup.py"]),
        (
            {"setup.cfg": "[metadata]\nname = p\n", "pyproject.toml": BUILD},
            False,
            True,
            ["pyproject.toml"],
        ),
        (
            {"requirements.txt": "dagster\n", "requirements-dev.txt": "pytest\n"},
            False,
            False,
            ["requirements-dev.txt", "requirements.txt"],
        ),
        (
            {"requirements.txt": "dagster\n", "pyproject.toml": "[tool.ruff]\nline-length = 99\n"},
            False,
            False,
            ["requirements.txt"],
        ),
        (
            {"pyproject.toml": '[tool.poetry]\nname = "p"\n' + BUILD},
            False,
            True,
            ["pyproject.toml"],
        ),
    ],
)
def test_detects_each_shape(
    tmp_path: Path, files: dict[str, str], locked: bool, packaged: bool, sources: list[str]
) -> None:
    shape = detect(tree(tmp_path, files))
    assert (shape.locked, shape.packaged) == (locked, packaged)
    assert [p.name for p in shape.sources] == sources


def test_reads_the_locked_dagster_version(tmp_path: Path) -> None:
    lock = (
        '[[package]]\nname = "six"\nversion = "1.0"\n\n'
        '[[package]]\nname = "dagster"\nversion = "1.11.3"\n'
    )
    assert locked_version(tree(tmp_path, {"uv.lock": lock}), "dagster") == "1.11.3"
    assert locked_version(tmp_path, "pandas") is None


def test_supported_range_follows_the_central_minor() -> None:
    assert dagster_range.supported_spec("1.13.27") == "dagster>=1.10,<1.14"
    dagster_range.check("1.10.0", "1.13.27")
    dagster_range.check("1.13.29", "1.13.27")  # a newer patch of the same minor
    for outside in ("1.9.5", "1.14.0", "2.0.0"):
        with pytest.raises(DagsterVersionUnsupported) as caught:
            dagster_range.check(outside, "1.13.27")
        assert outside in str(caught.value) and "1.13.27" in str(caught.value)


def test_network_failures_are_transient_resolution_failures_are_not() -> None:
    assert is_transient(
        "error: Failed to fetch: `http://127.0.0.1:9/simple/six/`\n  Caused by: "
        "Request failed after 3 retries\n  Caused by: error sending request\n"
        "  Caused by: tcp connect error: Connection refused (os error 111)"
    )
    assert not is_transient(
        "x No solution found when resolving dependencies:\n  ╰─▶ Because "
        "there is no version of nope==1.0 and you require nope==1.0, we can "
        "conclude that your requirements are unsatisfiable."
    )
    assert not is_transient("error: Failed to build `slowpkg @ file:///x`\n  SyntaxError")


def test_a_repo_pin_outside_the_range_is_named() -> None:
    ours = dagster_range.supported_spec()
    output = (
        "x No solution found when resolving dependencies:\n"
        f"  ╰─▶ Because you require dagster==1.9.3 and {ours}, we can conclude that your "
        "requirements are unsatisfiable."
    )
    assert _conflicting_dagster(output) == "==1.9.3"
    other = output.replace("dagster==1.9.3", "pandas==0.0.1")
    assert _conflicting_dagster(other) is None


def test_resolution_controls_become_uv_flags(tmp_path: Path) -> None:
    controls = Resolution(constraints=("dbt-core<1.12",), overrides=("protobuf==5.29.0",))
    args = controls.args(tmp_path)
    assert args[0] == "--constraint" and args[2] == "--override"
    assert Path(args[1]).read_text() == "dbt-core<1.12\n"
    assert Path(args[3]).read_text() == "protobuf==5.29.0\n"
    assert Resolution().args(tmp_path / "none") == []
    assert Resolution().salt() != controls.salt()
