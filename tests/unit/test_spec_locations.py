"""Fleet.locations(): which locations exist, which ref each follows, and their names."""

from __future__ import annotations

from typing import Any

import pytest

from dagfleet.spec import Fleet, FleetSpec, RepoSpec
from dagfleet.spec.defaults import default_fleet_document, medallion_repo_document
from dagfleet.spec.names import MAX_ENV_NAME, MAX_LABEL, MAX_REPO_NAME

pytestmark = pytest.mark.unit


def fleet(envs: list[dict[str, Any]], *repos: dict[str, Any], **spec: Any) -> Fleet:
    parsed = [RepoSpec.model_validate({"git_url": "/srv/x.git", **r}) for r in repos]
    return Fleet(
        root="/fleet",
        spec=FleetSpec.model_validate({"environments": envs, **spec}),
        repos={r.name: r for r in parsed},
    )


@pytest.mark.parametrize(
    ("case", "env", "repo", "expected"),
    [
        ("nothing set: main", {"name": "A"}, {}, "main"),
        ("env branch", {"name": "A", "branch": "envA"}, {}, "envA"),
        ("repo branch beats env branch", {"name": "A", "branch": "envA"}, {"branch": "r"}, "r"),
        (
            "repo branches[env] beats repo branch",
            {"name": "A", "branch": "envA"},
            {"branch": "r", "branches": {"A": "perenv"}},
            "perenv",
        ),
        (
            "branches for another env ignored",
            {"name": "A", "branch": "envA"},
            {"branches": {"B": "other"}},
            "envA",
        ),
        (
            "branches for another env, repo branch used",
            {"name": "A"},
            {"branch": "r", "branches": {"B": "other"}},
            "r",
        ),
    ],
)
def test_ref_precedence(
    case: str, env: dict[str, Any], repo: dict[str, Any], expected: str
) -> None:
    envs = [env, {"name": "B"}]
    (loc, _) = fleet(envs, {"name": "sales", **repo}).locations()
    assert (loc.env, loc.ref) == ("A", expected)


def test_locations_of_the_default_fleet() -> None:
    doc = default_fleet_document()
    f = fleet(doc["environments"], medallion_repo_document("/srv/m.git"), defaults={})
    got = [(loc.name, loc.repo, loc.env, loc.ref, loc.playground) for loc in f.locations()]
    assert got == [
        ("medallion-A", "medallion", "A", "A", False),
        ("medallion-B", "medallion", "B", "B", False),
        ("playground-A", "playground", "A", "", True),
        ("playground-B", "playground", "B", "", True),
    ]


@pytest.mark.parametrize(
    ("case", "repo", "expected"),
    [
        ("runs everywhere", {}, ["r-A", "r-B", "r-C"]),
        ("environments filter", {"environments": ["C", "A"]}, ["r-A", "r-C"]),
        ("empty filter runs nowhere", {"environments": []}, []),
        ("suspended repo has no locations", {"suspend": True}, []),
    ],
)
def test_which_environments_a_repo_runs_in(
    case: str, repo: dict[str, Any], expected: list[str]
) -> None:
    f = fleet([{"name": "A"}, {"name": "B"}, {"name": "C"}], {"name": "r", **repo})
    assert [loc.name for loc in f.locations()] == expected


def test_repos_sorted_then_environments_in_fleet_order_then_playgrounds() -> None:
    f = fleet(
        [{"name": "B", "playground": True}, {"name": "A"}],
        {"name": "zeta"},
        {"name": "alpha"},
    )
    assert [loc.name for loc in f.locations()] == [
        "alpha-B",
        "alpha-A",
        "zeta-B",
        "zeta-A",
        "playground-B",
    ]


def test_pins_and_poll_interval() -> None:
    f = fleet(
        [{"name": "A"}, {"name": "B"}],
        {"name": "fast", "pins": {"B": "v1.2"}, "poll_interval": 2},
        {"name": "slow"},
        defaults={"poll_interval": 30},
    )
    got = {loc.name: (loc.pin, loc.poll_interval) for loc in f.locations()}
    assert got == {
        "fast-A": (None, 2.0),
        "fast-B": ("v1.2", 2.0),
        "slow-A": (None, 30.0),
        "slow-B": (None, 30.0),
    }


def test_suspended_repo_keeps_the_rest_running() -> None:
    f = fleet([{"name": "A"}], {"name": "on"}, {"name": "off", "suspend": True})
    assert [loc.name for loc in f.locations()] == ["on-A"]


def test_longest_names_fit_kubernetes() -> None:
    repo = "r" * MAX_REPO_NAME
    env = "E" * MAX_ENV_NAME
    f = fleet([{"name": env, "playground": True}], {"name": repo})
    names = [loc.name for loc in f.locations()]
    assert names == [f"{repo}-{env}", f"playground-{env}"]
    assert all(len(n) <= MAX_LABEL == 63 for n in names)


def test_names_longer_than_the_limit_cannot_be_built() -> None:
    with pytest.raises(ValueError, match="use at most 40"):
        RepoSpec(name="r" * (MAX_REPO_NAME + 1), git_url="/x")
    with pytest.raises(ValueError, match="use at most 12"):
        FleetSpec.model_validate({"environments": [{"name": "E" * (MAX_ENV_NAME + 1)}]})


def test_environment_lookup() -> None:
    f = fleet([{"name": "A", "debug": True}, {"name": "B"}])
    assert f.environment("A").debug is True
    with pytest.raises(KeyError):
        f.environment("a")


def test_models_are_immutable() -> None:
    repo = RepoSpec(name="sales", git_url="/x")
    with pytest.raises(ValueError):
        repo.branch = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("target", "args"),
    [
        ({"module_name": "a.b"}, ["-m", "a.b", "--working-directory", "."]),
        ({"python_file": "d.py"}, ["-f", "d.py", "--working-directory", "."]),
        ({"package_name": "pkg"}, ["--package-name", "pkg", "--working-directory", "."]),
        (
            {"module_name": "a", "attribute": "defs"},
            ["-m", "a", "--working-directory", ".", "-a", "defs"],
        ),
    ],
)
def test_code_target_flags(target: dict[str, str], args: list[str]) -> None:
    repo = RepoSpec.model_validate({"name": "r", "git_url": "/x", **target})
    assert repo.code_target is not None
    assert repo.code_target.dagster_args() == args


def test_no_code_target_means_discovery() -> None:
    assert RepoSpec(name="r", git_url="/x").code_target is None
