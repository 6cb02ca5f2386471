"""Talk to a location's code server over gRPC with Dagster's own client."""

from __future__ import annotations

from pathlib import Path

import grpc as grpc_lib
from dagster._api.list_repositories import sync_list_repositories_grpc
from dagster._grpc.client import DagsterGrpcClient
from grpc_health.v1.health_pb2 import HealthCheckRequest, HealthCheckResponse
from grpc_health.v1.health_pb2_grpc import HealthStub


def client(socket: Path) -> DagsterGrpcClient:
    return DagsterGrpcClient(socket=str(socket))


def is_serving(socket: Path) -> bool:
    """Health check: the server answers a ping."""
    try:
        client(socket).ping("dagfleet")
    except Exception:
        return False
    return True


class HealthProbe:
    """The gRPC health protocol's answer for Dagster's API, bounded by a timeout: unlike
    `is_serving` (Dagster's ping, which waits up to 60 s), a hung server costs the
    caller at most that long.

    For a supervisor that asks the same server every few seconds, the channel stays
    open between checks: a check on an open connection costs both sides about a
    quarter of one that connects first. After a failed check the channel is dropped,
    so the next check connects afresh (never a channel waiting out its reconnect
    backoff, which would fail a server that has recovered)."""

    def __init__(self, socket: Path) -> None:
        self.socket = socket
        self._channel: grpc_lib.Channel | None = None

    def check(self, timeout: float = 5.0) -> bool:
        if self._channel is None:
            self._channel = grpc_lib.insecure_channel(f"unix:{self.socket}")
        try:
            answer = HealthStub(self._channel).Check(
                HealthCheckRequest(service="DagsterApi"), timeout=timeout
            )
        except grpc_lib.RpcError:
            self.close()
            return False
        return bool(answer.status == HealthCheckResponse.SERVING)

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None


def load_error(socket: Path) -> str | None:
    """None when the server loaded its definitions, else the user's error text."""
    try:
        sync_list_repositories_grpc(client(socket))
    except Exception as exc:
        return str(exc)
    return None


def active_runs(socket: Path) -> list[str]:
    """Runs the server is still executing (DefaultRunLauncher runs live in it)."""
    from dagster._grpc.types import GetCurrentRunsResult
    from dagster_shared.serdes import deserialize_value

    try:
        raw = client(socket).get_current_runs()
        return list(deserialize_value(raw, GetCurrentRunsResult).current_runs)
    except Exception:
        return []
