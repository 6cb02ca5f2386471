"""`dagfleet.debugging`: attach configurations, remote roots and port-forward commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dagfleet.debugging import (
    DebugError,
    attach_config,
    check_debuggable,
    k8s_remote_root,
    launch_json,
    local_remote_root,
    location_spec,
    port_forward,
)
from dagfleet.render import K8sOptions, render_k8s
from dagfleet.spec.models import Fleet, FleetSpec, RepoSpec

pytestmark = pytest.mark.unit


def fleet(name: str = "datpipe", debug_a: bool = True) -> Fleet:
    spec = FleetSpec.model_validate(
        {
            "name": name,
            "environments": [
                {"name": "A", "branch": "A", "debug": debug_a, "playground": True},
                {"name": "B", "branch": "B", "playground": True},
            ],
        }
    )
    repo = RepoSpec.model_validate(
        {"name": "sales", "git_url": "https://git.example.com/sales.git", "module_name": "s.defs"}
    )
    return Fleet(root="/fleet", spec=spec, repos={"sales": repo})


def test_attach_config_is_a_debugpy_attach_with_subprocesses() -> None:
    config = attach_config("Attach", 5680, "/state/checkouts/sales-A/current")
    assert config == {
        "name": "Attach",
        "type": "debugpy",
        "request": "attach",
        "connect": {"host": "127.0.0.1", "port": 5680},
        "pathMappings": [
            {"localRoot": "${workspaceFolder}", "remoteRoot": "/state/checkouts/sales-A/current"}
        ],
        "justMyCode": False,
        "subProcess": True,
    }


def test_launch_json_document() -> None:
    doc = launch_json(attach_config("one", 1, "/r"), attach_config("two", 2, "/r"))
    assert doc["version"] == "0.2.0"
    assert [c["name"] for c in doc["configurations"]] == ["one", "two"]
    json.dumps(doc)  # serialisable as printed


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("sales-A", "/state/.dagfleet/checkouts/sales-A/current"),
        ("playground-A", "/state/.dagfleet/playground/A/playground"),
    ],
)
def test_local_remote_root(location: str, expected: str) -> None:
    f = fleet()
    assert local_remote_root(Path("/state/.dagfleet"), location_spec(f, location)) == expected


@pytest.mark.parametrize(
    ("location", "expected"),
    [("sales-A", "/opt/dagster/git/current"), ("playground-A", "/opt/dagster/app/playground")],
)
def test_k8s_remote_root(location: str, expected: str) -> None:
    assert k8s_remote_root(location_spec(fleet(), location)) == expected


def test_port_forward_names_match_the_k8s_render() -> None:
    f = fleet()
    forward = port_forward(f, location_spec(f, "sales-A"))
    assert forward.command() == "kubectl port-forward -n datpipe-a deployment/sales-a 5678:5678"
    # The names and the port are the ones `dagfleet render k8s` writes.
    rendered = render_k8s(f, K8sOptions())
    deployments: list[dict[str, Any]] = [
        doc
        for docs in rendered.values()
        for doc in (docs if isinstance(docs, list) else [docs])
        if isinstance(doc, dict) and doc.get("kind") == "Deployment"
    ]
    match = [
        d
        for d in deployments
        if d["metadata"]["name"] == forward.deployment
        and d["metadata"]["namespace"] == forward.namespace
    ]
    assert len(match) == 1, [d["metadata"] for d in deployments]
    ports = match[0]["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert {"name": "debugpy", "containerPort": forward.remote_port} in ports


def test_port_forward_local_port_is_free_to_choose() -> None:
    f = fleet()
    argv = port_forward(f, location_spec(f, "sales-A"), local_port=15678).argv()
    assert argv[-1] == "15678:5678"


def test_port_forward_refuses_playgrounds() -> None:
    f = fleet()
    with pytest.raises(DebugError, match="without debugpy"):
        port_forward(f, location_spec(f, "playground-A"))


def test_check_debuggable_names_the_fix() -> None:
    f = fleet(debug_a=False)
    with pytest.raises(DebugError, match=r"set debug: true on environment A in fleet\.yaml"):
        check_debuggable(f, location_spec(f, "sales-A"))
    check_debuggable(fleet(), location_spec(fleet(), "sales-A"))


def test_unknown_location_lists_the_known_ones() -> None:
    with pytest.raises(DebugError, match=r"unknown location 'nope'.*sales-A"):
        location_spec(fleet(), "nope")
