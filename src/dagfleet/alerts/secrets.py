"""Reading a channel's secret references (`from_env`, `from_file`) when a message is sent.

Read at each send, so a rotated token or file is picked up; values are never logged,
and errors name the reference, never the value.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from dagfleet.spec.credentials import SecretRef


class SecretUnreadable(Exception):
    pass


def read(ref: SecretRef, field: str, environ: Mapping[str, str], base: Path) -> str:
    if ref.from_env is not None:
        value = environ.get(ref.from_env, "")
        if not value:
            raise SecretUnreadable(
                f"{field}: from_env {ref.from_env} is not set in dagfleet's environment: "
                "export it before `dagfleet up`"
            )
        return value
    assert ref.from_file is not None
    path = Path(ref.from_file)
    path = path if path.is_absolute() else base / path
    try:
        value = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretUnreadable(f"{field}: from_file {path}: cannot be read ({exc})") from None
    if not value:
        raise SecretUnreadable(f"{field}: from_file {path} is empty")
    return value
