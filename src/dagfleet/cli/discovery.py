"""Which fleet a command means: --fleet, else DAGFLEET_FLEET, else walking up from here.

Like git finding `.git`, a fleet is found from any folder inside it (`repos/`
included): the nearest directory holding `fleet.yaml`, or `.dagfleet/fleet.yaml`
for the embedded default fleet that `dagfleet up` writes in an empty directory.
Only file names are checked here; nothing is parsed or imported.
"""

from __future__ import annotations

from pathlib import Path

FLEET_FILE = "fleet.yaml"  # dagfleet.spec.load.FLEET_FILE, not imported: it loads pydantic
STATE_DIR = ".dagfleet"  # dagfleet.layout's state directory name


def fleet_in(directory: Path) -> Path | None:
    """The fleet directory `directory` holds itself, or None."""
    if (directory / FLEET_FILE).is_file():
        return directory
    if (directory / STATE_DIR / FLEET_FILE).is_file():
        return directory / STATE_DIR
    return None


def find_fleet(start: Path) -> Path | None:
    """The fleet holding `start`: `start` itself or its nearest parent with a fleet."""
    here = start.resolve()
    for directory in (here, *here.parents):
        found = fleet_in(directory)
        if found is not None:
            return found
    return None


def resolve_fleet(given: Path | None, cwd: Path | None = None) -> Path | None:
    """`given` (--fleet, or DAGFLEET_FLEET through the option's envvar) wins; else walk up."""
    if given is not None:
        return given.resolve()
    return find_fleet(cwd if cwd is not None else Path.cwd())
