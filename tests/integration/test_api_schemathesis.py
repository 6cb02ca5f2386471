"""Schema fuzzing: schemathesis against the live OpenAPI of a real uvicorn server.

Bounded (100 examples per operation, no deadline) with an admin token: no
response is a 5xx and every response matches the documented status codes,
content types, headers and schemas. `FuzzController` stands in for the live
runtime (`dagfleet up`), which the fuzzer must not drive into real git work.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from dagfleet.api import ApiServer, ApiSettings, create_app
from dagfleet.control import ControlError, PromoteOutcome, SyncOutcome
from dagfleet.offline import OfflineController
from dagfleet.registry import Registry
from dagfleet.spec.defaults import default_fleet_document
from tests.support.fleetproc import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]
TOKEN = "fuzz-admin-token"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


class FuzzController(OfflineController):
    """Stands in for the live runtime: answers like it without doing git work."""

    def sync(self, repo: str | None, env: str | None, wait: bool) -> list[SyncOutcome]:
        return [SyncOutcome(f"{repo}-{env or 'A'}", False, None)]

    def request_sync_for_push(self, git_url: str, branch: str) -> list[str]:
        return []

    def promote(self, repo: str, source: str, target: str, merge: bool) -> PromoteOutcome:
        if source == target:
            raise ControlError("source and target are the same", 409)
        return PromoteOutcome(repo, source, target, "0" * 40, target)


@pytest.fixture(scope="module")
def live_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root: Path = tmp_path_factory.mktemp("fuzz-fleet")
    (root / "fleet.yaml").write_text(yaml.safe_dump(default_fleet_document()))
    (root / "repos").mkdir()
    Registry(root).create({"name": "sales", "git_url": "https://git.example.com/sales.git"})
    api_settings = ApiSettings(
        fleet_dir=root,
        tokens={TOKEN: "admin"},
        webhook_secret="fuzz-secret",
        follow_max_seconds=0.5,  # a fuzzed follow=true must end
    )
    server = ApiServer(create_app(api_settings, FuzzController(root)), "127.0.0.1", free_port())
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def _operations(url: str) -> list[str]:
    return [r.ok().label for r in schemathesis.openapi.from_url(url).get_all_operations()]


# The schemathesis pytest plugin (from_fixture) does not run under pytest 9, so each
# operation gets its own hypothesis test here: one pytest item per operation.
# One test per operation, exactly: a new route makes test_every_operation_is_fuzzed
# fail until this number counts it (no empty slots skipped, no route left unfuzzed).
SLOTS = 31


@pytest.mark.parametrize("index", range(SLOTS))
def test_api_conforms_to_its_schema(live_api: str, index: int) -> None:
    api = schemathesis.openapi.from_url(f"{live_api}/api/v1/openapi.json")
    operations = [r.ok() for r in api.get_all_operations()]
    assert len(operations) == SLOTS, f"{len(operations)} operations: set SLOTS to that"
    operation = operations[index]

    @given(case=operation.as_strategy())
    @settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(
            headers={"Authorization": f"Bearer {TOKEN}"}, checks=CHECKS, timeout=30
        )

    run()


def test_every_operation_is_fuzzed(live_api: str) -> None:
    assert len(_operations(f"{live_api}/api/v1/openapi.json")) == SLOTS
