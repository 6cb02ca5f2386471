"""HealthProbe: gRPC health checks over one kept channel, against real gRPC servers on a
unix socket (grpc's own health servicer, as Dagster's code server registers it)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from dagfleet.runtime.grpc import HealthProbe

pytestmark = pytest.mark.integration


class Hanging(health.HealthServicer):
    """Answers nothing until released: a server whose threads are stuck."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def Check(self, request: object, context: object) -> object:
        self.release.wait(30)
        return super().Check(request, context)  # type: ignore[arg-type]


def serve(socket: Path, servicer: health.HealthServicer) -> grpc.Server:
    servicer.set("DagsterApi", health_pb2.HealthCheckResponse.SERVING)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    server.add_insecure_port(f"unix:{socket}")
    server.start()
    return server


@pytest.fixture
def servers() -> Iterator[list[grpc.Server]]:
    started: list[grpc.Server] = []
    yield started
    for server in started:
        server.stop(grace=0)


def test_checks_reuse_the_channel_and_recover_after_a_restart(
    tmp_path: Path, servers: list[grpc.Server]
) -> None:
    socket = tmp_path / "server.sock"
    servers.append(serve(socket, health.HealthServicer()))
    probe = HealthProbe(socket)
    assert probe.check()
    channel = probe._channel
    assert probe.check() and probe._channel is channel, "one channel for every check"

    servers[0].stop(grace=0).wait()
    assert not probe.check(timeout=2)
    assert probe._channel is None, "a failed check drops its channel"

    servers.append(serve(socket, health.HealthServicer()))  # restarted at the same path
    assert probe.check(), "the next check connects afresh"
    probe.close()
    assert probe._channel is None


def test_a_hung_server_fails_within_the_timeout(tmp_path: Path, servers: list[grpc.Server]) -> None:
    socket = tmp_path / "server.sock"
    hanging = Hanging()
    servers.append(serve(socket, hanging))
    try:
        assert not HealthProbe(socket).check(timeout=0.5)
    finally:
        hanging.release.set()


def test_not_serving_is_unhealthy(tmp_path: Path, servers: list[grpc.Server]) -> None:
    socket = tmp_path / "server.sock"
    servicer = health.HealthServicer()
    servers.append(serve(socket, servicer))
    servicer.set("DagsterApi", health_pb2.HealthCheckResponse.NOT_SERVING)
    assert not HealthProbe(socket).check()
