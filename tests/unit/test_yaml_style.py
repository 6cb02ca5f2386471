"""Golden tests of the one YAML writer: a GitOps diff shows the lines a change made, no others.

Files are written the way `repo add` writes them (Registry.create) or by hand in
other styles, then suspended, resumed, re-branched and replaced through the
registry; every line the change did not touch must be byte-identical.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import pytest
import yaml

from dagfleet.registry import Registry
from dagfleet.spec import load_fleet
from dagfleet.spec.defaults import default_fleet_document
from dagfleet.yamledit import (
    HOUSE,
    Style,
    detect_style,
    dump_new,
    merge_patch_text,
    replace_text,
)

pytestmark = pytest.mark.unit


def diff(before: str, after: str) -> tuple[list[str], list[str]]:
    """(lines removed, lines added) between two texts."""
    removed, added = [], []
    for line in difflib.ndiff(before.splitlines(), after.splitlines()):
        if line.startswith("- "):
            removed.append(line[2:])
        elif line.startswith("+ "):
            added.append(line[2:])
    return removed, added


@pytest.fixture
def reg(tmp_path: Path) -> Registry:
    (tmp_path / "fleet.yaml").write_text(dump_new(default_fleet_document()))
    (tmp_path / "repos").mkdir()
    return Registry(tmp_path)


# One repo, written by hand in the styles people use. Each has a `branch: main` line
# with a comment, one environment variable REGION=eu-west-1 and nothing suspended.
INDENTLESS = """\
# Sales pipelines. Owner: #data-sales.
name: sales
git_url: "https://example.com/sales.git"   # mirrored nightly
branch: main  # the team's branch

environment:
- name: REGION
  value: 'eu-west-1'
- name: TOKEN
  from_env: SALES_TOKEN
environments:
- A
- B
resources:
  cpu: 500
"""

INDENTED = """\
name: sales
git_url: https://example.com/sales.git
branch: main      # the team's branch
environment:
  - name: REGION
    value: "eu-west-1"
branches:
  B: release   # B ships releases
"""

FOUR_SPACES = """\
name: sales
git_url: https://example.com/sales.git
branch: main  # the team's branch
branches:
    B: release
environment:
    - name: REGION
      value: eu-west-1
# cpu in millicores
resources:
    cpu: 250
"""

FLOW = """\
name: sales
git_url: https://example.com/sales.git
branch: main  # the team's branch
environments: [A, B]
environment: [{name: REGION, value: eu-west-1}]
resources: {cpu: 500, memory: 1024}
"""

STYLES = {"indentless": INDENTLESS, "indented": INDENTED, "four": FOUR_SPACES, "flow": FLOW}

# What adding NEW=x to `environment` adds, in each file's own style.
ADDED_VAR = {
    "indentless": ["- name: NEW", "  value: x"],
    "indented": ["  - name: NEW", "    value: x"],
    "four": ["    - name: NEW", "      value: x"],
}


def _write(reg: Registry, text: str) -> Path:
    path = reg.repos_dir / "sales.yaml"
    path.write_text(text)
    return path


def _with_region(text: str, region: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(text)
    doc["environment"][0]["value"] = region
    return doc


def _branch_line(text: str) -> str:
    return next(line for line in text.splitlines() if line.startswith("branch:"))


@pytest.mark.parametrize("style", sorted(STYLES))
def test_suspend_and_resume_of_a_hand_written_file_touch_one_line(
    reg: Registry, style: str
) -> None:
    original = STYLES[style]
    path = _write(reg, original)
    reg.set_suspend("sales", True)
    assert diff(original, path.read_text()) == ([], ["suspend: true"])
    reg.set_suspend("sales", False)
    assert path.read_text() == original


@pytest.mark.parametrize("style", sorted(STYLES))
def test_a_branch_change_rewrites_the_branch_line_only(reg: Registry, style: str) -> None:
    original = STYLES[style]
    path = _write(reg, original)
    reg.patch("sales", {"branch": "dev"})
    removed, added = diff(original, path.read_text())
    assert removed == [_branch_line(original)]
    assert len(added) == 1 and added[0].startswith("branch: dev ")
    assert added[0].endswith("# the team's branch")


@pytest.mark.parametrize("style", sorted(STYLES))
def test_replace_changes_the_changed_value_only(reg: Registry, style: str) -> None:
    original = STYLES[style]
    path = _write(reg, original)
    entry = reg.replace("sales", _with_region(original, "us-east-1"))
    assert entry.spec.environment[0].value == "us-east-1"
    removed, added = diff(original, path.read_text())
    assert len(removed) == 1 and "eu-west-1" in removed[0]
    assert added == [removed[0].replace("eu-west-1", "us-east-1")]  # same quotes, same place
    assert load_fleet(reg.root).repos["sales"] == entry.spec


@pytest.mark.parametrize("style", sorted(STYLES))
def test_replace_with_what_the_file_says_changes_no_byte(reg: Registry, style: str) -> None:
    path = _write(reg, STYLES[style])
    before = reg.get("sales")
    after = reg.replace("sales", yaml.safe_load(STYLES[style]), if_match=before.etag)
    assert path.read_text() == STYLES[style] and after.etag == before.etag


@pytest.mark.parametrize("style", sorted(ADDED_VAR))
def test_an_appended_list_item_is_written_in_the_files_style(reg: Registry, style: str) -> None:
    original = STYLES[style]
    path = _write(reg, original)
    env = yaml.safe_load(original)["environment"]
    reg.patch("sales", {"environment": [*env, {"name": "NEW", "value": "x"}]})
    assert diff(original, path.read_text()) == ([], ADDED_VAR[style])


def test_replace_removes_keys_and_appends_new_ones(reg: Registry) -> None:
    path = _write(reg, INDENTLESS)
    doc = yaml.safe_load(INDENTLESS)
    del doc["resources"]
    doc["s3_prefix"] = "teams/sales"
    reg.replace("sales", doc)
    assert diff(INDENTLESS, path.read_text()) == (
        ["resources:", "  cpu: 500"],
        ["s3_prefix: teams/sales"],
    )


def test_repo_add_then_suspend_branch_and_replace_keep_untouched_lines(reg: Registry) -> None:
    """The reported bug: `repo add` then `repo suspend` re-indented every list."""
    env = [{"name": "REGION", "value": "eu-west-1"}, {"name": "TOKEN", "from_env": "SALES_TOKEN"}]
    created = reg.create(
        {
            "name": "sales",
            "git_url": "https://example.com/sales.git",
            "branch": "main",
            "environment": env,
            "environments": ["A", "B"],
        }
    )
    path = reg.repos_dir / "sales.yaml"
    written = path.read_text()
    assert "environment:\n  - name: REGION\n    value: eu-west-1\n" in written  # house style

    reg.set_suspend("sales", True)
    assert diff(written, path.read_text()) == ([], ["suspend: true"])
    reg.set_suspend("sales", False)
    assert path.read_text() == written and reg.get("sales").etag == created.etag

    reg.patch("sales", {"branch": "dev"})
    assert diff(written, path.read_text()) == (["branch: main"], ["branch: dev"])
    branched = path.read_text()

    doc = yaml.safe_load(branched)
    doc["environment"][1] = {"name": "TOKEN", "from_env": "SALES_TOKEN_V2"}
    reg.replace("sales", doc)
    assert diff(branched, path.read_text()) == (
        ["    from_env: SALES_TOKEN"],
        ["    from_env: SALES_TOKEN_V2"],
    )


@pytest.mark.parametrize("style", sorted(STYLES))
def test_an_unchanged_document_round_trips_byte_for_byte(style: str) -> None:
    text = STYLES[style]
    assert merge_patch_text(text, {}) == text
    assert merge_patch_text(text, {"name": "sales"}) == text
    assert replace_text(text, yaml.safe_load(text)) == text


def test_spacing_ruamel_would_normalise_stays_on_untouched_lines() -> None:
    text = "name:   sales\nbranch: main\nenvironments: [ A,  B ]\n"
    out = merge_patch_text(text, {"branch": "dev"})
    assert out == "name:   sales\nbranch: dev\nenvironments: [ A,  B ]\n"


def test_new_files_are_what_the_edit_path_writes() -> None:
    """The house style is one style: adding keys by patch gives the file create writes."""
    base = {"name": "sales", "git_url": "u"}
    more = {"environment": [{"name": "A", "value": "1"}], "branches": {"B": "x"}}
    assert merge_patch_text(dump_new(base, "# h\n"), more) == dump_new({**base, **more}, "# h\n")
    assert detect_style(dump_new({**base, **more})) == HOUSE


def test_deleting_a_key_keeps_the_comment_lines_after_it() -> None:
    text = "name: sales\nsuspend: true\n\n# follow main until the release\nbranch: main\n"
    out = merge_patch_text(text, {"suspend": None})
    assert out == "name: sales\n\n# follow main until the release\nbranch: main\n"


def test_removing_a_list_item_takes_its_comment_with_it() -> None:
    text = "environment:\n  - name: A  # first\n    value: '1'\n  - name: B\n    value: '2'\n"
    out = merge_patch_text(text, {"environment": [{"name": "B", "value": "2"}]})
    assert out == "environment:\n  - name: B\n    value: '2'\n"


@pytest.mark.parametrize(
    ("value", "written"),
    [("no", "'no'"), ("on", "'on'"), ("017", "'017'"), ("1.0", "'1.0'"), ("main", "main")],
)
def test_strings_are_written_so_that_pyyaml_reads_strings(value: str, written: str) -> None:
    text = merge_patch_text("name: sales\n", {"branch": value})
    assert text == f"name: sales\nbranch: {written}\n"
    assert yaml.safe_load(text)["branch"] == value
    assert yaml.safe_load(dump_new({"branch": value})) == {"branch": value}


def test_values_keep_the_meaning_pyyaml_gives_them() -> None:
    """`on` and `017` mean true and 15 to the registry's reader; an edit keeps that."""
    text = "a: on\nb: 017\nc: y\n"
    out = merge_patch_text(text, {"d": 1})
    assert out == text + "d: 1\n"
    assert yaml.safe_load(out) == {"a": True, "b": 15, "c": "y", "d": 1}


@pytest.mark.parametrize(
    ("text", "style"),
    [
        ("a:\n- x\n", Style(mapping=2, sequence=2, offset=0)),
        ("a:\n  - x\n", Style(mapping=2, sequence=4, offset=2)),
        ("a:\n    - x\nb:\n    c: 1\n", Style(mapping=4, sequence=6, offset=4)),
        ("a:\n    c: 1\n", Style(mapping=4, sequence=6, offset=4)),
        ("a:\n-   x\n", Style(mapping=2, sequence=4, offset=0)),
        ("l:\n  - k:\n      v: 1\n", Style(mapping=2, sequence=4, offset=2)),
        ("a: [x]\nb: {c: 1}\n", HOUSE),
        ("# only: a comment\n", HOUSE),
    ],
)
def test_detect_style(text: str, style: Style) -> None:
    assert detect_style(text) == style


def test_a_file_that_is_no_mapping_is_refused() -> None:
    with pytest.raises(ValueError, match="not a mapping"):
        merge_patch_text("- a\n- b\n", {"x": 1})


def test_replace_keeps_a_default_the_file_spells_out(reg: Registry) -> None:
    """`suspend: false` says what the spec says: a PUT of the same document keeps it."""
    text = "name: sales\ngit_url: https://example.com/sales.git\nsuspend: false\nbranch: main\n"
    path = _write(reg, text)
    reg.replace("sales", {"name": "sales", "git_url": "https://example.com/sales.git"})
    assert diff(text, path.read_text()) == (["branch: main"], [])


def test_a_document_start_marker_stays() -> None:
    text = "# header\n---\nname: sales\nbranch: main\n"
    assert merge_patch_text(text, {"branch": "dev"}) == "# header\n---\nname: sales\nbranch: dev\n"
