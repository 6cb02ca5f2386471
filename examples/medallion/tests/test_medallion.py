"""The medallion example on its own: generator, jobs, checks, storage root from the env."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from dagster import DagsterInstance, RunConfig
from medallion.definitions import defs
from medallion.generate import generate


def run(root: Path, monkeypatch: pytest.MonkeyPatch, fmt: str = "csv") -> list[bool]:
    monkeypatch.setenv("DAGFLEET_STORAGE_ROOT", str(root))
    io_config = {"root": {"env": "DAGFLEET_STORAGE_ROOT"}, "format": fmt}
    config = RunConfig(resources={"io_manager": {"config": io_config}})
    passed: list[bool] = []
    with DagsterInstance.ephemeral() as instance:
        for name in ("bronze_to_silver_job", "silver_to_gold_job"):
            result = defs.resolve_job_def(name).execute_in_process(
                instance=instance, run_config=config
            )
            assert result.success
            passed += [e.passed for e in result.get_asset_check_evaluations()]
    return passed


def test_seeds_bronze_and_writes_layers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    passed = run(tmp_path, monkeypatch)
    assert len(passed) == 6 and all(passed)
    silver = pl.read_csv(tmp_path / "silver" / "silver_data.csv")
    assert "total_price" in silver.columns and silver.height == 200
    gold = pl.read_csv(tmp_path / "gold" / "gold_data.csv")
    assert gold["order_count"].sum() == 200
    assert gold["category"].to_list() == sorted(gold["category"].to_list())


def test_parquet_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert all(run(tmp_path, monkeypatch, fmt="parquet"))
    assert pl.read_parquet(tmp_path / "gold" / "gold_data.parquet")["order_count"].sum() == 200


def test_generated_bronze_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    generate(12_345, tmp_path / "bronze" / "bronze_data.csv", chunk_rows=1000)
    assert all(run(tmp_path, monkeypatch))
    gold = pl.read_csv(tmp_path / "gold" / "gold_data.csv")
    assert gold["order_count"].sum() == 12_345


def test_generator_is_deterministic(tmp_path: Path) -> None:
    a = generate(2500, tmp_path / "a.csv", chunk_rows=1000).read_bytes()
    b = generate(2500, tmp_path / "b.csv", chunk_rows=700).read_bytes()
    assert a == b
    frame = pl.read_csv(tmp_path / "a.csv")
    assert frame.height == 2500 and frame["id"].n_unique() == 2500


def test_broken_silver_fails_the_gold_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(tmp_path, monkeypatch)
    silver = tmp_path / "silver" / "silver_data.csv"
    lines = silver.read_text().splitlines()
    silver.write_text("\n".join(lines[:-10]) + "\n")  # lose rows behind Dagster's back
    monkeypatch.setenv("DAGFLEET_STORAGE_ROOT", str(tmp_path))
    with DagsterInstance.ephemeral() as instance:
        defs.resolve_job_def("bronze_to_silver_job").execute_in_process(instance=instance)
        silver.write_text("\n".join(lines[:-10]) + "\n")
        result = defs.resolve_job_def("silver_to_gold_job").execute_in_process(instance=instance)
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["gold_totals_preserved"] is False
