"""`git daemon` serving a directory of bare repositories on a free loopback port.

The renders refuse file:// git URLs (a cluster cannot reach them), so tests that run a
rendered checkout against a real remote serve it as git://127.0.0.1:<port>/<name>.git.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.fleetproc import free_port


@contextmanager
def git_daemon(base: Path, probe: str) -> Iterator[str]:
    """Serve every repository under `base`; yields the base URL `git://127.0.0.1:<port>`.
    `probe` is a repository name under `base` answered once the daemon is up."""
    port = free_port()
    daemon = subprocess.Popen(
        [
            "git", "daemon", "--reuseaddr", "--export-all", "--listen=127.0.0.1",
            f"--port={port}", f"--base-path={base}", str(base),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"git://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while subprocess.run(
            ["git", "ls-remote", f"{url}/{probe}"], capture_output=True
        ).returncode:
            assert daemon.poll() is None, "git daemon exited"
            assert time.monotonic() < deadline, "git daemon did not answer in 20s"
            time.sleep(0.1)
        yield url
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)
