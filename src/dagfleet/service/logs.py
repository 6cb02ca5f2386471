"""Code-server output: the last lines of a location's log, and following it as it grows."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

BLOCK = 64 * 1024


def tail_bytes(path: Path, lines: int) -> tuple[bytes, int]:
    """The last `lines` lines of `path` and the offset where the file ended."""
    try:
        with path.open("rb") as fh:
            end = fh.seek(0, os.SEEK_END)
            if lines <= 0:
                return b"", end
            pos, data = end, b""
            while pos > 0 and data.count(b"\n") <= lines:
                step = min(BLOCK, pos)
                pos -= step
                fh.seek(pos)
                data = fh.read(step) + data
            kept = data.splitlines(keepends=True)[-lines:]
            return b"".join(kept), end
    except FileNotFoundError:
        return b"", 0


def _prefix(data: bytes, label: str | None) -> bytes:
    if not label or not data:
        return data
    head = f"[{label}] ".encode()
    return b"".join(head + line for line in data.splitlines(keepends=True))


def tail_many(paths: dict[str, Path], lines: int) -> tuple[bytes, dict[str, int]]:
    """Tails of several logs; with more than one, each line names its location."""
    label = len(paths) > 1
    out, offsets = b"", {}
    for name, path in paths.items():
        data, offsets[name] = tail_bytes(path, lines)
        out += _prefix(data, name if label else None)
    return out, offsets


async def follow(
    paths: dict[str, Path],
    lines: int,
    poll: float,
    until: Callable[[], bool],
    max_seconds: float | None,
) -> AsyncIterator[bytes]:
    """The tail, then whatever is appended, until `until()` or `max_seconds`.

    Truncation (a restarted code server rewriting its log) restarts from the top.
    Partial lines are held back so a line is never split between two chunks.
    """
    first, offsets = tail_many(paths, lines)
    yield first
    label = len(paths) > 1
    pending = {name: b"" for name in paths}
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    while not until() and (deadline is None or time.monotonic() < deadline):
        await asyncio.sleep(poll)
        for name, path in paths.items():
            chunk, offsets[name] = _read_from(path, offsets[name])
            data = pending[name] + chunk
            complete, _, rest = data.rpartition(b"\n")
            pending[name] = rest
            if b"\n" in data:
                yield _prefix(complete + b"\n", name if label else None)


def _read_from(path: Path, offset: int) -> tuple[bytes, int]:
    try:
        with path.open("rb") as fh:
            end = fh.seek(0, os.SEEK_END)
            if end < offset:
                offset = 0
            fh.seek(offset)
            data = fh.read(BLOCK * 16)
            return data, offset + len(data)
    except FileNotFoundError:
        return b"", 0
