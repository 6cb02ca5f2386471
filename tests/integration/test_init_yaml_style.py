"""`dagfleet init` writes its files through the one YAML writer, in the house style that
`repo add` and every later edit use, with the same content as before."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest
import yaml

from dagfleet import scaffold
from dagfleet.registry import HEADER, Registry
from dagfleet.spec import load_fleet
from dagfleet.spec.defaults import default_fleet_document, medallion_repo_document
from dagfleet.yamledit import HOUSE, detect_style

pytestmark = pytest.mark.integration


def test_init_writes_the_default_fleet_in_the_house_style(tmp_path: Path) -> None:
    fleet = scaffold.init_fleet(tmp_path / "fleet")
    fleet_text = (fleet / "fleet.yaml").read_text()
    repo_text = (fleet / "repos" / "medallion.yaml").read_text()
    assert fleet_text.startswith(scaffold.FLEET_HEADER) and repo_text.startswith(HEADER)
    assert yaml.safe_load(fleet_text) == default_fleet_document(storage_root=".dagfleet/data")
    url = (fleet / ".dagfleet" / "remotes" / "medallion.git").resolve().as_uri()
    assert yaml.safe_load(repo_text) == medallion_repo_document(url)
    assert detect_style(fleet_text) == HOUSE and "\n  - name: A\n" in fleet_text
    assert sorted(load_fleet(fleet).repos) == ["medallion"]

    reg = Registry(fleet)
    reg.set_suspend("medallion", True)
    after = (fleet / "repos" / "medallion.yaml").read_text()
    added = [d for d in difflib.ndiff(repo_text.splitlines(), after.splitlines()) if d[0] in "+-"]
    assert added == ["+ suspend: true"]
