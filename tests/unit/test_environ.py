"""The code server's environment: an allowlist of the host's, then the fleet's, then dagfleet's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dagfleet.runtime.environ import SecretMissing, location_environ, resolve
from dagfleet.spec import EnvVar, Fleet, FleetSpec, LocationSpec, RepoSpec

pytestmark = pytest.mark.unit

HOST = {
    "PATH": "/usr/bin:/bin",
    "HOME": "/home/u",
    "LANG": "C.UTF-8",
    "DAGSTER_POSTGRES_PASSWORD": "pg-pw",
    "DAGSTER_POSTGRES_HOST": "db",
    "AWS_ACCESS_KEY_ID": "AKIA",
    "AWS_SECRET_ACCESS_KEY": "aws-secret",
    "DAGFLEET_API_TOKENS": "admin-token",
    "DAGFLEET_WEBHOOK_SECRET": "hook-secret",
    "SECRET_X": "x",
    "GITHUB_TOKEN": "ghp",
    "PYTHONPATH": "/evil",
    "VIRTUAL_ENV": "/work/main/.venv",
    "DAGSTER_HOME": "/host/dagster_home",
    "SALES_TOKEN": "tok-123",
}


def make_fleet(
    root: Path,
    env: dict[str, Any] | None = None,
    repo_vars: list[dict[str, str]] | None = None,
    instance: dict[str, Any] | None = None,
) -> Fleet:
    spec = FleetSpec.model_validate(
        {
            "name": "acme",
            "environments": [{"name": "A", "playground": True, **(env or {})}, {"name": "B"}],
            "storage": {"root": "data"},
            "instance": instance or {},
        }
    )
    repo = RepoSpec.model_validate(
        {"name": "sales", "git_url": "/srv/sales.git", "environment": repo_vars or []}
    )
    return Fleet(root=str(root), spec=spec, repos={"sales": repo})


def location(fleet: Fleet, name: str = "sales-A") -> LocationSpec:
    return next(loc for loc in fleet.locations() if loc.name == name)


def environ_for(fleet: Fleet, name: str = "sales-A", host: dict[str, str] = HOST) -> dict[str, str]:
    return location_environ(
        fleet, location(fleet, name), "c0ffee" * 6 + "abcd", Path("/state/home"), "m1", host
    )


@pytest.mark.parametrize(
    ("var", "passed"),
    [
        ("PATH", True),
        ("HOME", True),
        ("LANG", True),
        ("DAGSTER_POSTGRES_PASSWORD", True),
        ("DAGSTER_POSTGRES_HOST", True),
        ("AWS_ACCESS_KEY_ID", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("DAGFLEET_API_TOKENS", False),
        ("DAGFLEET_WEBHOOK_SECRET", False),
        ("SECRET_X", False),
        ("GITHUB_TOKEN", False),
        ("PYTHONPATH", False),
        ("VIRTUAL_ENV", False),
        ("SALES_TOKEN", False),
    ],
)
def test_host_allowlist(tmp_path: Path, var: str, passed: bool) -> None:
    env = environ_for(make_fleet(tmp_path))
    assert (var in env) is passed
    if passed:
        assert env[var] == HOST[var]


def test_no_host_secret_value_reaches_the_code_server(tmp_path: Path) -> None:
    values = set(environ_for(make_fleet(tmp_path)).values())
    for secret in ("admin-token", "hook-secret", "x", "ghp", "tok-123", "/evil"):
        assert secret not in values


def test_dagfleet_variables(tmp_path: Path) -> None:
    env = environ_for(make_fleet(tmp_path))
    root = tmp_path / "data"
    assert {k: v for k, v in env.items() if k.startswith("DAGFLEET_")} == {
        "DAGFLEET_FLEET": "acme",
        "DAGFLEET_ENV": "A",
        "DAGFLEET_REPO": "sales",
        "DAGFLEET_LOCATION": "sales-A",
        "DAGFLEET_COMMIT": "c0ffee" * 6 + "abcd",
        "DAGFLEET_STATE": "m1",
        "DAGFLEET_STORAGE_ROOT": str(root / "A" / "repos" / "sales"),
        "DAGFLEET_ASSETS": str(root / "A" / "repos" / "sales" / "assets"),
        "DAGFLEET_RUNS": str(root / "A" / "repos" / "sales" / "runs"),
        "DAGFLEET_LOGS": str(root / "A" / "repos" / "sales" / "logs"),
        "DAGFLEET_SHARED": str(root / "A" / "shared"),
        "DAGFLEET_TEMP": str(root / "A" / "temp"),
    }
    assert env["DAGSTER_HOME"] == "/state/home"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert (root / "A" / "repos" / "sales" / "assets").is_dir()


def test_environments_do_not_share_storage(tmp_path: Path) -> None:
    fleet = make_fleet(tmp_path)
    a, b = environ_for(fleet, "sales-A"), environ_for(fleet, "sales-B")
    assert a["DAGFLEET_STORAGE_ROOT"] != b["DAGFLEET_STORAGE_ROOT"]
    assert b["DAGFLEET_STORAGE_ROOT"].endswith("/B/repos/sales")


@pytest.mark.parametrize(
    ("case", "env_vars", "repo_vars", "expected"),
    [
        ("environment var", {"X": "env"}, [], {"X": "env"}),
        ("repo var", {}, [{"name": "X", "value": "repo"}], {"X": "repo"}),
        (
            "repo beats environment",
            {"X": "env", "Y": "env"},
            [{"name": "X", "value": "repo"}],
            {"X": "repo", "Y": "env"},
        ),
        ("environment beats host", {"PATH": "/env/bin"}, [], {"PATH": "/env/bin"}),
        ("repo beats host", {}, [{"name": "LANG", "value": "fr"}], {"LANG": "fr"}),
        (
            "dagfleet's own beat the environment's",
            {"DAGFLEET_ENV": "hijack", "DAGSTER_HOME": "/elsewhere"},
            [],
            {"DAGFLEET_ENV": "A", "DAGSTER_HOME": "/state/home"},
        ),
        (
            "dagfleet's own beat the repo's",
            {},
            [
                {"name": "DAGFLEET_STORAGE_ROOT", "value": "/other/tenant"},
                {"name": "DAGFLEET_COMMIT", "value": "fake"},
            ],
            {"DAGFLEET_COMMIT": "c0ffee" * 6 + "abcd"},
        ),
    ],
)
def test_precedence(
    tmp_path: Path,
    case: str,
    env_vars: dict[str, str],
    repo_vars: list[dict[str, str]],
    expected: dict[str, str],
) -> None:
    env = environ_for(make_fleet(tmp_path, {"env": env_vars}, repo_vars))
    assert {k: env[k] for k in expected} == expected
    assert env["DAGFLEET_STORAGE_ROOT"] == str(tmp_path / "data" / "A" / "repos" / "sales")


def test_environment_vars_apply_only_to_their_environment(tmp_path: Path) -> None:
    fleet = make_fleet(tmp_path, {"env": {"STAGE_ONLY": "a"}})
    assert environ_for(fleet, "sales-A")["STAGE_ONLY"] == "a"
    assert "STAGE_ONLY" not in environ_for(fleet, "sales-B")


def test_playground_gets_environment_vars_but_not_repo_vars(tmp_path: Path) -> None:
    fleet = make_fleet(tmp_path, {"env": {"E": "1"}}, [{"name": "R", "value": "2"}])
    env = environ_for(fleet, "playground-A")
    assert env["E"] == "1" and "R" not in env
    assert env["DAGFLEET_LOCATION"] == "playground-A"


def test_secret_references_resolved(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "db").write_text("file-secret\n")
    absolute = tmp_path / "abs-secret"
    absolute.write_text("two\nlines\n\n")
    fleet = make_fleet(
        tmp_path,
        repo_vars=[
            {"name": "TOKEN", "from_env": "SALES_TOKEN"},
            {"name": "DB_PASSWORD", "from_file": "secrets/db"},
            {"name": "ABS", "from_file": str(absolute)},
            {"name": "PLAIN", "value": ""},
        ],
    )
    env = environ_for(fleet)
    assert (env["TOKEN"], env["DB_PASSWORD"], env["ABS"], env["PLAIN"]) == (
        "tok-123",
        "file-secret",
        "two\nlines",
        "",
    )


def test_postgres_password_variable_of_the_spec_passes_through(tmp_path: Path) -> None:
    host = {**HOST, "MY_PG_PW": "pw"}
    fleet = make_fleet(tmp_path, instance={"postgres": {"password_env": "MY_PG_PW"}})
    assert environ_for(fleet, host=host)["MY_PG_PW"] == "pw"
    assert "MY_PG_PW" not in environ_for(make_fleet(tmp_path), host=host)


@pytest.mark.parametrize(
    ("var", "message"),
    [
        (
            {"name": "TOKEN", "from_env": "NOT_SET_ANYWHERE"},
            "environment.TOKEN: from_env NOT_SET_ANYWHERE is not set in dagfleet's environment: "
            "export it before `dagfleet up`",
        ),
        (
            {"name": "DB_PASSWORD", "from_file": "secrets/missing"},
            "environment.DB_PASSWORD: from_file {root}/secrets/missing: No such file or directory",
        ),
        (
            {"name": "DIR", "from_file": "."},
            "environment.DIR: from_file {root}: Is a directory",
        ),
    ],
)
def test_missing_secret_names_the_field(tmp_path: Path, var: dict[str, str], message: str) -> None:
    with pytest.raises(SecretMissing) as caught:
        resolve(EnvVar.model_validate(var), HOST, tmp_path)
    assert str(caught.value) == message.format(root=tmp_path)
    with pytest.raises(SecretMissing):
        environ_for(make_fleet(tmp_path, repo_vars=[var]))
