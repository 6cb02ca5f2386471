"""Judge one commit for one location exactly as `dagfleet validate` and the local
runtime do: fetch, checkout, discover, install, build steps, environment, then a
code server loading the definitions in its own process (reconcile.validate)."""

from __future__ import annotations

from dagfleet.layout import Layout
from dagfleet.reconcile.validate import Validation, validate_location
from dagfleet.spec import Fleet, LocationSpec


def judge(fleet: Fleet, layout: Layout, loc: LocationSpec, commit: str | None) -> Validation:
    """Load `commit` (a full SHA; None: the location's pin, else its branch tip) in
    `loc`'s environment; the result names the commit judged and, if rejected, why."""
    if commit is not None:
        loc = loc.model_copy(update={"pin": commit})
    return validate_location(fleet, layout, loc)
