"""`${NAME}` references to dagfleet's own variables in repo-file values (pure).

A value such as `DBT_PROJECT_DIR: ${DAGFLEET_CHECKOUT}/dbt_project` names a path
inside the commit's tree, wherever that tree is: `.dagfleet/checkouts/<location>/
<sha>` locally, the git-sync link in a Kubernetes pod, the image's code
directory on ECS and compose. Every target expands the same names with its own
values, through `expand`. `$$` is a literal `$`; a `$` not followed by `{` or `$`
is left alone (a shell command may use it). An unknown name is an error when
the file is loaded, never an empty string at run time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# What every target can expand: where the code is and where the location's data goes.
NAMES: dict[str, str] = {
    "DAGFLEET_CHECKOUT": "the root of the commit's tree",
    "DAGFLEET_PROJECT_DIR": "the location's working directory inside the tree",
    "DAGFLEET_ENV": "the environment's name",
    "DAGFLEET_REPO": "the repo's name",
    "DAGFLEET_LOCATION": "the code location's name",
    "DAGFLEET_FLEET": "the fleet's name",
    "DAGFLEET_STORAGE_ROOT": "the location's storage prefix (a directory or s3:// URL)",
    "DAGFLEET_ASSETS": "the location's assets prefix",
    "DAGFLEET_RUNS": "the location's runs prefix",
    "DAGFLEET_LOGS": "the location's logs prefix",
    "DAGFLEET_SHARED": "the environment's shared prefix",
}

_TOKEN = re.compile(r"\$\$|\$\{([^}]*)\}")


class UnknownReference(ValueError):
    pass


def references(value: str) -> list[str]:
    """The names `value` refers to, in order."""
    return [m.group(1) for m in _TOKEN.finditer(value) if m.group(0) != "$$"]


def check(value: str) -> str | None:
    """An error message for the first unknown or malformed reference, or None."""
    for name in references(value):
        if name not in NAMES:
            known = ", ".join(NAMES)
            return f"unknown reference ${{{name}}}: use one of {known} (write $$ for a literal $)"
    return None


def expand(value: str, values: Mapping[str, str]) -> str:
    """`value` with every reference replaced; raises UnknownReference for a name
    `values` does not hold."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        if name not in values:
            raise UnknownReference(f"unknown reference ${{{name}}}")
        return values[name]

    return _TOKEN.sub(one, value)


def target_values(checkout: str, project_dir: str, storage: Mapping[str, str]) -> dict[str, str]:
    """The values of NAMES that depend on where the code and data are (see `NAMES`)."""
    out = {k: v for k, v in storage.items() if k in NAMES}
    out["DAGFLEET_CHECKOUT"] = checkout
    out["DAGFLEET_PROJECT_DIR"] = project_dir
    return out
