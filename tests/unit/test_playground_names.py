"""Playground file names: what the API and the CLI accept, and why they refuse the rest."""

from __future__ import annotations

import pytest

from dagfleet.control import ControlError
from dagfleet.service.playground import (
    MAX_FILE_BYTES,
    check_environment,
    check_file_name,
    check_size,
)
from dagfleet.spec.models import FleetSpec

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "name",
    ["my_asset.py", "a.py", "Sales2.py", "x_1_y.py", "a" * 97 + ".py"],
)
def test_accepted(name: str) -> None:
    assert check_file_name(name) is None


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("__init__.py", "loader"),
        ("../x.py", "path parts"),
        ("a/b.py", "path parts"),
        ("/etc/x.py", "path parts"),
        ("a\\b.py", "path parts"),
        ("..", "path parts"),
        ("_private.py", "starts with '_'"),
        (".hidden.py", "starts with '.'"),
        ("x.txt", "not a Python file"),
        ("x", "not a Python file"),
        ("", "not a Python file"),
        ("x.py.bak", "not a Python file"),
        ("my-asset.py", "importable"),
        ("1st.py", "importable"),
        ("a b.py", "importable"),
        ("class.py", "importable"),
        ("x.y.py", "importable"),
        ("é.py", "importable"),
        ("a" * 98 + ".py", "at most 100"),
    ],
)
def test_refused(name: str, why: str) -> None:
    problem = check_file_name(name)
    assert problem is not None and why in problem, problem


def test_size_cap() -> None:
    assert check_size("a.py", MAX_FILE_BYTES) is None
    problem = check_size("a.py", MAX_FILE_BYTES + 1)
    assert problem is not None and str(MAX_FILE_BYTES) in problem


SPEC = FleetSpec.model_validate(
    {"environments": [{"name": "A", "playground": True}, {"name": "B"}]}
)


@pytest.mark.parametrize(
    ("env", "status", "words"),
    [
        ("C", 404, "unknown environment 'C': fleet.yaml defines A, B"),
        ("B", 409, "set playground: true on environment B in fleet.yaml"),
    ],
)
def test_environment_refusals(env: str, status: int, words: str) -> None:
    with pytest.raises(ControlError) as info:
        check_environment(SPEC, env)
    assert info.value.status_code == status
    assert words in str(info.value)


def test_environment_with_playground() -> None:
    check_environment(SPEC, "A")
