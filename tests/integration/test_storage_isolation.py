"""Storage isolation with real Dagster runs on real files.

Locations X and Y (and environments A and B) get their prefixes from
`dagfleet.storage.location_env`, exactly as code servers do; the medallion
example runs through its IO manager; the helper is exercised with path tricks;
a run on an instance configured by `compute_logs_config` leaves its step stdout
under the location's logs/.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from dagfleet_runtime import LocationStorage, PrefixEscapeError
from dagster import (
    DagsterInstance,
    execute_job,
    in_process_executor,
    job,
    op,
    reconstructable,
)
from dagster._core.remote_origin import (
    GrpcServerCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.storage.dagster_run import DagsterRun

from dagfleet.spec import Fleet, FleetSpec, RepoSpec, StorageSpec
from dagfleet.storage import ensure_layout, location_env, write_prefixes
from tests.support.instance import instance_with_compute_logs

pytestmark = [pytest.mark.integration]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "medallion"
STDOUT_MARK = "stdout from a dagfleet step"


@pytest.fixture(scope="module", autouse=True)
def medallion_importable() -> Iterator[None]:
    sys.path.insert(0, str(EXAMPLE))
    yield
    sys.path.remove(str(EXAMPLE))


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    spec = FleetSpec(
        storage=StorageSpec(root="data"),
        environments=[{"name": "A"}, {"name": "B"}],  # type: ignore[list-item]
    )
    return Fleet(root=str(tmp_path / "fleet"), spec=spec)


@pytest.fixture
def as_location(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> Callable[[str, str], dict[str, str]]:
    """Put this process in the environment a code server of `repo` in `env` gets."""

    def enter(repo: str, env: str) -> dict[str, str]:
        ensure_layout(fleet, repo, env)
        variables = location_env(fleet, repo, env)
        for key, value in variables.items():
            monkeypatch.setenv(key, value)
        return variables

    return enter


def run_medallion(instance: DagsterInstance) -> list[Any]:
    from medallion.definitions import defs

    evaluations: list[Any] = []
    for name in ("bronze_to_silver_job", "silver_to_gold_job"):
        result = defs.resolve_job_def(name).execute_in_process(instance=instance)
        assert result.success, name
        evaluations += result.get_asset_check_evaluations()
    return evaluations


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_medallion_writes_only_its_own_prefix(
    fleet: Fleet, as_location: Callable[[str, str], dict[str, str]]
) -> None:
    data = Path(fleet.root) / "data"
    with DagsterInstance.ephemeral() as instance:
        for env in ("A", "B"):
            as_location("medallion", env)
            evaluations = run_medallion(instance)
            assert evaluations and all(e.passed for e in evaluations)
    for env in ("A", "B"):
        mine = data / env / "repos" / "medallion"
        assert {"bronze/bronze_data.csv", "silver/silver_data.csv", "gold/gold_data.csv"} <= (
            files_under(mine)
        )
        gold = (mine / "gold" / "gold_data.csv").read_text().splitlines()
        assert gold[0] == "category,order_count,total_quantity,total_price"
        assert sum(int(line.split(",")[1]) for line in gold[1:]) == 200
    outside = {
        f
        for f in files_under(data)
        if not (f.startswith("A/repos/medallion/") or f.startswith("B/repos/medallion/"))
    }
    assert outside == set()


def test_io_manager_cannot_address_another_prefix(
    as_location: Callable[[str, str], dict[str, str]],
) -> None:
    from medallion import schema
    from medallion.storage import MedallionIOManager, join

    env = as_location("x", "A")
    io = MedallionIOManager(root=env["DAGFLEET_STORAGE_ROOT"])
    for layer in ("bronze", "silver", "gold"):
        assert io.path_for(layer).startswith(env["DAGFLEET_STORAGE_ROOT"] + os.sep)
    for trick in ("..", "../y", "/etc", "a/b", "a\\b", "a\0b", ""):
        with pytest.raises(ValueError):
            join(env["DAGFLEET_STORAGE_ROOT"], trick)
    for asset in ("../y/gold_asset", "other_asset", "gold_asset/.."):
        with pytest.raises(KeyError):
            schema.layer_of(asset)


def test_helper_confines_x_away_from_y(
    fleet: Fleet, as_location: Callable[[str, str], dict[str, str]]
) -> None:
    y = as_location("y", "A")
    Path(y["DAGFLEET_STORAGE_ROOT"], "assets").mkdir(parents=True, exist_ok=True)
    Path(y["DAGFLEET_STORAGE_ROOT"], "assets", "secret.csv").write_text("y's data")
    y_b = as_location("x", "B")
    Path(y_b["DAGFLEET_ASSETS"], "b_only.csv").write_text("B's data")
    x = as_location("x", "A")
    shared = Path(x["DAGFLEET_SHARED"])
    (shared / "reference.csv").write_text("code,name\n")
    link = Path(x["DAGFLEET_ASSETS"], "to_y")
    os.symlink(Path(y["DAGFLEET_STORAGE_ROOT"]), link)

    storage = LocationStorage.from_env()
    with storage.open("assets/mine.csv", "w") as fh:
        fh.write("x's data")
    assert Path(x["DAGFLEET_ASSETS"], "mine.csv").read_text() == "x's data"
    tricks = [
        "../y/assets/secret.csv",
        "../../B/repos/x/assets/b_only.csv",
        "assets/to_y/assets/secret.csv",
        y["DAGFLEET_STORAGE_ROOT"] + "/assets/secret.csv",
        "assets/../../y/assets/secret.csv",
        "assets/secret.csv\0",
    ]
    for key in tricks:
        for mode in ("r", "w"):
            with pytest.raises(PrefixEscapeError):
                storage.open(key, mode)
    with storage.open_shared("reference.csv", "r") as fh:
        assert fh.read() == "code,name\n"
    with pytest.raises(PermissionError):
        storage.open_shared("reference.csv", "w")
    with pytest.raises(PrefixEscapeError):
        storage.open_shared("../repos/y/assets/secret.csv")
    assert Path(y["DAGFLEET_STORAGE_ROOT"], "assets", "secret.csv").read_text() == "y's data"


@op
def talk() -> None:
    print(STDOUT_MARK, flush=True)


@job(executor_def=in_process_executor)
def talking_job() -> None:
    talk()


def test_step_stdout_lands_under_location_logs(fleet: Fleet, tmp_path: Path) -> None:
    logs_a = Path(location_env(fleet, "medallion", "A")["DAGFLEET_LOGS"])
    with instance_with_compute_logs(tmp_path / "home", fleet) as instance:
        result = execute_job(
            reconstructable(talking_job),
            instance=instance,
            tags={"dagfleet/location": "medallion-A"},
        )
        assert result.success
        run_id = result.run_id
        outs = list((logs_a / run_id / "compute_logs").glob("*.out"))
        assert outs, f"no stdout file under {logs_a}"
        assert STDOUT_MARK in outs[0].read_text()
        # The UI reads through the same manager: the data comes back by log key.
        manager = instance.compute_log_manager
        log_key = [run_id, "compute_logs", outs[0].stem]
        data = manager.get_log_data(log_key)
        assert data.stdout is not None and STDOUT_MARK.encode() in data.stdout
        assert manager.is_capture_complete(log_key)
    assert not (tmp_path / "home" / "compute_logs" / run_id).exists()


def test_step_stdout_follows_a_repo_s3_prefix(fleet: Fleet, tmp_path: Path) -> None:
    """A repo file's `s3_prefix` moves its logs/ too, also for repos added while running."""
    with instance_with_compute_logs(tmp_path / "home", fleet) as instance:
        # The instance is already up when the repo arrives, as with `dagfleet repo add`.
        grown = fleet.model_copy(
            update={"repos": {"sales": RepoSpec(name="sales", git_url="/s", s3_prefix="t/sales")}}
        )
        write_prefixes(grown)
        result = execute_job(
            reconstructable(talking_job), instance=instance, tags={"dagfleet/location": "sales-B"}
        )
        assert result.success
    logs = Path(location_env(grown, "sales", "B")["DAGFLEET_LOGS"])
    assert logs == Path(fleet.root) / "data" / "B" / "t" / "sales" / "logs"
    outs = list((logs / result.run_id / "compute_logs").glob("*.out"))
    assert outs and STDOUT_MARK in outs[0].read_text()
    assert not (Path(fleet.root) / "data" / "B" / "repos" / "sales").exists()


def test_remote_origin_decides_the_location(fleet: Fleet, tmp_path: Path) -> None:
    """Runs launched from the UI carry their origin; a tag cannot redirect them."""
    origin = RemoteJobOrigin(
        repository_origin=RemoteRepositoryOrigin(
            code_location_origin=GrpcServerCodeLocationOrigin(
                host="localhost", port=4000, location_name="medallion-B"
            ),
            repository_name="__repository__",
        ),
        job_name="bronze_to_silver_job",
    )
    with instance_with_compute_logs(tmp_path / "home", fleet) as instance:
        run = instance.add_run(
            DagsterRun(
                job_name="bronze_to_silver_job",
                remote_job_origin=origin,
                tags={"dagfleet/location": "other-A"},
            )
        )
        manager = instance.compute_log_manager
        key = manager.build_log_key_for_run(run.run_id, "step")
        with manager.capture_logs(key):
            print(STDOUT_MARK, flush=True)
        out = Path(location_env(fleet, "medallion", "B")["DAGFLEET_LOGS"], run.run_id)
        assert STDOUT_MARK in (out / "compute_logs" / "step.out").read_text()
        assert not Path(location_env(fleet, "other", "A")["DAGFLEET_LOGS"]).exists()
