"""Scenario: a fleet whose storage root is s3://bucket/prefix on an S3-compatible
endpoint. The medallion jobs run in A and B through `dagfleet up` and write their
objects under `<prefix>/<env>/repos/medallion/...`, each environment its own; the
step stdout/stderr of every run is uploaded under its own location's `logs/`."""

from __future__ import annotations

from pathlib import Path

import boto3

from dagfleet.scaffold import publish_example
from tests.support.fleetproc import write_fleet
from tests.support.s3 import moto_server

BUCKET = "dagfleet-e2e"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
}


def test_medallion_writes_under_each_environments_prefix(tmp_path: Path, start_fleet) -> None:
    url = publish_example(tmp_path / "remotes" / "medallion.git")
    with moto_server() as endpoint:
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )
        client.create_bucket(Bucket=BUCKET)
        fleet_dir = write_fleet(
            tmp_path / "fleet",
            {
                "medallion": {
                    "git_url": url,
                    "module_name": "medallion.definitions",
                    "branches": {"A": "A", "B": "B"},
                }
            },
            storage={"root": f"s3://{BUCKET}/fleet", "endpoint_url": endpoint},
        )
        fleet = start_fleet(fleet_dir, extra=["--no-daemon"], env=CREDENTIALS)
        fleet.wait_loaded({"medallion-A", "medallion-B"}, timeout=400)
        runs: dict[str, tuple[str, str]] = {}  # run id -> (env, job)
        for env in ("A", "B"):
            for job in ("bronze_to_silver_job", "silver_to_gold_job"):
                run_id = fleet.gql.launch(f"medallion-{env}", job)
                assert fleet.gql.wait_run(run_id) == "SUCCESS", (env, job)
                runs[run_id] = (env, job)
        listed = client.list_objects_v2(Bucket=BUCKET, Prefix="fleet/")
        keys = {obj["Key"] for obj in listed.get("Contents", [])}
        # Step logs: uploaded when the run's capture ends, under the location's logs/.
        for run_id, (env, job) in runs.items():
            logs = f"fleet/{env}/repos/medallion/logs/{run_id}/compute_logs/"
            of_run = {k for k in keys if run_id in k}
            assert of_run and all(k.startswith(logs) for k in of_run), (job, sorted(of_run))
            assert any(k.endswith(".out") for k in of_run), (job, sorted(of_run))
            (err,) = [k for k in of_run if k.endswith(".err")]
            text = client.get_object(Bucket=BUCKET, Key=err)["Body"].read().decode()
            # context.log's console output: the steps of this location's run, its root.
            mark = "silver: adding total_price" if job == "bronze_to_silver_job" else "gold: "
            assert mark in text, (job, text[-2000:])
            if job == "bronze_to_silver_job":
                assert f"storage root is s3://{BUCKET}/fleet/{env}/repos/medallion" in text
        for env in ("A", "B"):
            base = f"fleet/{env}/repos/medallion"
            assert f"{base}/silver/silver_data.csv" in keys, sorted(keys)
            assert f"{base}/gold/gold_data.csv" in keys, sorted(keys)
        assert all(
            k.startswith(("fleet/A/repos/medallion/", "fleet/B/repos/medallion/")) for k in keys
        )
        gold = client.get_object(Bucket=BUCKET, Key="fleet/A/repos/medallion/gold/gold_data.csv")
        header = gold["Body"].read().decode().splitlines()[0]
        assert header.startswith("category,")
        fleet.stop()
