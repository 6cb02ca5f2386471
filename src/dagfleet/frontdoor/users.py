"""The local users file (`auth.users_file`, default `.dagfleet/users`): `name hash` lines.

Written only by `dagfleet user add/remove` (atomically, mode 0600); read at each
sign-in, so a removed user cannot sign in again and their sessions end.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from dagfleet.frontdoor.passwords import check_hash
from dagfleet.fsutil import atomic_write

USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


class UsersFileError(Exception):
    pass


@dataclass(frozen=True)
class UsersFile:
    path: Path

    def read(self) -> dict[str, str]:
        """name -> hash; a missing file is no users. Errors name the file and line."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as exc:
            raise UsersFileError(f"{self.path}: cannot be read ({exc})") from None
        users: dict[str, str] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, _, encoded = line.partition(" ")
            encoded = encoded.strip()
            problem = check_name(name) or check_hash(encoded)
            if problem:
                raise UsersFileError(f"{self.path} line {number}: {problem}")
            users[name] = encoded
        return users

    def write(self, users: dict[str, str]) -> None:
        lines = ["# dagfleet users: `dagfleet user add NAME` / `dagfleet user remove NAME`"]
        lines += [f"{name} {encoded}" for name, encoded in sorted(users.items())]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, "\n".join(lines) + "\n", mode=0o600)


def check_name(name: str) -> str | None:
    if USER_NAME.match(name):
        return None
    return (
        f"{name!r} is not a user name: letters, digits and _ . @ - (at most 64, "
        "starting with a letter or digit)"
    )


def users_path(fleet_root: Path, users_file: str) -> Path:
    path = Path(users_file)
    return path if path.is_absolute() else fleet_root / path
