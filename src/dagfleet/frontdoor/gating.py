"""The front door's GraphQL gate: the Gate protocol of door.py over gate.py's rules."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from graphql import GraphQLError, OperationDefinitionNode, OperationType, parse

from dagfleet.frontdoor.door import Verdict
from dagfleet.frontdoor.roles import Action, Principal, Target, denial


class GraphQLGate:
    """Interim rules until gate.py lands: reads for viewers, every mutation admin-only."""

    def __init__(self, upstream: str, target_of: Callable[[str], Target]) -> None:
        self.upstream = upstream
        self.target_of = target_of

    def _check(self, principal: Principal, document: object) -> Verdict:
        if not isinstance(document, str):
            return Verdict(False, 400, "no GraphQL query in the request")
        try:
            doc = parse(document)
        except GraphQLError as exc:
            return Verdict(False, 400, f"invalid GraphQL: {exc.message}")
        for node in doc.definitions:
            if (
                isinstance(node, OperationDefinitionNode)
                and node.operation == OperationType.MUTATION
            ) and not principal.may(Action.ADMIN):
                return Verdict(False, 403, denial(principal, Action.ADMIN, None))
        if not principal.may_anywhere(Action.VIEW):
            return Verdict(False, 403, denial(principal, Action.VIEW, None))
        return Verdict(True)

    async def http(
        self,
        principal: Principal,
        method: str,
        query: Mapping[str, str],
        content_type: str | None,
        body: bytes,
    ) -> Verdict:
        if method == "GET":
            return self._check(principal, query.get("query"))
        try:
            data: Any = json.loads(body)
        except ValueError:
            return Verdict(False, 400, "the body is not JSON")
        items = data if isinstance(data, list) else [data]
        for item in items:
            verdict = self._check(principal, item.get("query") if isinstance(item, dict) else None)
            if not verdict.allowed:
                return verdict
        return Verdict(True)

    async def websocket(self, principal: Principal, payload: Mapping[str, Any]) -> Verdict:
        return self._check(principal, payload.get("query"))
