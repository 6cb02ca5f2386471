"""The dependency hash changes when dependency files change, and only then."""

from __future__ import annotations

from pathlib import Path

import pytest

from dagfleet.venvs.deps import dependency_files, dependency_hash

pytestmark = pytest.mark.unit

BASE = {
    "pyproject.toml": '[project]\nname = "sales"\ndependencies = ["dagster==1.13.27"]\n',
    "uv.lock": "version = 1\n",
    "requirements.txt": "pandas==2.2.3\n",
    "sales/__init__.py": "",
    "sales/definitions.py": "defs = None\n",
    "README.md": "hello\n",
}


def project(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.mark.parametrize(
    ("case", "edit", "changes"),
    [
        ("code change", {"sales/definitions.py": "defs = 1\n"}, False),
        ("new module", {"sales/more.py": "x = 1\n"}, False),
        ("readme", {"README.md": "bye\n"}, False),
        ("nested requirements file is not read", {"sub/requirements.txt": "x\n"}, False),
        ("non-matching name", {"requirements.in": "x\n"}, False),
        ("pyproject.toml", {"pyproject.toml": '[project]\nname = "sales"\n'}, True),
        ("uv.lock", {"uv.lock": "version = 2\n"}, True),
        ("requirements.txt", {"requirements.txt": "pandas==2.2.2\n"}, True),
        ("new requirements-dev.txt", {"requirements-dev.txt": "pytest\n"}, True),
        ("new setup.py", {"setup.py": "from setuptools import setup\n"}, True),
        ("new setup.cfg", {"setup.cfg": "[metadata]\n"}, True),
        ("new .python-version", {".python-version": "3.11\n"}, True),
        ("whitespace in a dependency file", {"uv.lock": "version = 1\n\n"}, True),
    ],
)
def test_hash_follows_dependency_files_only(
    tmp_path: Path, case: str, edit: dict[str, str], changes: bool
) -> None:
    root = project(tmp_path, BASE)
    before = dependency_hash(root)
    assert dependency_hash(root) == before
    project(root, edit)
    assert (dependency_hash(root) != before) is changes


def test_removing_a_dependency_file_changes_the_hash(tmp_path: Path) -> None:
    root = project(tmp_path, BASE)
    before = dependency_hash(root)
    (root / "uv.lock").unlink()
    assert dependency_hash(root) != before


def test_content_not_location_decides(tmp_path: Path) -> None:
    one = project(tmp_path / "one", BASE)
    two = project(tmp_path / "checkouts" / "deadbeef", BASE)
    assert dependency_hash(one) == dependency_hash(two)
    assert len(dependency_hash(one)) == 16


def test_file_names_are_part_of_the_hash(tmp_path: Path) -> None:
    same_text = "dagster\n"
    one = project(tmp_path / "one", {"requirements.txt": same_text})
    two = project(tmp_path / "two", {"requirements-prod.txt": same_text})
    assert dependency_hash(one) != dependency_hash(two)


def test_salt_changes_the_hash(tmp_path: Path) -> None:
    root = project(tmp_path, BASE)
    assert dependency_hash(root, "py3.11;dagster=1.13.27") != dependency_hash(
        root, "py3.12;dagster=1.13.27"
    )


def test_dependency_files_listed_in_stable_order(tmp_path: Path) -> None:
    root = project(tmp_path, {**BASE, "requirements-b.txt": "", "requirements-a.txt": ""})
    assert [p.name for p in dependency_files(root)] == [
        "pyproject.toml",
        "uv.lock",
        "requirements-a.txt",
        "requirements-b.txt",
        "requirements.txt",
    ]
    assert dependency_files(tmp_path / "sales") == []
