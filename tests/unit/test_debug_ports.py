"""Debug port pairs: stable per location, never one a server already holds."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from dagfleet.runtime.debugports import DebugPorts, port_is_free


@pytest.fixture
def base() -> int:
    """A start port with a few free pairs above it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    return port - port % 2


@pytest.fixture
def listening(base: int) -> Iterator[socket.socket]:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", base + 1))
    sock.listen()
    yield sock
    sock.close()


def test_pairs_are_stable_and_disjoint(base: int) -> None:
    ports = DebugPorts()
    first = ports.pair_for("medallion-A", base)
    assert ports.pair_for("medallion-A", base) == first
    # A later location, even one that sorts first, never shares the held pair.
    second = ports.pair_for("demo-A", base)
    assert abs(second - first) >= 2


def test_a_port_in_use_is_skipped(base: int, listening: socket.socket) -> None:
    assert not port_is_free(base + 1)
    port = DebugPorts().pair_for("demo-A", base)
    assert port >= base + 2
    assert port_is_free(port) and port_is_free(port + 1)


def test_released_pair_is_reused(base: int) -> None:
    ports = DebugPorts()
    first = ports.pair_for("one-A", base)
    ports.pair_for("two-A", base)
    ports.release("one-A")
    assert ports.pair_for("three-A", base) == first
    assert set(ports.held()) == {"two-A", "three-A"}
