"""The registry: validation naming fields, ETags and If-Match, merge patches, suspend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from dagfleet.registry import (
    Conflict,
    NotFound,
    PreconditionFailed,
    Registry,
    matches,
)
from dagfleet.spec import SpecError, load_fleet
from dagfleet.spec.defaults import default_fleet_document
from dagfleet.yamledit import merge_patch_text

pytestmark = pytest.mark.unit


@pytest.fixture
def reg(tmp_path: Path) -> Registry:
    (tmp_path / "fleet.yaml").write_text(yaml.safe_dump(default_fleet_document()))
    (tmp_path / "repos").mkdir()
    return Registry(tmp_path)


def _doc(**extra: Any) -> dict[str, Any]:
    return {"name": "sales", "git_url": "https://example.com/sales.git", **extra}


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        (_doc(name="Sales"), "name"),
        (_doc(name="playground"), "name"),
        (_doc(git_url="ext::sh -c id"), "git_url"),
        (_doc(git_url="-uoops"), "git_url"),
        (_doc(branch="-x"), "branch"),
        (_doc(branch="a..b"), "branch"),
        (_doc(python_file="../etc/passwd"), "python_file"),
        (_doc(python_file="/abs.py"), "python_file"),
        (_doc(working_directory="a\0b"), "working_directory"),
        (_doc(s3_prefix="-p"), "s3_prefix"),
        (_doc(environment=[{"name": "1BAD", "value": "x"}]), "environment[0].name"),
        (_doc(environment=[{"name": "K", "from_env": "BAD-NAME"}]), "environment[0].from_env"),
        (_doc(branches={"C": "main"}), "branches.C"),
        (_doc(environments=["A", "Z"]), "environments.Z"),
        (_doc(colour="red"), "colour"),
    ],
)
def test_create_refuses_invalid_documents_naming_the_field(
    reg: Registry, doc: dict[str, Any], field: str
) -> None:
    with pytest.raises(SpecError) as info:
        reg.create(doc)
    assert field in [p.field for p in info.value.problems], info.value.problems
    assert list((reg.root / "repos").iterdir()) == []


def test_created_file_is_what_the_loader_reads(reg: Registry) -> None:
    env = [{"name": "TOKEN", "from_env": "SALES_TOKEN"}, {"name": "MODE", "value": "x"}]
    entry = reg.create(_doc(branch="main", module_name="sales.defs", environment=env))
    fleet = load_fleet(reg.root)
    assert fleet.repos["sales"] == entry.spec
    assert reg.get("sales").etag == entry.etag
    text = (reg.root / "repos" / "sales.yaml").read_text()
    assert "SALES_TOKEN" in text and "working_directory" not in text  # defaults left out


@pytest.mark.parametrize(
    ("op", "error"),
    [
        (lambda r: r.create(_doc()), Conflict),
        (lambda r: r.get("nope"), NotFound),
        (lambda r: r.get("../fleet"), NotFound),
        (lambda r: r.delete("nope"), NotFound),
        (lambda r: r.patch("nope", {}), NotFound),
        (lambda r: r.replace("sales", _doc(), if_match='"stale"'), PreconditionFailed),
        (lambda r: r.patch("sales", {"branch": "x"}, if_match='"stale"'), PreconditionFailed),
        (lambda r: r.delete("sales", if_match='"stale"'), PreconditionFailed),
    ],
)
def test_refusals(reg: Registry, op: Any, error: type[Exception]) -> None:
    reg.create(_doc())
    with pytest.raises(error):
        op(reg)
    assert reg.get("sales").spec.branch is None


def test_replace_with_another_name_names_the_field(reg: Registry) -> None:
    reg.create(_doc())
    with pytest.raises(SpecError) as info:
        reg.replace("sales", _doc(name="other"))
    assert info.value.problems[0].field == "name"


def test_etag_follows_the_bytes_and_if_match_guards_updates(reg: Registry) -> None:
    first = reg.create(_doc())
    second = reg.patch("sales", {"branch": "main"}, if_match=first.etag)
    assert second.etag != first.etag
    with pytest.raises(PreconditionFailed):
        reg.patch("sales", {"branch": "dev"}, if_match=first.etag)
    third = reg.replace("sales", _doc(branch="dev"), if_match=f"W/{second.etag}")
    assert third.spec.branch == "dev"


def test_suspend_and_resume_keep_the_rest(reg: Registry) -> None:
    reg.create(_doc(branch="main"))
    assert reg.set_suspend("sales", True).spec.suspend
    resumed = reg.set_suspend("sales", False)
    assert not resumed.spec.suspend and resumed.spec.branch == "main"
    assert "suspend" not in (reg.root / "repos" / "sales.yaml").read_text()


def test_hand_written_yml_files_are_updated_in_place(reg: Registry) -> None:
    (reg.root / "repos" / "sales.yml").write_text(yaml.safe_dump(_doc()))
    reg.patch("sales", {"branch": "main"})
    assert sorted(p.name for p in (reg.root / "repos").iterdir()) == ["sales.yml"]
    with pytest.raises(Conflict):
        reg.create(_doc())


def test_delete_and_purge(reg: Registry) -> None:
    reg.create(_doc())
    data = reg.root / ".dagfleet" / "data" / "A" / "repos" / "sales" / "assets"
    data.mkdir(parents=True)
    removed, notes = reg.purge_data(reg.delete("sales"))
    assert removed == [str(data.parent)] and notes == []
    assert not data.exists() and reg.list() == []


def test_purge_follows_the_repo_prefix(reg: Registry) -> None:
    reg.create(_doc(s3_prefix="teams/sales"))
    data = reg.root / ".dagfleet" / "data" / "A" / "teams" / "sales" / "assets"
    data.mkdir(parents=True)
    other = reg.root / ".dagfleet" / "data" / "A" / "repos" / "sales"
    other.mkdir(parents=True)
    removed, _ = reg.purge_data(reg.delete("sales"))
    assert removed == [str(data.parent)]
    assert not data.exists() and other.exists()


def test_a_prefix_inside_another_repos_is_refused(reg: Registry) -> None:
    reg.create(_doc())
    with pytest.raises(SpecError) as err:
        reg.create(_doc(name="ledger", s3_prefix="repos/sales/ledger"))
    assert "repos/ledger.yaml: s3_prefix: storage prefix 'repos/sales/ledger' overlaps" in str(
        err.value
    )
    assert reg.path("ledger") is None


def test_a_colliding_location_name_is_refused(tmp_path: Path) -> None:
    doc = default_fleet_document()
    doc["environments"] = [{"name": "prod"}, {"name": "eu-prod"}]
    (tmp_path / "fleet.yaml").write_text(yaml.safe_dump(doc))
    (tmp_path / "repos").mkdir()
    reg = Registry(tmp_path)
    reg.create(_doc(name="sales-eu"))
    with pytest.raises(SpecError, match="a location would be named sales-eu-prod"):
        reg.create(_doc(name="sales"))
    assert reg.path("sales") is None


@pytest.mark.parametrize(
    ("header", "etag", "ok"),
    [
        (None, '"a"', True),
        ("*", '"a"', True),
        ('"a"', '"a"', True),
        ('"b", "a"', '"a"', True),
        ('W/"a"', '"a"', True),
        ('"b"', '"a"', False),
        ("a", '"a"', False),
    ],
)
def test_if_match(header: str | None, etag: str, ok: bool) -> None:
    assert matches(header, etag) is ok


@pytest.mark.parametrize(
    ("target", "patch", "result"),
    [
        ({"a": 1}, {"a": 2}, {"a": 2}),
        ({"a": 1, "b": 2}, {"a": None}, {"b": 2}),
        ({"a": {"x": 1, "y": 2}}, {"a": {"y": None, "z": 3}}, {"a": {"x": 1, "z": 3}}),
        ({"a": [1, 2]}, {"a": [3]}, {"a": [3]}),
        ({"a": 1}, {}, {"a": 1}),
        ({"a": 1}, {"a": {"x": None, "y": 1}}, {"a": {"y": 1}}),
        ({}, {"a": None}, {}),
    ],
)
def test_merge_patch(target: dict[str, Any], patch: dict[str, Any], result: Any) -> None:
    assert yaml.safe_load(merge_patch_text(yaml.safe_dump(target), patch)) == result


def test_patch_keeps_what_a_person_wrote(reg: Registry) -> None:
    text = (
        "# Sales team's pipelines; ask #data-sales before changing.\n"
        "name: sales\n"
        "git_url: https://example.com/sales.git  # mirrored nightly\n"
        "branches:\n"
        "  A: develop  # A tracks develop\n"
        "environment:\n"
        "  - name: REGION\n"
        "    value: 'eu-west-1'\n"
    )
    (reg.repos_dir / "sales.yaml").write_text(text)
    entry = reg.patch("sales", {"suspend": True, "branches": {"B": "main"}})
    after = (reg.repos_dir / "sales.yaml").read_text()
    assert after.startswith("# Sales team's pipelines; ask #data-sales before changing.\n")
    assert "# mirrored nightly" in after and "# A tracks develop" in after
    assert "value: 'eu-west-1'" in after
    assert entry.spec.suspend and entry.spec.branches == {"A": "develop", "B": "main"}
    assert reg.get("sales").etag == entry.etag
    # A patch that makes the file invalid changes nothing.
    with pytest.raises(SpecError, match="branch"):
        reg.patch("sales", {"branch": "a..b"})
    assert (reg.repos_dir / "sales.yaml").read_text() == after


def test_hand_edited_files_are_read_strictly(reg: Registry) -> None:
    """The API reads repo files as the loader does: a duplicate key is refused, naming
    the file, line and key, rather than the last value silently winning."""
    reg.create(_doc())
    path = reg.repos_dir / "sales.yaml"
    path.write_text(path.read_text() + "suspend: true\nsuspend: false\n")
    with pytest.raises(SpecError) as err:
        reg.get("sales")
    assert "repos/sales.yaml" in str(err.value) and "duplicate key 'suspend'" in str(err.value)
    with pytest.raises(SpecError):
        reg.patch("sales", {"branch": "main"})


def test_unreadable_files_are_named(reg: Registry) -> None:
    reg.create(_doc())
    (reg.repos_dir / "broken.yaml").write_text("name: broken\nname: again\n")
    assert [e.spec.name for e in reg.list()] == ["sales"]
    (problem,) = reg.unreadable()
    assert problem.file == "repos/broken.yaml" and "duplicate key 'name'" in str(problem)
