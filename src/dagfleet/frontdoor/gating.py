"""The front door's GraphQL gate: door.py's Gate over gate.py's rules and the
webserver-backed resolver (run ids, backfills, assets, schedules and sensors to
their locations)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from dagfleet.frontdoor.door import Verdict
from dagfleet.frontdoor.gate import (
    Decision,
    GateError,
    Operation,
    authorize,
    parse_request,
    parse_ws_payload,
)
from dagfleet.frontdoor.resolve import WebserverResolver
from dagfleet.frontdoor.roles import Principal, Target


def _verdict(decision: Decision) -> Verdict:
    return Verdict(
        decision.allowed,
        decision.status,
        decision.message,
        tuple((m.action, m.field, m.locations or ()) for m in decision.mutations),
    )


class GraphQLGate:
    """Every GraphQL operation judged before it reaches the webserver."""

    def __init__(self, upstream: str, target_of: Callable[[str], Target]) -> None:
        self.resolver = WebserverResolver(upstream)
        self.target_of = target_of

    async def _judge(self, principal: Principal, operations: list[Operation]) -> Verdict:
        return _verdict(await authorize(principal, operations, self.resolver, self.target_of))

    async def http(
        self,
        principal: Principal,
        method: str,
        query: bytes,
        content_type: str | None,
        body: bytes,
    ) -> Verdict:
        try:
            operations = parse_request(method, query, content_type, body)
        except GateError as exc:
            return Verdict(False, exc.status, exc.message)
        return await self._judge(principal, operations)

    async def websocket(self, principal: Principal, payload: Mapping[str, Any]) -> Verdict:
        try:
            operation = parse_ws_payload(payload)
        except GateError as exc:
            return Verdict(False, exc.status, exc.message)
        return await self._judge(principal, [operation])
