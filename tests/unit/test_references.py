"""`${DAGFLEET_*}` references in repo values: checked at load, expanded per target."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from dagfleet.spec.models import RepoSpec
from dagfleet.spec.references import NAMES, UnknownReference, check, expand, references

pytestmark = pytest.mark.unit


def test_expands_known_names_and_escapes() -> None:
    values = {"DAGFLEET_CHECKOUT": "/x/abc", "DAGFLEET_ENV": "A"}
    assert expand("${DAGFLEET_CHECKOUT}/dbt", values) == "/x/abc/dbt"
    assert (
        expand("$${DAGFLEET_ENV} costs $5 in ${DAGFLEET_ENV}", values)
        == "${DAGFLEET_ENV} costs $5 in A"
    )
    assert expand("plain", values) == "plain"


def test_unknown_name_is_an_error_not_an_empty_string() -> None:
    with pytest.raises(UnknownReference, match="NOPE"):
        expand("${NOPE}", {})
    assert check("${DAGFLEET_CHECKOUT}/a") is None
    error = check("${DAGFLEET_CHEKOUT}/a")
    assert error is not None and "DAGFLEET_CHEKOUT" in error and "DAGFLEET_CHECKOUT" in error
    assert references("${A}${B}$$") == ["A", "B"]
    assert set(NAMES) >= {"DAGFLEET_CHECKOUT", "DAGFLEET_PROJECT_DIR", "DAGFLEET_STORAGE_ROOT"}


def test_repo_file_rejects_an_unknown_reference_naming_the_field() -> None:
    with pytest.raises(ValidationError) as caught:
        RepoSpec(
            name="sales",
            git_url="file:///tmp/x",
            environment=[{"name": "DBT_DIR", "value": "${DAGFLEET_TREE}/dbt"}],
        )
    text = str(caught.value)
    assert "environment.0.value" in text and "DAGFLEET_TREE" in text
