"""Where the render validation tests find the Helm chart and the CRDs they validate against.

`DAGFLEET_SCHEMAS_DIR` names the folder (holding `helm/dagster` and `crds/`); unset, it
is `../shared/` beside the clone, as on this team's machines. A test that needs it calls
`schemas_dir()`: when the folder is missing the test is skipped, saying what and how to
provide it; under CI (`CI=true`) a missing folder fails instead, so CI never skips them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ENV = "DAGFLEET_SCHEMAS_DIR"
DEFAULT = Path(__file__).resolve().parents[2].parent / "shared"


def configured() -> Path:
    """The folder the setting names (not checked)."""
    value = os.environ.get(ENV, "").strip()
    return Path(value).expanduser().resolve() if value else DEFAULT


def schemas_dir(what: str = "this render validation test") -> Path:
    """The schemas folder; skips (fails under CI=true) when it is not there."""
    root = configured()
    if (root / "helm" / "dagster").is_dir() and (root / "crds").is_dir():
        return root
    message = (
        f"{what} needs the Dagster Helm chart (helm/dagster) and the Flux and CloudNativePG "
        f"CRDs (crds/) in {root}, which is missing: set {ENV} to a folder holding them "
        "(default ../shared beside the clone)"
    )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI=true: never skipped in CI)")
    pytest.skip(message)
