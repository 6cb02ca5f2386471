"""The GraphQL gate: parsing /graphql requests, classifying every mutation, deciding.

The UI documents (ui_documents.json) are the Dagster UI's own operations, taken from the
installed dagster-webserver's bundle with the fragments each one spreads.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from graphql import GraphQLSchema, get_named_type, is_leaf_type, parse, validate

from dagfleet.frontdoor.gate import (
    MAX_DEPTH,
    MUTATIONS,
    AssetRef,
    BackfillRef,
    Decision,
    GateError,
    InstigatorRef,
    LocationRef,
    Operation,
    Ref,
    Requirement,
    RunRef,
    authorize,
    parse_request,
    parse_ws_payload,
    requirements,
    route_requirements,
)
from dagfleet.frontdoor.roles import Action, Grant, Principal, Target

UI = json.loads((Path(__file__).parent / "ui_documents.json").read_text())
JSON = "application/json"
L, E, A, V = Action.LAUNCH, Action.EDIT, Action.ADMIN, Action.VIEW


@cache
def schema() -> GraphQLSchema:
    from dagster_graphql.schema import create_schema

    return create_schema().graphql_schema


def post(payload: Any, content_type: str = JSON) -> list[Operation]:
    return parse_request("POST", b"", content_type, json.dumps(payload).encode())


def one(
    query: str, variables: Mapping[str, Any] | None = None, name: str | None = None
) -> Operation:
    payload: dict[str, Any] = {"query": query, "variables": variables}
    if name is not None:
        payload["operationName"] = name
    [op] = post(payload)
    return op


def needs(
    query: str, variables: Mapping[str, Any] | None = None
) -> list[tuple[Action, Ref | None]]:
    return [(r.action, r.ref) for r in requirements(one(query, variables))]


def refused(status: int, *args: Any) -> str:
    with pytest.raises(GateError) as info:
        parse_request(*args)
    assert info.value.status == status, info.value.message
    return info.value.message


# --- every mutation of the installed schema ---------------------------------------------

SEL = 'repositoryLocationName: "a", repositoryName: "r"'
EXEC_A = f'{{selector: {{{SEL}, jobName: "j"}}}}'
EXEC_B = '{selector: {repositoryLocationName: "b", repositoryName: "r", jobName: "j"}}'

# field -> (literal arguments, action, targets). One entry per mutation of the schema.
EXPECTED: dict[str, tuple[str, Action, list[Ref | None]]] = {
    "launchRun": (f"executionParams: {EXEC_A}", L, [LocationRef("a")]),
    "launchPipelineExecution": (f"executionParams: {EXEC_A}", L, [LocationRef("a")]),
    "launchMultipleRuns": (
        f"executionParamsList: [{EXEC_A}, {EXEC_B}]",
        L,
        [LocationRef("a"), LocationRef("b")],
    ),
    "launchRunReexecution": (
        'reexecutionParams: {parentRunId: "run1", strategy: FROM_FAILURE}',
        L,
        [RunRef("run1")],
    ),
    "launchPipelineReexecution": (
        f'executionParams: {{selector: {{{SEL}, jobName: "j"}}, '
        'executionMetadata: {parentRunId: "run1", rootRunId: "run0"}}',
        L,
        [LocationRef("a"), RunRef("run1"), RunRef("run0")],
    ),
    "launchPartitionBackfill": (
        'backfillParams: {selector: {partitionSetName: "p", repositorySelector: '
        f'{{{SEL}}}}}, partitionNames: ["x"], assetSelection: [{{path: ["x", "y"]}}]}}',
        L,
        [LocationRef("a"), AssetRef(("x", "y"))],
    ),
    "resumePartitionBackfill": ('backfillId: "bf"', L, [BackfillRef("bf")]),
    "reexecutePartitionBackfill": (
        'reexecutionParams: {parentRunId: "bf", strategy: ALL_STEPS}',
        L,
        [BackfillRef("bf")],
    ),
    "scheduleDryRun": (f'selectorData: {{{SEL}, scheduleName: "s"}}', L, [LocationRef("a")]),
    "sensorDryRun": (f'selectorData: {{{SEL}, sensorName: "s"}}', L, [LocationRef("a")]),
    "reportRunlessAssetEvents": (
        'eventParams: {eventType: ASSET_MATERIALIZATION, assetKey: {path: ["x"]}}',
        L,
        [AssetRef(("x",))],
    ),
    "reportAssetCheckEvaluations": (
        'eventParams: {assetKey: {path: ["x"]}, checkName: "c", passed: true}',
        L,
        [AssetRef(("x",))],
    ),
    "terminateRun": ('runId: "r1"', E, [RunRef("r1")]),
    "terminatePipelineExecution": ('runId: "r1"', E, [RunRef("r1")]),
    "terminateRuns": ('runIds: ["r1", "r2"]', E, [RunRef("r1"), RunRef("r2")]),
    "deleteRun": ('runId: "r1"', E, [RunRef("r1")]),
    "deletePipelineRun": ('runId: "r1"', E, [RunRef("r1")]),
    "cancelPartitionBackfill": ('backfillId: "bf"', E, [BackfillRef("bf")]),
    "wipeAssets": (
        'assetPartitionRanges: [{assetKey: {path: ["x"]}}, {assetKey: {path: ["y", "z"]}}]',
        E,
        [AssetRef(("x",)), AssetRef(("y", "z"))],
    ),
    "startSchedule": (f'scheduleSelector: {{{SEL}, scheduleName: "s"}}', E, [LocationRef("a")]),
    "resetSchedule": (f'scheduleSelector: {{{SEL}, scheduleName: "s"}}', E, [LocationRef("a")]),
    "stopRunningSchedule": (
        'id: "origin1::selector1"',
        E,
        [InstigatorRef("origin1"), InstigatorRef("selector1")],
    ),
    "startSensor": (f'sensorSelector: {{{SEL}, sensorName: "s"}}', E, [LocationRef("a")]),
    "resetSensor": (f'sensorSelector: {{{SEL}, sensorName: "s"}}', E, [LocationRef("a")]),
    "setSensorCursor": (
        f'sensorSelector: {{{SEL}, sensorName: "s"}}, cursor: "c"',
        E,
        [LocationRef("a")],
    ),
    "stopSensor": (
        'jobOriginId: "origin2", jobSelectorId: "selector2"',
        E,
        [InstigatorRef("origin2"), InstigatorRef("selector2")],
    ),
    "reloadRepositoryLocation": ('repositoryLocationName: "a"', E, [LocationRef("a")]),
    "shutdownRepositoryLocation": ('repositoryLocationName: "a"', E, [LocationRef("a")]),
    "addDynamicPartition": (
        f'repositorySelector: {{{SEL}}}, partitionsDefName: "d", partitionKey: "k"',
        E,
        [LocationRef("a")],
    ),
    "deleteDynamicPartitions": (
        f'repositorySelector: {{{SEL}}}, partitionsDefName: "d", partitionKeys: ["k"]',
        E,
        [LocationRef("a")],
    ),
    "refreshComponentState": ('locationName: "a", defsStateKey: "k"', E, [LocationRef("a")]),
    "reloadWorkspace": ("", A, [None]),
    "setConcurrencyLimit": ('concurrencyKey: "k", limit: 1', A, [None]),
    "deleteConcurrencyLimit": ('concurrencyKey: "k"', A, [None]),
    "freeConcurrencySlots": ('runId: "r1"', A, [None]),
    "freeConcurrencySlotsForRun": ('runId: "r1"', A, [None]),
    "setAutoMaterializePaused": ("paused: true", A, [None]),
    "setAppManagedComponent": (
        'locationName: "a", componentId: "c", componentType: "t", attributes: "{}"',
        A,
        [LocationRef("a")],
    ),
    "deleteAppManagedComponent": ('locationName: "a", componentId: "c"', A, [LocationRef("a")]),
    "logTelemetry": ('action: "x", clientId: "c", clientTime: "t", metadata: "{}"', V, [None]),
    "setNuxSeen": ("", V, [None]),
}


def mutation_document(name: str, args: str) -> str:
    returns = get_named_type(schema().mutation_type.fields[name].type)  # type: ignore[union-attr]
    selection = "" if is_leaf_type(returns) else " { __typename }"
    return f"mutation {{ {name}{f'({args})' if args else ''}{selection} }}"


def test_every_mutation_of_the_installed_schema_is_classified() -> None:
    """Fails when a Dagster upgrade adds (or removes) a mutation: classify it in MUTATIONS,
    EXPECTED here and docs/frontdoor-gate.md."""
    fields = set(schema().mutation_type.fields)  # type: ignore[union-attr]
    assert fields - set(MUTATIONS) == set(), "unclassified mutations"
    assert set(MUTATIONS) - fields == set(), "classified mutations the schema lacks"
    assert set(EXPECTED) == fields


def test_the_doc_table_lists_every_mutation_with_its_action() -> None:
    doc = (Path(__file__).parents[3] / "docs" / "frontdoor-gate.md").read_text()
    for name, rule in MUTATIONS.items():
        assert f"| `{name}` | {rule.action.value} |" in doc, name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_mutation_action_and_target(name: str) -> None:
    args, action, targets = EXPECTED[name]
    document = mutation_document(name, args)
    assert validate(schema(), parse(document)) == [], "the test's document is not valid"
    reqs = requirements(one(document))
    assert [(r.action, r.field, r.ref) for r in reqs] == [(action, name, t) for t in targets]
    assert all(r.anywhere == (action is V) for r in reqs)


@pytest.mark.parametrize("name", sorted(k for k in UI if k.startswith("mutation ")))
def test_ui_mutations_without_variables_need_their_action_fleet_wide(name: str) -> None:
    """The UI's real documents: the gate finds the root field through the UI's fragments,
    and with its variables missing never guesses a location."""
    op = one(UI[name], {}, name.split()[1])
    [root] = {f.name for f in op.fields}
    reqs = requirements(op)
    assert reqs and {r.action for r in reqs} == {MUTATIONS[root].action}
    assert {r.ref for r in reqs} == {None}


UI_VARIABLES: list[tuple[str, dict[str, Any], list[tuple[Action, Ref | None]]]] = [
    (
        "LaunchPipelineExecution",
        {
            "executionParams": {
                "selector": {
                    "repositoryLocationName": "sales",
                    "repositoryName": "__repository__",
                    "pipelineName": "daily",
                },
                "runConfigData": {},
                "mode": "default",
                "executionMetadata": {"tags": [{"key": "dagster/from_ui", "value": "true"}]},
            }
        },
        [(L, LocationRef("sales"))],
    ),
    (
        "Terminate",
        {"runIds": ["r1", "r2"], "terminatePolicy": "SAFE_TERMINATE"},
        [(E, RunRef("r1")), (E, RunRef("r2"))],
    ),
    ("Terminate", {"runIds": "r1"}, [(E, RunRef("r1"))]),  # a single value is a list of one
    ("StopSchedule", {"id": "o::s"}, [(E, InstigatorRef("o")), (E, InstigatorRef("s"))]),
    (
        "AssetWipeMutation",
        {"assetPartitionRanges": [{"assetKey": {"path": ["x"]}}]},
        [(E, AssetRef(("x",)))],
    ),
    ("ReloadRepositoryLocationMutation", {"location": "sales"}, [(E, LocationRef("sales"))]),
    (
        "reexecuteBackfill",
        {"reexecutionParams": {"parentRunId": "bf1", "strategy": "FROM_FAILURE"}},
        [(L, BackfillRef("bf1"))],
    ),
    (
        "LaunchPartitionBackfill",
        {"backfillParams": {"partitionNames": ["2024-01-01"], "assetSelection": [{"path": ["x"]}]}},
        [(L, AssetRef(("x",)))],
    ),
    (
        "LaunchPipelineReexecution",
        {"reexecutionParams": {"parentRunId": "r9", "strategy": "ALL_STEPS"}},
        [(L, RunRef("r9"))],
    ),
    (
        "ReportEventMutation",
        {"eventParams": {"eventType": "ASSET_OBSERVATION", "assetKey": {"path": "x"}}},
        [(L, AssetRef(("x",)))],
    ),
]


@pytest.mark.parametrize(("name", "variables", "expected"), UI_VARIABLES)
def test_ui_mutations_take_their_target_from_variables(
    name: str, variables: dict[str, Any], expected: list[tuple[Action, Ref | None]]
) -> None:
    assert needs(UI[f"mutation {name}"], variables) == expected


def test_ui_subscriptions_and_queries_are_reads() -> None:
    for name in (
        "subscription PipelineRunLogsSubscription",
        "subscription CapturedLogsSubscription",
        "query RunRootQuery",
    ):
        [req] = requirements(one(UI[name], {"runId": "r1"}))
        assert (req.action, req.ref, req.anywhere) == (V, None, True)


# --- target extraction ---------------------------------------------------------------------

TERMINATE = "mutation T($id: String!) { terminateRun(runId: $id) { __typename } }"


def test_variables_are_inlined_and_missing_ones_need_the_action_fleet_wide() -> None:
    assert needs(TERMINATE, {"id": "r7"}) == [(E, RunRef("r7"))]
    assert needs(TERMINATE, {}) == [(E, None)]
    assert needs(TERMINATE, None) == [(E, None)]
    assert needs(TERMINATE, {"id": 7}) == [(E, None)]  # not a string: unreadable
    with_default = 'mutation($id: String = "r8") { terminateRun(runId: $id) { __typename } }'
    assert needs(with_default, {}) == [(E, RunRef("r8"))]
    assert needs(with_default, {"id": "r9"}) == [(E, RunRef("r9"))]


def test_variables_inside_input_objects_and_as_a_json_string() -> None:
    doc = (
        "mutation($loc: String!) { launchRun(executionParams: {selector: "
        '{repositoryLocationName: $loc, repositoryName: "r", jobName: "j"}}) { __typename } }'
    )
    assert needs(doc, {"loc": "b"}) == [(L, LocationRef("b"))]
    [op] = post({"query": doc, "variables": json.dumps({"loc": "c"})})
    assert [r.ref for r in requirements(op)] == [LocationRef("c")]
    assert needs(doc, {"loc": None}) == [(L, None)]


def test_a_missing_selector_or_empty_list_is_fleet_wide() -> None:
    assert needs("mutation { launchRun(executionParams: {}) { __typename } }") == [(L, None)]
    assert needs("mutation { terminateRuns(runIds: []) { __typename } }") == [(E, None)]
    assert needs(
        "mutation($p: LaunchBackfillParams!) "
        "{ launchPartitionBackfill(backfillParams: $p) { __typename } }",
        {},
    ) == [(L, None)]
    assert needs('mutation { stopSensor(id: "") { __typename } }') == [(E, None)]
    assert needs("mutation { stopSensor { __typename } }") == [(E, None)]


def test_aliases_hide_nothing() -> None:
    doc = (
        'mutation { look: terminateRun(runId: "r1") { __typename } '
        'other: deleteRun(runId: "r2") { __typename } }'
    )
    assert [(r.field, r.ref) for r in requirements(one(doc))] == [
        ("terminateRun", RunRef("r1")),
        ("deleteRun", RunRef("r2")),
    ]


def test_named_and_inline_fragments_are_followed_to_the_real_root_fields() -> None:
    doc = """
    mutation M { ...Outer ... on Mutation { reloadWorkspace { __typename } } }
    fragment Outer on Mutation { ...Inner }
    fragment Inner on Mutation {
      ... { x: wipeAssets(assetPartitionRanges: [{assetKey: {path: ["k"]}}]) { __typename } }
    }
    """
    assert needs(doc) == [(E, AssetRef(("k",))), (A, None)]


def test_skip_and_include_do_not_hide_a_field() -> None:
    doc = 'mutation { terminateRun(runId: "r1") @skip(if: true) { __typename } }'
    assert needs(doc) == [(E, RunRef("r1"))]


def test_operation_name_selects_the_operation() -> None:
    doc = 'query Q { version } mutation M { terminateRun(runId: "r1") { __typename } }'
    assert one(doc, name="M").kind == "mutation"
    assert needs_op(one(doc, name="M")) == [(E, RunRef("r1"))]
    assert one(doc, name="Q").kind == "query"
    message = refused(400, "POST", b"", JSON, json.dumps({"query": doc}).encode())
    assert "operationName" in message
    refused(400, "POST", b"", JSON, json.dumps({"query": doc, "operationName": "Nope"}).encode())
    twice = "mutation M { reloadWorkspace { __typename } } mutation M { setNuxSeen }"
    refused(400, "POST", b"", JSON, json.dumps({"query": twice, "operationName": "M"}).encode())


def needs_op(op: Operation) -> list[tuple[Action, Ref | None]]:
    return [(r.action, r.ref) for r in requirements(op)]


def test_unknown_mutation_is_denied_naming_the_field() -> None:
    op = Operation("mutation", None, ())
    from dagfleet.frontdoor.gate import RootField

    op = Operation("mutation", None, (RootField("launchEverything", {}),))
    with pytest.raises(GateError) as info:
        requirements(op)
    assert info.value.status == 403 and "launchEverything" in info.value.message
    decision = decide(ADMIN, [op])
    assert not decision.allowed and decision.status == 403
    assert "launchEverything" in decision.message


def test_typename_at_the_root_of_a_mutation_needs_nothing() -> None:
    assert needs("mutation { __typename }") == []


# --- parsing the request ----------------------------------------------------------------------


def test_get_executes_queries_from_the_url() -> None:
    qs = urlencode(
        {"query": TERMINATE, "variables": json.dumps({"id": "r1"}), "operationName": "T"}
    )
    [op] = parse_request("GET", qs, None, b"")
    assert needs_op(op) == [(E, RunRef("r1"))]
    [op] = parse_request("GET", qs.encode(), None, b"")
    assert needs_op(op) == [(E, RunRef("r1"))]
    [op] = parse_request("GET", {"query": "{ version }"}, None, b"")
    assert op.kind == "query"
    assert parse_request("GET", "", None, b"") == []  # GraphiQL page: nothing runs


def test_get_with_a_repeated_parameter_is_refused() -> None:
    qs = urlencode(
        [("query", "{ version }"), ("query", "mutation { reloadWorkspace { __typename } }")]
    )
    assert "repeats" in refused(400, "GET", qs, None, b"")


def test_methods_other_than_get_and_post_are_refused() -> None:
    refused(405, "PUT", b"", JSON, b"{}")


def test_application_graphql_bodies_are_raw_documents() -> None:
    [op] = parse_request(
        "POST", b"", "application/graphql", b'mutation { terminateRun(runId: "r1") { __typename } }'
    )
    assert needs_op(op) == [(E, RunRef("r1"))]
    refused(400, "POST", b"", "application/graphql", b"\xff\xfe")


def test_json_with_a_charset_is_json() -> None:
    [op] = parse_request(
        "POST",
        b"",
        "application/json; charset=utf-8",
        json.dumps({"query": TERMINATE, "variables": {"id": "r1"}}).encode(),
    )
    assert needs_op(op) == [(E, RunRef("r1"))]


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "text/plain",
        # the webserver tests substrings case-sensitively: it would read these from the URL
        "Application/JSON",
        "APPLICATION/GRAPHQL",
        # and these as JSON although they are not
        "text/plain; x=application/json",
        "application/graphql; application/json",
    ],
)
def test_other_content_types_are_refused(content_type: str | None) -> None:
    body = json.dumps({"query": "{ version }"}).encode()
    qs = urlencode({"query": "mutation { reloadWorkspace { __typename } }"})
    refused(415, "POST", qs, content_type, body)


def test_batches_are_every_operation() -> None:
    ops = post([{"query": "{ version }"}, {"query": TERMINATE, "variables": {"id": "r1"}}])
    assert [op.kind for op in ops] == ["query", "mutation"]
    refused(400, "POST", b"", JSON, b"[]")
    refused(400, "POST", b"", JSON, b'[{"query": "{ version }"}, 3]')


def test_persisted_queries_are_refused() -> None:
    payload = {
        "extensions": {"persistedQuery": {"version": 1, "sha256Hash": "ab" * 32}},
        "variables": {},
    }
    assert "persisted" in refused(400, "POST", b"", JSON, json.dumps(payload).encode())
    qs = urlencode({"extensions": json.dumps(payload["extensions"])})
    assert parse_request("GET", qs, None, b"") == []  # no query: nothing runs upstream either


def test_oversized_bodies_are_refused() -> None:
    big = json.dumps({"query": "{ version }", "variables": {"x": "y" * 2000}}).encode()
    refused(413, "POST", b"", JSON, big, 1000)


def test_deep_documents_are_refused() -> None:
    deep = "{ " + "a { " * (MAX_DEPTH + 1) + "b" + " }" * (MAX_DEPTH + 2)
    assert "deeper" in refused(400, "POST", b"", JSON, json.dumps({"query": deep}).encode())
    # depth through fragments counts too
    frags = "".join(
        f"fragment F{i} on Query {{ a {{ ...F{i + 1} }} }} " for i in range(MAX_DEPTH + 1)
    )
    doc = "query { ...F0 } " + frags + f"fragment F{MAX_DEPTH + 1} on Query {{ b }}"
    refused(400, "POST", b"", JSON, json.dumps({"query": doc}).encode())


def test_documents_with_too_many_tokens_or_nesting_are_refused() -> None:
    many = "{ " + " ".join(f"a{i}: version" for i in range(40_000)) + " }"
    assert "token" in refused(400, "POST", b"", JSON, json.dumps({"query": many}).encode()).lower()
    nested = "{ f(a: " + "[" * 5000 + "]" * 5000 + ") }"
    refused(400, "POST", b"", JSON, json.dumps({"query": nested}).encode())


def test_fragment_cycles_and_unknown_fragments_are_refused() -> None:
    cycle = "query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }"
    assert "spreads itself" in refused(
        400, "POST", b"", JSON, json.dumps({"query": cycle}).encode()
    )
    unknown = "mutation { ...Nope }"
    assert "Nope" in refused(400, "POST", b"", JSON, json.dumps({"query": unknown}).encode())
    dup = "query { ...A } fragment A on Query { version } fragment A on Query { version }"
    refused(400, "POST", b"", JSON, json.dumps({"query": dup}).encode())


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b'{"query": 5}',
        b'{"query": ["{ version }"]}',
        b'{"query": null}',
        b"{}",
        b'"just a string"',
        b'{"query": "mutation {"}',
        b'{"query": "{ version }", "variables": "{bad"}',
        b'{"query": "{ version }", "variables": [1]}',
        b'{"query": "{ version }", "operationName": 3}',
        b'{"query": "{ version }", "query": "mutation { reloadWorkspace { __typename } }"}',
        b'{"query": "fragment A on Query { version }"}',
        b'{"query": "type Evil { a: Int } query { version }"}',
        b"\xff\xfe\x00",
        b"[" * 100_000 + b"]" * 100_000,
    ],
)
def test_malformed_requests_are_4xx_never_exceptions(body: bytes) -> None:
    with pytest.raises(GateError) as info:
        parse_request("POST", b"", JSON, body)
    assert 400 <= info.value.status < 500


def test_websocket_payloads_use_operation_name_as_the_webserver_reads_it() -> None:
    doc = (
        'subscription S { pipelineRunLogs(runId: "r") { __typename } } '
        "mutation M { reloadWorkspace { __typename } }"
    )
    assert parse_ws_payload({"query": doc, "operation_name": "M"}).kind == "mutation"
    assert parse_ws_payload({"query": doc, "operation_name": "S"}).kind == "subscription"
    with pytest.raises(GateError):
        parse_ws_payload({"query": doc, "operationName": "S"})  # ignored upstream: ambiguous
    with pytest.raises(GateError):
        parse_ws_payload("nope")


# --- deciding ----------------------------------------------------------------------------------


@dataclass
class TableResolver:
    """A gate.Resolver over fixed tables (the real one is tested against a webserver)."""

    runs: dict[str, str] = field(default_factory=dict)
    backfills: dict[str, frozenset[str]] = field(default_factory=dict)
    assets: dict[tuple[str, ...], frozenset[str]] = field(default_factory=dict)
    instigators: dict[str, str] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)

    async def run_location(self, run_id: str) -> str | None:
        self.asked.append(run_id)
        return self.runs.get(run_id)

    async def backfill_locations(self, backfill_id: str) -> frozenset[str] | None:
        return self.backfills.get(backfill_id)

    async def asset_locations(self, path: tuple[str, ...]) -> frozenset[str] | None:
        return self.assets.get(path)

    async def instigator_location(self, instigator_id: str) -> str | None:
        return self.instigators.get(instigator_id)


RESOLVER = TableResolver(
    runs={"ra": "a", "rb": "b"},
    backfills={"bfa": frozenset({"a"}), "bfab": frozenset({"a", "b"})},
    assets={("x",): frozenset({"a"}), ("shared",): frozenset({"a", "b"})},
    instigators={"oa": "a", "sa": "a", "ob": "b"},
)


def who(name: str, *grants: Grant) -> Principal:
    return Principal(name, "password", grants)


ADMIN = who("root", Grant("admin"))
VIEWER_A = who("val", Grant("viewer", locations=("a",)))
LAUNCHER_A = who("lin", Grant("launcher", locations=("a",)))
EDITOR_A = who("eve", Grant("editor", locations=("a",)), Grant("viewer"))
EDITOR_ALL = who("ed", Grant("editor"))


def decide(principal: Principal, ops: Sequence[Operation], resolver: Any = RESOLVER) -> Decision:
    return asyncio.run(authorize(principal, ops, resolver, lambda loc: Target(loc, "repo", "prod")))


def m(field_name: str) -> list[Operation]:
    args, _action, _targets = EXPECTED[field_name]
    return [one(mutation_document(field_name, args))]


def test_a_scoped_launcher_launches_in_its_location_only() -> None:
    launch_a = post({"query": mutation_document("launchRun", f"executionParams: {EXEC_A}")})
    launch_b = post({"query": mutation_document("launchRun", f"executionParams: {EXEC_B}")})
    decision = decide(LAUNCHER_A, launch_a)
    assert decision.allowed
    assert [(x.action, x.field, x.locations) for x in decision.mutations] == [
        (L, "launchRun", ("a",))
    ]
    denied = decide(LAUNCHER_A, launch_b)
    assert not denied.allowed and denied.status == 403
    assert "lin may not launch in location b" in denied.message
    assert not decide(VIEWER_A, launch_a).allowed


def test_runs_resolve_to_their_location_and_unknown_runs_need_fleet_wide() -> None:
    term = "mutation($r: [String!]!) { terminateRuns(runIds: $r) { __typename } }"
    assert decide(EDITOR_A, [one(term, {"r": ["ra"]})]).allowed
    assert not decide(EDITOR_A, [one(term, {"r": ["ra", "rb"]})]).allowed
    unknown = decide(EDITOR_A, [one(term, {"r": ["gone"]})])
    assert not unknown.allowed and "fleet-wide" in unknown.message
    assert decide(EDITOR_ALL, [one(term, {"r": ["gone"]})]).allowed


def test_an_asset_in_two_locations_needs_both() -> None:
    wipe = (
        "mutation($k: [String!]!) "
        "{ wipeAssets(assetPartitionRanges: [{assetKey: {path: $k}}]) { __typename } }"
    )
    assert decide(EDITOR_A, [one(wipe, {"k": ["x"]})]).allowed
    assert not decide(EDITOR_A, [one(wipe, {"k": ["shared"]})]).allowed
    assert not decide(EDITOR_A, [one(wipe, {"k": ["unknown"]})]).allowed
    decision = decide(EDITOR_ALL, [one(wipe, {"k": ["shared"]})])
    assert decision.mutations[0].locations == ("a", "b")


def test_backfills_and_schedule_ids_resolve() -> None:
    cancel = "mutation($b: String!) { cancelPartitionBackfill(backfillId: $b) { __typename } }"
    assert decide(EDITOR_A, [one(cancel, {"b": "bfa"})]).allowed
    assert not decide(EDITOR_A, [one(cancel, {"b": "bfab"})]).allowed
    stop = "mutation($id: String) { stopRunningSchedule(id: $id) { __typename } }"
    assert decide(EDITOR_A, [one(stop, {"id": "oa::sa"})]).allowed
    # origin of one location with the selector of another: both are checked
    assert not decide(EDITOR_A, [one(stop, {"id": "oa::ob"})]).allowed
    assert not decide(EDITOR_A, [one(stop, {"id": "oa::unknown"})]).allowed


def test_instance_wide_mutations_need_a_fleet_wide_admin() -> None:
    for name in (
        "reloadWorkspace",
        "setConcurrencyLimit",
        "setAutoMaterializePaused",
        "freeConcurrencySlots",
    ):
        assert decide(ADMIN, m(name)).allowed, name
        assert not decide(EDITOR_ALL, m(name)).allowed, name
    scoped_admin = who("sam", Grant("admin", locations=("a",)))
    assert not decide(scoped_admin, m("reloadWorkspace")).allowed
    assert decide(scoped_admin, m("setAppManagedComponent")).allowed
    assert not decide(EDITOR_ALL, m("setAppManagedComponent")).allowed


def test_reads_and_ui_bookkeeping_need_view_anywhere() -> None:
    assert decide(VIEWER_A, post({"query": "{ version }"})).allowed
    assert decide(VIEWER_A, m("logTelemetry")).allowed
    assert decide(VIEWER_A, m("setNuxSeen")).allowed
    nobody = who("nob")
    denied = decide(nobody, post({"query": "{ version }"}))
    assert not denied.allowed and "no role" in denied.message


def test_a_batch_is_allowed_only_if_every_operation_is() -> None:
    ops = post(
        [
            {"query": "{ version }"},
            {"query": TERMINATE, "variables": {"id": "ra"}},
            {"query": TERMINATE, "variables": {"id": "rb"}},
        ]
    )
    denied = decide(EDITOR_A, ops)
    assert not denied.allowed and "location b" in denied.message
    assert denied.mutations == ()
    allowed = decide(EDITOR_ALL, ops)
    assert [(x.field, x.locations) for x in allowed.mutations] == [("terminateRun", ("a", "b"))]


def test_every_classified_mutation_is_denied_to_a_fleet_wide_viewer_unless_view() -> None:
    viewer = who("v", Grant("viewer"))
    for name, rule in MUTATIONS.items():
        decision = decide(viewer, m(name))
        assert decision.allowed == (rule.action is V), name


def test_a_requirement_carries_the_field_name() -> None:
    [req] = requirements(m("deleteRun")[0])
    assert req == Requirement(E, "deleteRun", RunRef("r1"))


def test_the_webservers_other_write_routes_need_launch_fleet_wide() -> None:
    assert route_requirements("POST", "/graphql") is None
    assert route_requirements("GET", "/graphql/") is None
    for path in (
        "/report_asset_materialization/a/b",
        "/report_asset_check/x",
        "/report_asset_observation",
    ):
        [req] = route_requirements("POST", path) or []
        assert (req.action, req.ref, req.anywhere) == (L, None, False), path
    [req] = route_requirements("GET", "/logs/run/step/stdout") or []
    assert (req.action, req.anywhere) == (V, True)


def test_long_fragment_chains_are_refused_not_a_crash() -> None:
    """Spreads count as levels: a 2,000-long chain of fragments is a 400, not a RecursionError."""
    chain = "mutation { ...F0 } " + "".join(
        f"fragment F{i} on Mutation {{ ...F{i + 1} }} " for i in range(2000)
    )
    chain += "fragment F2000 on Mutation { reloadWorkspace { __typename } }"
    assert "deeper" in refused(400, "POST", b"", JSON, json.dumps({"query": chain}).encode())
    # and fragments spread twice at every level cannot blow up exponentially
    twice = "query { ...G0 } " + "".join(
        f"fragment G{i} on Query {{ ...G{i + 1} ...G{i + 1} }} " for i in range(40)
    )
    twice += "fragment G40 on Query { version }"
    refused(400, "POST", b"", JSON, json.dumps({"query": twice}).encode())


def test_target_extraction_never_raises_on_odd_argument_shapes() -> None:
    """Variables may hold any JSON: every rule answers well-formed targets (or fleet-wide)."""
    import random

    from dagfleet.frontdoor.gate import UNREADABLE

    rnd = random.Random(2)
    keys = ["selector", "repositoryLocationName", "executionMetadata", "parentRunId", "path"]
    keys += ["assetKey", "partitionsByAssets", "assetSelection", "runIds", "runId", "id"]
    keys += ["backfillId", "executionParams", "reexecutionParams", "executionParamsList"]
    keys += ["backfillParams", "assetPartitionRanges", "eventParams", "selectorData"]
    keys += ["scheduleSelector", "sensorSelector", "locationName", "jobOriginId"]
    leaves = [None, "", ":: ::", "a::b", "x", 5, 1.5, True, UNREADABLE, [], {}]

    def junk(depth: int = 0) -> Any:
        roll = rnd.random()
        if depth > 3 or roll < 0.3:
            return rnd.choice(leaves)
        if roll < 0.6:
            return [junk(depth + 1) for _ in range(rnd.randint(0, 3))]
        return {rnd.choice(keys): junk(depth + 1) for _ in range(rnd.randint(0, 4))}

    kinds = (LocationRef, RunRef, BackfillRef, AssetRef, InstigatorRef)
    for _ in range(3000):
        name, rule = rnd.choice(list(MUTATIONS.items()))
        args = junk()
        refs = rule.targets(args if isinstance(args, dict) else {})
        assert refs, name
        for ref in refs:
            assert ref is None or isinstance(ref, kinds), (name, args, ref)
            if isinstance(ref, LocationRef | RunRef | BackfillRef | InstigatorRef):
                assert all(isinstance(v, str) and v for v in vars(ref).values()), (name, ref)
            if isinstance(ref, AssetRef):
                assert ref.path and all(isinstance(p, str) for p in ref.path), (name, ref)
