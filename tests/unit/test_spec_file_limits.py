"""Fleet files read strictly (issue 16, item 2): duplicate keys, nesting depth, size,
expanded aliases. Each refusal names the file, the line and the key or the limit."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from dagfleet.spec import SpecError, load_fleet
from dagfleet.spec.strictyaml import MAX_DEPTH, MAX_FILE_BYTES, MAX_VALUES

pytestmark = pytest.mark.unit

FLEET_OK = "name: acme\nenvironments:\n  - {name: A, branch: A}\n  - {name: B}\n"
REPO_OK = "name: sales\ngit_url: https://github.com/acme/sales.git\nmodule_name: sales.defs\n"


def fleet_dir(root: Path, fleet: str = FLEET_OK, repo: str | bytes = REPO_OK) -> Path:
    (root / "repos").mkdir(parents=True)
    (root / "fleet.yaml").write_text(fleet)
    path = root / "repos" / "sales.yaml"
    if isinstance(repo, bytes):
        path.write_bytes(repo)
    else:
        path.write_text(repo)
    return root


def problems(root: Path) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_fleet(root)
    return [str(p) for p in caught.value.problems]


def test_duplicate_top_level_key_in_a_repo_file_names_file_line_and_key(tmp_path: Path) -> None:
    repo = REPO_OK + "suspend: true\nsuspend: false\n"
    assert problems(fleet_dir(tmp_path, repo=repo)) == [
        "repos/sales.yaml: suspend: line 5: duplicate key 'suspend' (first on line 4): "
        "keep one of them"
    ]


def test_duplicate_name_in_a_fleet_environment_names_its_path(tmp_path: Path) -> None:
    fleet = "name: acme\nenvironments:\n  - name: A\n    branch: A\n    name: B\n"
    assert problems(fleet_dir(tmp_path, fleet=fleet)) == [
        "fleet.yaml: environments[0].name: line 5: duplicate key 'name' (first on line 3): "
        "keep one of them"
    ]


def test_duplicate_key_in_a_flow_mapping_and_a_nested_one(tmp_path: Path) -> None:
    repo = REPO_OK + "environment:\n  - {name: X, value: a, value: b}\n"
    assert problems(fleet_dir(tmp_path, repo=repo)) == [
        "repos/sales.yaml: environment[0].value: line 5: duplicate key 'value' "
        "(first on line 5): keep one of them"
    ]
    (tmp_path / "repos" / "sales.yaml").write_text(REPO_OK + "branches:\n  A: main\n  'A': dev\n")
    assert problems(tmp_path) == [
        "repos/sales.yaml: branches.A: line 6: duplicate key 'A' (first on line 5): "
        "keep one of them"
    ]


def test_keys_that_mean_the_same_value_are_duplicates(tmp_path: Path) -> None:
    repo = REPO_OK + 'resources:\n  cpu: 1\n  "cpu": 2\n'
    assert "duplicate key 'cpu'" in problems(fleet_dir(tmp_path, repo=repo))[0]


def test_merge_keys_override_without_being_duplicates(tmp_path: Path) -> None:
    # `<<` merges its mapping and the explicit key wins, as YAML says: no duplicate
    repo = "name: sales\n<<: {git_url: https://github.com/acme/sales.git, suspend: true}\n"
    repo += "suspend: false\nmodule_name: sales.defs\n"
    fleet = load_fleet(fleet_dir(tmp_path, repo=repo))
    assert fleet.repos["sales"].suspend is False


def test_nesting_deeper_than_the_limit_is_refused_not_a_traceback(tmp_path: Path) -> None:
    repo = REPO_OK + "build: " + "[" * 100_000 + "]" * 100_000 + "\n"
    assert problems(fleet_dir(tmp_path, repo=repo)) == [
        f"repos/sales.yaml: line 4, column {MAX_DEPTH + 7}: nested deeper than {MAX_DEPTH} "
        "levels: fleet files need a few; flatten what is nested this deep"
    ]
    (tmp_path / "fleet.yaml").write_text("[" * 100_000)
    assert problems(tmp_path)[0].startswith(f"fleet.yaml: line 1, column {MAX_DEPTH + 1}: nested")


def test_nesting_within_the_limit_loads(tmp_path: Path) -> None:
    depth = MAX_DEPTH - 4  # the document, instance, dagster and the scalar are four more
    nested = "{a: " * depth + "1" + "}" * depth
    fleet = FLEET_OK + f"instance:\n  dagster:\n    run_retries: {nested}\n"
    with pytest.raises(SpecError) as caught:  # run_retries' shape is Dagster's to judge
        load_fleet(fleet_dir(tmp_path, fleet=fleet))
    assert not any("nested deeper" in str(p) for p in caught.value.problems)


def test_a_file_over_the_size_limit_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    entries = "".join(f"  - {{name: VAR_{i:06d}, value: v}}\n" for i in range(300_000))
    repo = REPO_OK + "environment:\n" + entries
    size = len(repo.encode())
    assert size > 9_500_000
    root = fleet_dir(tmp_path, repo=repo)
    found = problems(root)  # refused by its size: the file is never parsed
    assert found == [
        f"repos/sales.yaml: is {size:,} bytes, over the {MAX_FILE_BYTES:,}-byte limit "
        "for a fleet file: a repo file is a few kilobytes; remove what it does not need"
    ]


def test_a_file_at_the_size_limit_loads_within_seconds(tmp_path: Path) -> None:
    line = "  - {name: VAR_000000, value: v}\n"
    head = REPO_OK + "environment:\n"
    count = (MAX_FILE_BYTES - len(head)) // len(line)
    repo = head + "".join(f"  - {{name: VAR_{i:06d}, value: v}}\n" for i in range(count))
    assert MAX_FILE_BYTES - len(line) < len(repo.encode()) <= MAX_FILE_BYTES
    started = time.monotonic()
    fleet = load_fleet(fleet_dir(tmp_path, repo=repo))
    assert len(fleet.repos["sales"].environment) == count
    print(f"loaded in {time.monotonic() - started:.2f} s")  # about 1 s here; measured, not asserted


def test_aliases_that_expand_past_the_limit_are_refused(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    repo = REPO_OK + "\n".join(lines) + "\n"
    found = problems(fleet_dir(tmp_path, repo=repo))
    assert len(found) == 1
    assert found[0].startswith("repos/sales.yaml: line ")
    assert f"more than {MAX_VALUES:,} values once its aliases are expanded" in found[0]


def test_an_alias_inside_its_own_anchor_is_refused(tmp_path: Path) -> None:
    repo = REPO_OK + "build: &loop [*loop]\n"
    assert problems(fleet_dir(tmp_path, repo=repo)) == [
        "repos/sales.yaml: line 4, column 15: alias *loop is inside the value it names: "
        "a fleet file cannot contain itself"
    ]


def test_invalid_utf8_and_yaml_errors_still_name_the_file(tmp_path: Path) -> None:
    found = problems(fleet_dir(tmp_path, repo=b"name: \xff\n"))
    assert found[0].startswith("repos/sales.yaml: cannot be read: ")
    (tmp_path / "repos" / "sales.yaml").write_text("name: [unclosed\n")
    assert problems(tmp_path)[0].startswith("repos/sales.yaml: line 2, column 1: invalid YAML: ")
