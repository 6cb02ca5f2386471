"""A failure's condition message leads with the line that says what is wrong."""

from __future__ import annotations

import pytest

from dagfleet.reconcile.pipeline import lead_with_error

pytestmark = pytest.mark.unit

TRACE = "\n".join(
    [
        "Traceback (most recent call last):",
        *[f'  File "/very/long/path/number/{i}/module.py", line {i}, in f{i}' for i in range(200)],
        "dagster._core.errors.DagsterImportError: Encountered ImportError: `No module named "
        "'sales_dg'` while importing module sales_dg.definitions.",
        "If relying on the working directory, make sure it is the package root.",
    ]
)


def test_the_error_line_comes_first_and_the_message_fits() -> None:
    out = lead_with_error(TRACE, limit=1000)
    first = out.splitlines()[0]
    assert first.startswith("dagster._core.errors.DagsterImportError")
    assert "No module named 'sales_dg'" in first
    assert len(out) <= 1000
    # The innermost frames are kept, whole lines only.
    assert 'number/199/module.py", line 199' in out
    assert all(line.startswith(("  File", "dagster", "If ", "...")) for line in out.splitlines())


def test_short_text_is_unchanged_in_substance() -> None:
    assert lead_with_error("ValueError: bad") == "ValueError: bad"
    assert lead_with_error("") == ""
    assert (
        lead_with_error("exited with 2\nno error line here") == "exited with 2\nno error line here"
    )


SERIALIZED = "\n".join(
    [
        "dagster._core.errors.DagsterUserCodeLoadError: Error occurred during the loading of "
        "Dagster definitions in",
        "executable_path=/x/bin/python, module_name=analytics.definitions, working_directory=.",
        "",
        "Stack Trace:",
        *[f'  File "/x/site-packages/dagster/_grpc/mod{i}.py", line {i}, in f' for i in range(60)],
        "",
        "The above exception was caused by the following exception:",
        "pydantic_core._pydantic_core.ValidationError: 1 validation error for DbtCliResource",
        "dbt_executable",
        "  Value error, The dbt executable 'dbt' was not found on PATH.",
        "",
        "Stack Trace:",
        '  File "/x/analytics/definitions.py", line 21, in <module>',
    ]
)


def test_dagsters_serialized_error_leads_with_the_root_cause_not_the_wrapper() -> None:
    out = lead_with_error(SERIALIZED, limit=800)
    lines = out.splitlines()
    assert lines[0].startswith("pydantic_core._pydantic_core.ValidationError")
    assert lines[1:3] == [
        "dbt_executable",
        "  Value error, The dbt executable 'dbt' was not found on PATH.",
    ]
    assert '/x/analytics/definitions.py", line 21' in out
    assert len(out) <= 800
