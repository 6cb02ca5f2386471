"""A monorepo renders one code server per location, each in its own working directory
with its own values, and every name stays a valid Kubernetes name."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dagfleet.render import render_compose, render_k8s
from tests.unit.render.fleets import make_fleet

pytestmark = pytest.mark.unit

MONO = {
    "name": "mono",
    "git_url": "https://git.example.com/data/mono.git",
    "environment": [{"name": "DBT_PROJECT_DIR", "value": "${DAGFLEET_CHECKOUT}/jaffle"}],
    "locations": [
        {"name": "ingest", "working_directory": "projects/ingest"},
        {
            "name": "reporting",
            "working_directory": "projects/reporting",
            "module_name": "reporting.definitions",
            "environment": [{"name": "WHO", "value": "reporting"}],
        },
    ],
}


def fleet() -> Any:
    return make_fleet({"name": "acme", "environments": [{"name": "A"}, {"name": "B"}]}, [MONO])


def deployments() -> dict[str, dict[str, Any]]:
    out = {}
    for docs in render_k8s(fleet()).values():
        for doc in docs if isinstance(docs, list) else [docs]:
            if isinstance(doc, dict) and doc.get("kind") == "Deployment":
                out[doc["metadata"]["name"]] = doc
    return out


def code_server(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] != "git-sync")


def test_one_deployment_per_location_with_its_directory_target_and_values() -> None:
    found = deployments()
    names = {n for n in found if "mono" in n}
    assert {n for n in names if "ingest" in n} and {n for n in names if "reporting" in n}
    reporting = next(d for n, d in found.items() if "reporting" in n and n.endswith("-a"))
    container = code_server(reporting)
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    args = json.loads(env["DAGFLEET_TARGET_ARGS"])
    assert args[args.index("-m") + 1] == "reporting.definitions"
    assert args[args.index("--working-directory") + 1].endswith("/current/projects/reporting")
    assert env["DAGFLEET_CODE_DIR"].endswith("/current/projects/reporting")
    assert env["WHO"] == "reporting"
    assert env["DBT_PROJECT_DIR"].endswith("/current/jaffle")
    assert env["DAGFLEET_LOCATION"] == "mono-reporting-A"
    ingest = next(d for n, d in found.items() if "ingest" in n and n.endswith("-a"))
    ingest_env = {e["name"]: e.get("value") for e in code_server(ingest).get("env", [])}
    assert "WHO" not in ingest_env
    assert "DAGFLEET_TARGET_ARGS" not in ingest_env  # discovered by the launcher
    assert ingest_env["DAGFLEET_CODE_DIR"].endswith("/current/projects/ingest")


def test_compose_has_a_service_per_location() -> None:
    doc = render_compose(fleet())["compose.yaml"]
    services = set(doc["services"])
    for location in ("mono-ingest-a", "mono-reporting-a", "mono-ingest-b", "mono-reporting-b"):
        assert any(location in s.lower() for s in services), services
