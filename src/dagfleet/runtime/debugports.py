"""Loopback debugpy ports for debug-enabled locations.

Each such location holds a pair of ports (`p`, `p + 1`) for as long as it
exists: during a handoff its old and new code servers overlap, so they
alternate within the pair. Pairs are handed out from the fleet's
`debug_port_base` upward, skipping pairs held by other locations and ports
something else on this machine already listens on, so a repo added while
dagfleet runs never takes a port that a running server holds.
"""

from __future__ import annotations

import contextlib
import socket
import threading

LOOPBACK = "127.0.0.1"
HIGHEST_PORT = 65535


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    """Nothing listens on `port` (SO_REUSEADDR: a closed socket in TIME_WAIT does not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        with contextlib.suppress(OSError):
            sock.bind((host, port))
            return True
    return False


class DebugPorts:
    def __init__(self) -> None:
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def pair_for(self, location: str, base: int) -> int:
        """The first port of `location`'s pair; the same pair until it is released."""
        with self._lock:
            if location in self._held:
                return self._held[location]
            taken = set(self._held.values())
            port = base
            while port + 1 <= HIGHEST_PORT:
                overlaps = any(abs(port - other) < 2 for other in taken)
                if not overlaps and port_is_free(port) and port_is_free(port + 1):
                    self._held[location] = port
                    return port
                port += 2
            raise RuntimeError(f"no free pair of loopback ports from {base} upward")

    def release(self, location: str) -> None:
        with self._lock:
            self._held.pop(location, None)

    def held(self) -> dict[str, int]:
        with self._lock:
            return dict(self._held)
