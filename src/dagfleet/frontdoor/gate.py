"""The GraphQL gate: what a request to the Dagster webserver's /graphql needs. Pure, no I/O.

Three steps, each a function the proxy calls:

- `parse_request` reads an HTTP request the way the Dagster webserver does (GET query
  parameters, POST `application/json` or `application/graphql`, JSON batches) and parses
  each document with graphql-core into `Operation`s: the selected operation's kind and
  its real root fields (aliases and fragments resolved) with their arguments, variables
  inlined. Anything it cannot read for certain is a `GateError` (4xx), never a pass.
  `parse_ws_payload` does the same for a graphql-ws `start` message.
- `requirements` says what one operation needs: VIEW for queries and subscriptions,
  and for every mutation root field the action from `MUTATIONS` and what it targets
  (a location, a run, a backfill, an asset key, a schedule/sensor id, or nothing =
  fleet-wide). An argument that cannot be read statically makes the target fleet-wide.
  A mutation field not in `MUTATIONS` is refused (a newer Dagster: classify it first).
- `authorize` turns requirements into locations with a `Resolver` (resolve.py asks
  the webserver) and checks them against the principal's grants (roles.py).

The gate over-approximates: fields under `@skip`/`@include` count as selected, and a
field whose target is unreadable needs the action fleet-wide.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from urllib.parse import parse_qsl

from graphql import GraphQLError, parse
from graphql.language import (
    BooleanValueNode,
    DocumentNode,
    EnumValueNode,
    FieldNode,
    FloatValueNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    NonNullTypeNode,
    NullValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    ValueNode,
    VariableNode,
)

from dagfleet.frontdoor.roles import Action, Principal, Target, denial

MAX_BYTES = 1_000_000
MAX_TOKENS = 100_000  # the UI's largest documents are a few thousand tokens
MAX_DEPTH = 64  # nested selection sets, fragments and inline fragments (the UI's: under 30)
MAX_BATCH = 50

OperationKind = Literal["query", "mutation", "subscription"]


class GateError(Exception):
    """A request the gate refuses before any check: `status` (4xx) and a message for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Unreadable:
    """An argument value the gate cannot know statically (e.g. a variable not supplied)."""

    def __repr__(self) -> str:
        return "UNREADABLE"


UNREADABLE: Any = _Unreadable()


@dataclass(frozen=True)
class RootField:
    """One root field of an operation: its schema name (not the alias) and its arguments."""

    name: str
    arguments: Mapping[str, Any]


@dataclass(frozen=True)
class Operation:
    kind: OperationKind
    name: str | None
    fields: tuple[RootField, ...]


# What a requirement targets. None (on Requirement.ref) means fleet-wide.
@dataclass(frozen=True)
class LocationRef:
    location: str


@dataclass(frozen=True)
class RunRef:
    run_id: str


@dataclass(frozen=True)
class BackfillRef:
    backfill_id: str


@dataclass(frozen=True)
class AssetRef:
    path: tuple[str, ...]


@dataclass(frozen=True)
class InstigatorRef:
    """A schedule or sensor by id: an origin id or a selector id (compound ids are split)."""

    instigator_id: str


Ref = LocationRef | RunRef | BackfillRef | AssetRef | InstigatorRef


@dataclass(frozen=True)
class Requirement:
    """An action the operation needs on `ref` (None: fleet-wide).

    `anywhere`: satisfied by the action on any location (reads, UI bookkeeping).
    """

    action: Action
    field: str
    ref: Ref | None
    anywhere: bool = False


# ---------------------------------------------------------------------------------------
# Parsing


def parse_request(
    method: str,
    query_string: str | bytes | Mapping[str, str],
    content_type: str | None,
    body: bytes,
    max_bytes: int = MAX_BYTES,
) -> list[Operation]:
    """The operations an HTTP request to /graphql would run, or GateError.

    `query_string`: pass the raw URL query (ASGI's `query_string`). A Mapping is taken
    as is, so whoever decodes it must keep the *last* of a repeated key, as the webserver
    does; from the raw string, a repeated query/variables/operationName is refused.
    The content type is read exactly as the webserver reads it (a substring test, case
    sensitive) and must also be a plain `application/json` or `application/graphql`
    media type; any request the two readings disagree on is refused. A GET with no
    `query` parameter runs nothing (the webserver shows GraphiQL or answers 400): [].
    """
    if method == "GET":
        params = _query_params(query_string)
        if "query" not in params:
            return []
        return [_operation_from_payload(params, where="query parameters", ws=False)]
    if method != "POST":
        raise GateError(405, f"{method} is not allowed on /graphql (GET or POST)")
    if len(body) > max_bytes:
        raise GateError(413, f"GraphQL request body is larger than {max_bytes} bytes")
    kind = _body_kind(content_type)
    if kind == "graphql":
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise GateError(400, f"application/graphql body is not UTF-8: {exc}") from exc
        return [_operation(text, None, None)]
    try:
        data = json.loads(body, object_pairs_hook=_no_duplicate_keys)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad encoding, too deep
        raise GateError(400, f"GraphQL request is not valid JSON: {exc}") from exc
    if isinstance(data, list):
        if not data:
            raise GateError(400, "GraphQL batch is empty")
        if len(data) > MAX_BATCH:
            raise GateError(413, f"GraphQL batch has {len(data)} operations (at most {MAX_BATCH})")
        return [
            _operation_from_payload(item, where=f"batch item {i}", ws=False)
            for i, item in enumerate(data)
        ]
    return [_operation_from_payload(data, where="request body", ws=False)]


def parse_ws_payload(payload: Any) -> Operation:
    """The operation of a graphql-ws `start` message's payload (`query`, `variables`,
    `operation_name` — the webserver reads that key, not operationName)."""
    return _operation_from_payload(payload, where="websocket start payload", ws=True)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _query_params(query_string: str | bytes | Mapping[str, str]) -> Mapping[str, str]:
    if isinstance(query_string, Mapping):
        return query_string
    text = query_string.decode("latin-1") if isinstance(query_string, bytes) else query_string
    out: dict[str, str] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        if key in out and key in ("query", "variables", "operationName"):
            raise GateError(400, f"GraphQL request repeats the {key!r} query parameter")
        out[key] = value
    return out


def _body_kind(content_type: str | None) -> Literal["json", "graphql"]:
    raw = content_type or ""
    # The webserver's reading: substring tests, JSON first, anything else falls back to
    # the URL's query parameters (which the gate does not accept for POST).
    upstream = (
        "json" if "application/json" in raw else "graphql" if "application/graphql" in raw else None
    )
    media = raw.split(";", 1)[0].strip().lower()
    strict = {"application/json": "json", "application/graphql": "graphql"}.get(media)
    if upstream is None or strict != upstream:
        raise GateError(
            415,
            f"GraphQL POST content type {raw or '(none)'!r} is not accepted: send "
            "application/json ({query, variables, operationName}) or application/graphql",
        )
    return upstream  # type: ignore[return-value]


def _operation_from_payload(data: Any, *, where: str, ws: bool) -> Operation:
    if not isinstance(data, Mapping):
        raise GateError(400, f"GraphQL {where} is not an object")
    query = data.get("query")
    if query is None:
        extensions = data.get("extensions")
        if isinstance(extensions, Mapping) and "persistedQuery" in extensions:
            raise GateError(
                400, f"GraphQL {where}: persisted queries are not accepted; send the query text"
            )
        raise GateError(400, f"GraphQL {where} has no query")
    if not isinstance(query, str):
        raise GateError(400, f"GraphQL {where}: query must be a string")
    variables = data.get("variables")
    if isinstance(variables, str):
        try:
            variables = json.loads(variables, object_pairs_hook=_no_duplicate_keys)
        except (ValueError, RecursionError) as exc:
            raise GateError(400, f"GraphQL {where}: variables are not valid JSON: {exc}") from exc
    if variables is not None and not isinstance(variables, Mapping):
        raise GateError(400, f"GraphQL {where}: variables must be an object")
    name = data.get("operation_name" if ws else "operationName")
    if name is not None and not isinstance(name, str):
        raise GateError(400, f"GraphQL {where}: operationName must be a string")
    return _operation(query, variables, name or None)


def _operation(query: str, variables: Mapping[str, Any] | None, name: str | None) -> Operation:
    if len(query) > MAX_BYTES:
        raise GateError(413, f"GraphQL document is longer than {MAX_BYTES} characters")
    op, fields = _structure(query, name)
    values = _variable_values(op, variables or {})
    kind: OperationKind = op.operation.value
    return Operation(
        kind,
        name or (op.name.value if op.name else None),
        tuple(RootField(f.name.value, _arguments(f, values)) for f in fields),
    )


@functools.lru_cache(maxsize=1024)
def _structure(
    query: str, name: str | None
) -> tuple[OperationDefinitionNode, tuple[FieldNode, ...]]:
    """The selected operation and its root fields (fragments and aliases resolved),
    depth-checked. Cached: the UI sends the same few hundred documents with new
    variables, and parsing is most of the gate's work. Errors are not cached."""
    try:
        document = parse(query, no_location=True, max_tokens=MAX_TOKENS)
    except GraphQLError as exc:
        raise GateError(400, f"GraphQL document does not parse: {exc.message}") from exc
    except RecursionError as exc:
        raise GateError(400, "GraphQL document is nested too deeply") from exc
    op, fragments = _select(document, name)
    _check_depth(op.selection_set, fragments)
    return op, tuple(_root_fields(op.selection_set, fragments, ()))


def _select(
    document: DocumentNode, name: str | None
) -> tuple[OperationDefinitionNode, Mapping[str, FragmentDefinitionNode]]:
    operations: list[OperationDefinitionNode] = []
    fragments: dict[str, FragmentDefinitionNode] = {}
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            operations.append(definition)
        elif isinstance(definition, FragmentDefinitionNode):
            fname = definition.name.value
            if fname in fragments:
                raise GateError(400, f"GraphQL document defines fragment {fname} twice")
            fragments[fname] = definition
        else:
            raise GateError(400, "GraphQL document may hold only operations and fragments")
    if not operations:
        raise GateError(400, "GraphQL document has no operation")
    if name is None:
        if len(operations) > 1:
            raise GateError(400, "GraphQL document has several operations: give operationName")
        return operations[0], fragments
    named = [o for o in operations if o.name is not None and o.name.value == name]
    if len(named) != 1:
        found = "no" if not named else "more than one"
        raise GateError(400, f"GraphQL document has {found} operation named {name!r}")
    return named[0], fragments


def _check_depth(
    selection_set: SelectionSetNode, fragments: Mapping[str, FragmentDefinitionNode]
) -> None:
    # Iterative, so a hostile document cannot exhaust the stack; fragment cycles end it.
    stack: list[tuple[SelectionSetNode, int, frozenset[str]]] = [(selection_set, 1, frozenset())]
    visits = 0
    while stack:
        node, depth, path = stack.pop()
        if depth > MAX_DEPTH:
            raise GateError(400, f"GraphQL document nests deeper than {MAX_DEPTH} levels")
        for sel in node.selections:
            visits += 1
            if visits > MAX_TOKENS:
                raise GateError(400, "GraphQL document expands to too many selections")
            if isinstance(sel, FieldNode):
                if sel.selection_set is not None:
                    stack.append((sel.selection_set, depth + 1, path))
            elif isinstance(sel, InlineFragmentNode):
                stack.append((sel.selection_set, depth + 1, path))
            elif isinstance(sel, FragmentSpreadNode):
                fname = sel.name.value
                if fname in path:
                    raise GateError(400, f"GraphQL fragment {fname} spreads itself")
                if fname not in fragments:
                    raise GateError(400, f"GraphQL document spreads unknown fragment {fname}")
                stack.append((fragments[fname].selection_set, depth + 1, path | {fname}))


def _root_fields(
    selection_set: SelectionSetNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    seen: tuple[str, ...],
) -> list[FieldNode]:
    """The root fields, through named and inline fragments, directives ignored (all count)."""
    out: list[FieldNode] = []
    for sel in selection_set.selections:
        if isinstance(sel, FieldNode):
            out.append(sel)
        elif isinstance(sel, InlineFragmentNode):
            out.extend(_root_fields(sel.selection_set, fragments, seen))
        elif isinstance(sel, FragmentSpreadNode):
            fname = sel.name.value  # existence and cycles were checked by _check_depth
            out.extend(_root_fields(fragments[fname].selection_set, fragments, (*seen, fname)))
    return out


def _variable_values(op: OperationDefinitionNode, given: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for definition in op.variable_definitions or ():
        vname = definition.variable.name.value
        if vname in given:
            values[vname] = given[vname]
        elif definition.default_value is not None:
            values[vname] = _value(definition.default_value, {})
        elif isinstance(definition.type, NonNullTypeNode):
            values[vname] = UNREADABLE  # the webserver refuses the request; still never a pass
        else:
            values[vname] = None  # an omitted nullable variable leaves the argument unset
    return values


def _arguments(node: FieldNode, values: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for arg in node.arguments or ():
        aname = arg.name.value
        # A repeated argument is invalid GraphQL; read it as unknown rather than pick one.
        out[aname] = UNREADABLE if aname in out else _value(arg.value, values)
    return out


def _value(node: ValueNode, values: Mapping[str, Any]) -> Any:
    if isinstance(node, VariableNode):
        return values.get(node.name.value, UNREADABLE)
    if isinstance(node, IntValueNode):
        return int(node.value)
    if isinstance(node, FloatValueNode):
        return float(node.value)
    if isinstance(node, StringValueNode | EnumValueNode):
        return node.value
    if isinstance(node, BooleanValueNode):
        return node.value
    if isinstance(node, NullValueNode):
        return None
    if isinstance(node, ListValueNode):
        return [_value(v, values) for v in node.values]
    if isinstance(node, ObjectValueNode):
        obj: dict[str, Any] = {}
        for f in node.fields:
            key = f.name.value
            obj[key] = UNREADABLE if key in obj else _value(f.value, values)
        return obj
    return UNREADABLE


# ---------------------------------------------------------------------------------------
# Classifying


Refs = list[Ref | None]  # None: this part of the target is fleet-wide


def _get(value: Any, *path: str) -> Any:
    """The value at `path`: None where a level is absent or null, UNREADABLE where unknown."""
    for key in path:
        if value is None:
            return None
        if not isinstance(value, Mapping):
            return UNREADABLE
        value = value.get(key, None)
    return value


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _items(value: Any) -> list[Any] | None:
    """A list argument as GraphQL coerces it (one value is a list of one); None: unreadable."""
    if value is None:
        return []
    if value is UNREADABLE:
        return None
    if isinstance(value, list):
        return value
    return [value]


def _location(value: Any) -> Refs:
    name = _str(value)
    return [LocationRef(name) if name is not None else None]


def _run(value: Any) -> Refs:
    run_id = _str(value)
    return [RunRef(run_id) if run_id is not None else None]


def _runs(value: Any) -> Refs:
    items = _items(value)
    if items is None:
        return [None]
    return [r for item in items for r in _run(item)] or [None]


def _backfill(value: Any) -> Refs:
    backfill_id = _str(value)
    return [BackfillRef(backfill_id) if backfill_id is not None else None]


def _asset(key: Any) -> Refs:
    path = _items(_get(key, "path"))
    if not path or not all(isinstance(p, str) for p in path):
        return [None]
    return [AssetRef(tuple(path))]


def _instigator_ids(args: Mapping[str, Any], names: Sequence[str]) -> Refs:
    """Every id given (compound ids `origin::selector` split); the webserver uses some of them."""
    refs: Refs = []
    for name in names:
        value = args.get(name)
        if value is None:
            continue
        text = _str(value)
        if text is None:
            return [None]
        refs.extend(InstigatorRef(part) if part else None for part in text.split("::"))
    return refs or [None]


def _execution_params(params: Any) -> Refs:
    """ExecutionParams: the selector's location, and the parent run of a re-execution."""
    refs = _location(_get(params, "selector", "repositoryLocationName"))
    metadata = _get(params, "executionMetadata")
    for key in ("parentRunId", "rootRunId"):
        run_id = _get(metadata, key)
        if run_id is not None:
            refs.extend(_run(run_id))
    return refs


def _reexecution(args: Mapping[str, Any]) -> Refs:
    refs: Refs = []
    if args.get("reexecutionParams") is not None:
        refs.extend(_run(_get(args["reexecutionParams"], "parentRunId")))
    if args.get("executionParams") is not None:
        refs.extend(_execution_params(args["executionParams"]))
    return refs or [None]


def _many_execution_params(args: Mapping[str, Any]) -> Refs:
    items = _items(args.get("executionParamsList"))
    if not items:
        return [None]
    return [r for item in items for r in _execution_params(item)]


def _backfill_params(args: Mapping[str, Any]) -> Refs:
    params = args.get("backfillParams")
    refs: Refs = []
    if _get(params, "selector") is not None:
        refs.extend(
            _location(_get(params, "selector", "repositorySelector", "repositoryLocationName"))
        )
    by_assets = _items(_get(params, "partitionsByAssets"))
    selection = _items(_get(params, "assetSelection"))
    if by_assets is None or selection is None:
        return [None]
    for item in by_assets:
        if item is not None:
            refs.extend(_asset(_get(item, "assetKey")))
    for key in selection:
        refs.extend(_asset(key))
    return refs or [None]


def _asset_ranges(args: Mapping[str, Any]) -> Refs:
    items = _items(args.get("assetPartitionRanges"))
    if not items:
        return [None]
    return [r for item in items for r in _asset(_get(item, "assetKey"))]


def _nothing(_args: Mapping[str, Any]) -> Refs:
    return [None]


Extract = Callable[[Mapping[str, Any]], Refs]


def _arg(name: str, read: Callable[[Any], Refs], *path: str) -> Extract:
    return lambda args: read(_get(args.get(name), *path) if path else args.get(name))


_SCHEDULE = _arg("scheduleSelector", _location, "repositoryLocationName")
_SENSOR = _arg("sensorSelector", _location, "repositoryLocationName")
_REPOSITORY = _arg("repositorySelector", _location, "repositoryLocationName")
_LOCATION_NAME = _arg("locationName", _location)
_RUN_ID = _arg("runId", _run)


@dataclass(frozen=True)
class Rule:
    """How one mutation root field is gated: the action, where it applies, and why."""

    action: Action
    targets: Extract
    why: str
    anywhere: bool = False


# Every mutation root field of Dagster 1.13's schema (`create_schema()`), its action and
# its target. tests/unit/frontdoor/test_gate.py fails when the schema gains one not here;
# docs/frontdoor-gate.md shows the same table.
MUTATIONS: Mapping[str, Rule] = {
    # LAUNCH: starts runs or evaluates user code in the location
    "launchRun": Rule(Action.LAUNCH, _arg("executionParams", _execution_params), "launches a run"),
    "launchPipelineExecution": Rule(
        Action.LAUNCH, _arg("executionParams", _execution_params), "launches a run (old name)"
    ),
    "launchMultipleRuns": Rule(
        Action.LAUNCH, _many_execution_params, "launches runs, one per executionParams"
    ),
    "launchRunReexecution": Rule(
        Action.LAUNCH, _reexecution, "re-executes a run (in the parent run's location)"
    ),
    "launchPipelineReexecution": Rule(Action.LAUNCH, _reexecution, "re-executes a run (old name)"),
    "launchPartitionBackfill": Rule(
        Action.LAUNCH, _backfill_params, "launches a backfill (partition set or assets)"
    ),
    "resumePartitionBackfill": Rule(
        Action.LAUNCH, _arg("backfillId", _backfill), "resumes a backfill's runs"
    ),
    "reexecutePartitionBackfill": Rule(
        Action.LAUNCH,
        _arg("reexecutionParams", _backfill, "parentRunId"),
        "re-executes a backfill (parentRunId is the backfill id)",
    ),
    "scheduleDryRun": Rule(
        Action.LAUNCH,
        _arg("selectorData", _location, "repositoryLocationName"),
        "evaluates the schedule's user code",
    ),
    "sensorDryRun": Rule(
        Action.LAUNCH,
        _arg("selectorData", _location, "repositoryLocationName"),
        "evaluates the sensor's user code",
    ),
    "reportRunlessAssetEvents": Rule(
        Action.LAUNCH,
        _arg("eventParams", _asset, "assetKey"),
        "records a materialization/observation as if a run had",
    ),
    "reportAssetCheckEvaluations": Rule(
        Action.LAUNCH,
        _arg("eventParams", _asset, "assetKey"),
        "records an asset check result as if a run had",
    ),
    # EDIT: stops, deletes or switches things in one location
    "terminateRun": Rule(Action.EDIT, _RUN_ID, "terminates a run"),
    "terminatePipelineExecution": Rule(Action.EDIT, _RUN_ID, "terminates a run (old name)"),
    "terminateRuns": Rule(Action.EDIT, _arg("runIds", _runs), "terminates runs"),
    "deleteRun": Rule(Action.EDIT, _RUN_ID, "deletes a run and its logs"),
    "deletePipelineRun": Rule(Action.EDIT, _RUN_ID, "deletes a run (old name)"),
    "cancelPartitionBackfill": Rule(
        Action.EDIT, _arg("backfillId", _backfill), "cancels a backfill"
    ),
    "wipeAssets": Rule(Action.EDIT, _asset_ranges, "deletes asset materialization history"),
    "startSchedule": Rule(Action.EDIT, _SCHEDULE, "turns a schedule on"),
    "resetSchedule": Rule(Action.EDIT, _SCHEDULE, "resets a schedule to its code default"),
    "stopRunningSchedule": Rule(
        Action.EDIT,
        lambda a: _instigator_ids(a, ("id", "scheduleOriginId", "scheduleSelectorId")),
        "turns a schedule off (by id)",
    ),
    "startSensor": Rule(Action.EDIT, _SENSOR, "turns a sensor on"),
    "resetSensor": Rule(Action.EDIT, _SENSOR, "resets a sensor to its code default"),
    "setSensorCursor": Rule(Action.EDIT, _SENSOR, "moves a sensor's cursor"),
    "stopSensor": Rule(
        Action.EDIT,
        lambda a: _instigator_ids(a, ("id", "jobOriginId", "jobSelectorId")),
        "turns a sensor off (by id)",
    ),
    "reloadRepositoryLocation": Rule(
        Action.EDIT, _arg("repositoryLocationName", _location), "reloads one location"
    ),
    "shutdownRepositoryLocation": Rule(
        Action.EDIT, _arg("repositoryLocationName", _location), "shuts one location's server down"
    ),
    "addDynamicPartition": Rule(
        Action.EDIT, _REPOSITORY, "adds a dynamic partition key (checked on the given location)"
    ),
    "deleteDynamicPartitions": Rule(
        Action.EDIT, _REPOSITORY, "deletes dynamic partition keys (checked on the given location)"
    ),
    "refreshComponentState": Rule(
        Action.EDIT, _LOCATION_NAME, "refreshes a location's component state (like a reload)"
    ),
    # ADMIN: instance-wide, or changes a location's code outside git
    "reloadWorkspace": Rule(Action.ADMIN, _nothing, "reloads every location"),
    "setConcurrencyLimit": Rule(Action.ADMIN, _nothing, "instance-wide concurrency pools"),
    "deleteConcurrencyLimit": Rule(Action.ADMIN, _nothing, "instance-wide concurrency pools"),
    "freeConcurrencySlots": Rule(Action.ADMIN, _nothing, "frees instance-wide pool slots"),
    "freeConcurrencySlotsForRun": Rule(Action.ADMIN, _nothing, "frees instance-wide pool slots"),
    "setAutoMaterializePaused": Rule(
        Action.ADMIN, _nothing, "pauses automation for the whole instance"
    ),
    "setAppManagedComponent": Rule(
        Action.ADMIN, _LOCATION_NAME, "writes a component into a location's code, outside git"
    ),
    "deleteAppManagedComponent": Rule(
        Action.ADMIN, _LOCATION_NAME, "removes a component from a location's code, outside git"
    ),
    # VIEW: UI bookkeeping with no effect on runs, assets or locations
    "logTelemetry": Rule(
        Action.VIEW, _nothing, "UI telemetry (a local log line at most)", anywhere=True
    ),
    "setNuxSeen": Rule(Action.VIEW, _nothing, "marks the first-visit tour as seen", anywhere=True),
}


def requirements(op: Operation) -> list[Requirement]:
    """What `op` needs. Raises GateError(403) for a mutation field the gate does not know."""
    if op.kind != "mutation":
        label = f"{op.kind} {op.name}" if op.name else op.kind
        return [Requirement(Action.VIEW, label, None, anywhere=True)]
    out: list[Requirement] = []
    for root in op.fields:
        if root.name == "__typename":
            continue
        rule = MUTATIONS.get(root.name)
        if rule is None:
            raise GateError(
                403,
                f"mutation field {root.name!r} is not known to the dagfleet gate (a newer "
                "Dagster?): it is denied until the gate classifies it",
            )
        for ref in rule.targets(root.arguments) or [None]:
            out.append(Requirement(rule.action, root.name, ref, anywhere=rule.anywhere))
    return out


# The webserver's HTTP routes outside /graphql that write: runless asset events. The asset
# key may come from the path, the JSON body or the query string, so the gate does not
# guess it: they need launch fleet-wide.
REPORT_ROUTES = (
    "/report_asset_materialization/",
    "/report_asset_check/",
    "/report_asset_observation/",
)


def route_requirements(method: str, path: str) -> list[Requirement] | None:
    """What a non-GraphQL request to the webserver needs (path without the app prefix).

    None for /graphql (use `parse_request`); launch fleet-wide for the runless-event
    routes (any method: the webserver answers only POST); view anywhere for the rest
    (the UI, static files, log and debug downloads).
    """
    if path.rstrip("/") == "/graphql":
        return None
    for route in REPORT_ROUTES:
        if path.startswith(route) or path == route.rstrip("/"):
            return [Requirement(Action.LAUNCH, route.strip("/"), None)]
    return [Requirement(Action.VIEW, f"{method} {path}", None, anywhere=True)]


# ---------------------------------------------------------------------------------------
# Deciding


class Resolver(Protocol):
    """Maps ids to code location names; None when unknown (the action is then fleet-wide)."""

    def run_location(self, run_id: str) -> Awaitable[str | None]: ...

    def backfill_locations(self, backfill_id: str) -> Awaitable[frozenset[str] | None]: ...

    def asset_locations(self, path: tuple[str, ...]) -> Awaitable[frozenset[str] | None]: ...

    def instigator_location(self, instigator_id: str) -> Awaitable[str | None]: ...


@dataclass(frozen=True)
class Allowed:
    """One allowed mutation for the audit log: locations None means fleet-wide."""

    action: Action
    field: str
    locations: tuple[str, ...] | None


@dataclass(frozen=True)
class Decision:
    allowed: bool
    status: int = 200  # 403 denied, 4xx refused by the parser/classifier
    message: str = ""
    mutations: tuple[Allowed, ...] = field(default_factory=tuple)


async def locations_of(ref: Ref | None, resolver: Resolver) -> frozenset[str] | None:
    """The locations `ref` lives in, or None for fleet-wide."""
    if ref is None:
        return None
    if isinstance(ref, LocationRef):
        return frozenset({ref.location})
    if isinstance(ref, RunRef):
        loc = await resolver.run_location(ref.run_id)
        return None if loc is None else frozenset({loc})
    if isinstance(ref, InstigatorRef):
        loc = await resolver.instigator_location(ref.instigator_id)
        return None if loc is None else frozenset({loc})
    if isinstance(ref, BackfillRef):
        locs = await resolver.backfill_locations(ref.backfill_id)
    else:
        locs = await resolver.asset_locations(ref.path)
    return locs or None


async def authorize(
    principal: Principal,
    operations: Iterable[Operation],
    resolver: Resolver,
    target_of: Callable[[str], Target],
) -> Decision:
    """Allowed only if every requirement of every operation is; else the first denial."""
    audit: dict[tuple[Action, str], set[str] | None] = {}
    try:
        needs = [r for op in operations for r in requirements(op)]
    except GateError as exc:
        return Decision(False, exc.status, exc.message)
    for req in needs:
        if req.anywhere:
            if not principal.may_anywhere(req.action):
                return Decision(False, 403, denial(principal, req.action, None))
            locations: frozenset[str] | None = None
        else:
            locations = await locations_of(req.ref, resolver)
            if locations is None:
                if not principal.may(req.action, None):
                    return Decision(False, 403, denial(principal, req.action, None))
            else:
                for loc in sorted(locations):
                    target = target_of(loc)
                    if not principal.may(req.action, target):
                        return Decision(False, 403, denial(principal, req.action, target))
        if req.field in MUTATIONS:
            key = (req.action, req.field)
            if locations is None or (key in audit and audit[key] is None):
                audit[key] = None
            else:
                audit.setdefault(key, set()).update(locations)  # type: ignore[union-attr]
    return Decision(
        True,
        mutations=tuple(
            Allowed(action, name, None if locs is None else tuple(sorted(locs)))
            for (action, name), locs in audit.items()
        ),
    )
