"""Which Dagster versions a code server may run to be served by the central instance.

The webserver and daemon talk to every code server over Dagster's gRPC API and
read what run workers write to the shared instance storage. Dagster keeps both
compatible across versions within a window, not for ever; dagfleet supports code
servers from MINIMUM up to the central instance's own minor release. A repo
that pins a newer minor than the instance would write storage the instance
cannot read yet; an older one than MINIMUM is not tested.
"""

from __future__ import annotations

from importlib.metadata import version

MINIMUM = (1, 10)


class DagsterVersionUnsupported(Exception):
    def __init__(self, found: str, central: str) -> None:
        self.found = found
        self.central = central
        super().__init__(
            f"the repo's dagster {found} is outside what the central instance "
            f"(dagster {central}) serves: {supported_spec(central)}; pin a dagster in "
            "that range in the repo's dependencies"
        )


def central_version() -> str:
    return version("dagster")


def _minor(text: str) -> tuple[int, int] | None:
    parts = text.split(".")
    if len(parts) < 2 or not (parts[0].isdigit() and parts[1].isdigit()):
        return None
    return int(parts[0]), int(parts[1])


def supported_spec(central: str | None = None) -> str:
    """The requirement specifier of supported versions, e.g. `dagster>=1.10,<1.14`."""
    major, minor = _minor(central or central_version()) or (1, MINIMUM[1])
    return f"dagster>={MINIMUM[0]}.{MINIMUM[1]},<{major}.{minor + 1}"


# Libraries released with dagster itself carry its version; the others are 0.(N+16).
_CORE_NUMBERED = ("dagster-webserver", "dagster-graphql", "dagster-pipes", "dagster-shared")


def library_floor(name: str) -> str:
    """`name` no older than the supported range. Old library releases (0.11) have no
    dagster pin at all, so an unbounded requirement can "resolve" to one that cannot
    import with any current dagster; the floor makes that a resolution error instead."""
    if name in _CORE_NUMBERED:
        return f"{name}>={MINIMUM[0]}.{MINIMUM[1]}"
    if name.startswith("dagster-"):
        return f"{name}>=0.{MINIMUM[1] + 16}"
    return name


def check(found: str, central: str | None = None) -> None:
    """Raise DagsterVersionUnsupported when `found` is outside the supported range."""
    central = central or central_version()
    have, top = _minor(found), _minor(central)
    if have is None or top is None:
        return  # a dev build (e.g. 1!0+dev): let the load check decide
    if have < MINIMUM or have > top:
        raise DagsterVersionUnsupported(found, central)
