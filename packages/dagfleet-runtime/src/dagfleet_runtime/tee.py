"""Capture a process's stdout or stderr into a file and still mirror it, without helpers.

Dagster's `mirror_stream_to_file` (what LocalComputeLogManager captures each step
with) starts two processes per stream: `tail -F` to copy the file back to the
stream, and a Python interpreter that kills the tail if the step process dies. That
is four processes and two interpreter start-ups per step, 35-45 ms of CPU on a
2-core machine, paid by every step of every run.

`mirror_to_file` does the same at the file-descriptor level with one thread: the
stream's descriptor is pointed at a pipe, and the thread copies what arrives to the
capture file (which the UI reads as it grows) and to the stream's original
destination. Output of C extensions and child processes is captured too, as before.
When the block ends the descriptor is restored; the thread finishes once every
writer has closed the pipe. A child process that outlives the step and keeps the
pipe open keeps being copied to the file, as `tail` would have done, but the step
does not wait for it beyond DRAIN_SECONDS.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import TextIO

DRAIN_SECONDS = 2.0
CHUNK = 65536


def _fileno(stream: TextIO) -> int | None:
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):  # a test runner's stand-in stream
        return None
    return fd if isinstance(fd, int) else None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _copy(
    source: int, file_fd: int, mirror_fd: int, mirror_on: threading.Event, restored: threading.Event
) -> None:
    """Copy the pipe to the file, and to the original stream while `mirror_on`. Closes
    every descriptor it was given; `mirror_fd` only once the stream is `restored` (it is
    the copy the stream is restored from)."""
    try:
        while data := os.read(source, CHUNK):
            _write_all(file_fd, data)
            if mirror_on.is_set():
                with contextlib.suppress(OSError):  # a closed terminal must not stop capture
                    _write_all(mirror_fd, data)
    finally:
        os.close(source)
        os.close(file_fd)
        restored.wait()
        os.close(mirror_fd)


@contextlib.contextmanager
def mirror_to_file(stream: TextIO, path: str) -> Iterator[None]:
    """While the block runs, whatever is written to `stream`'s descriptor (by Python, C
    code or child processes) is appended to `path` and still reaches the stream's
    original destination. A stream without a descriptor is left alone, as Dagster does."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "a", encoding="utf-8"):
        pass  # the file exists from the start: the UI may open it before any output
    fd = _fileno(stream)
    if fd is None:
        yield
        return
    stream.flush()
    saved = os.dup(fd)
    read_end, write_end = os.pipe()
    file_fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
    mirror_on, restored = threading.Event(), threading.Event()
    mirror_on.set()
    copier = threading.Thread(
        target=_copy,
        args=(read_end, file_fd, saved, mirror_on, restored),
        name="dagfleet-tee",
        daemon=True,
    )
    copier.start()
    os.dup2(write_end, fd)
    os.close(write_end)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            stream.flush()
        os.dup2(saved, fd)  # closes this process's last write end: the copier sees the end
        restored.set()
        copier.join(DRAIN_SECONDS)
        mirror_on.clear()  # a lingering child's output still goes to the file only
