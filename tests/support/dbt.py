"""A real dbt project made by `dbt init` at test time, with a DuckDB profile."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.support.shapes import run_tool, uv_binary

# dbt-core 1.12 depends on a parser wheel its build downloads from outside the
# package index; repos tighten that with a uv constraint (or a dependency).
DBT_CORE = "dbt-core<1.12"

PROFILES = textwrap.dedent(
    """
    jaffle:
      target: dev
      outputs:
        dev:
          type: duckdb
          path: "{{ env_var('WAREHOUSE') }}"
          threads: 1
    """
)


def dbt_init(where: Path, name: str = "jaffle") -> Path:
    """`dbt init --skip-profile-setup NAME` in `where`, plus profiles.yml (DuckDB at
    $WAREHOUSE); the project directory."""
    uvx = str(Path(uv_binary()).with_name("uvx"))
    run_tool(
        [
            uvx,
            "--from",
            DBT_CORE,
            "--with",
            "dbt-duckdb",
            "dbt",
            "init",
            "--skip-profile-setup",
            name,
        ],
        cwd=where,
    )
    (where / name / "profiles.yml").write_text(PROFILES.replace("jaffle:", f"{name}:", 1))
    return where / name
