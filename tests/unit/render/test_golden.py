"""Every target of the default and the 3-repo fleet matches its golden files.

Regenerate after an intended change: `DAGFLEET_UPDATE_GOLDEN=1 uv run pytest tests/unit/render`.
Dockerfiles embed the launcher script and dagfleet-runtime's modules; their goldens
hold a marker in place of each (both have tests of their own), after checking each
is embedded verbatim.
"""

from __future__ import annotations

import pytest

from dagfleet.render.dockerfile import runtime_sources
from dagfleet.render.launcher import LAUNCHER_SOURCE
from dagfleet.render.write import texts
from tests.unit.render import golden
from tests.unit.render.fleets import FLEETS, render_all

pytestmark = pytest.mark.unit


LAUNCHER_MARK = "# (dagfleet.render.launcher.LAUNCHER_SOURCE, verbatim)\n"


def _comparable(target: str, files: dict[str, str]) -> dict[str, str]:
    if not target.startswith("dockerfile/"):
        return files
    out = {}
    for rel, text in files.items():
        assert text.count(LAUNCHER_SOURCE) == 1, f"{target}/{rel} must embed the launcher once"
        text = text.replace(LAUNCHER_SOURCE, LAUNCHER_MARK)
        for name, source in runtime_sources().items():
            assert text.count(source) == 1, f"{target}/{rel} must embed runtime {name} once"
            text = text.replace(source, f"# (dagfleet_runtime/{name}, verbatim)\n")
        out[rel] = text
    return out


@pytest.mark.parametrize("fleet", list(FLEETS))
def test_render_matches_golden(fleet: str) -> None:
    problems = []
    for target, result in render_all(FLEETS[fleet]()).items():
        files = _comparable(target, texts(result))
        problems += [f"{target}/{fleet}/{p}" for p in golden.check(target, fleet, files)]
    assert not problems, "run with DAGFLEET_UPDATE_GOLDEN=1 if intended:\n" + "\n".join(problems)


def test_render_is_deterministic() -> None:
    fleet = FLEETS["analytics"]()
    first = {t: texts(r) for t, r in render_all(fleet).items()}
    assert first == {t: texts(r) for t, r in render_all(fleet).items()}
