"""Every target of the default and the 3-repo fleet matches its golden files.

Regenerate after an intended change: `DAGFLEET_UPDATE_GOLDEN=1 uv run pytest tests/unit/render`.
"""

from __future__ import annotations

import pytest

from dagfleet.render.write import texts
from tests.unit.render import golden
from tests.unit.render.fleets import FLEETS, render_all

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("fleet", list(FLEETS))
def test_render_matches_golden(fleet: str) -> None:
    problems = []
    for target, result in render_all(FLEETS[fleet]()).items():
        problems += [f"{target}/{fleet}/{p}" for p in golden.check(target, fleet, texts(result))]
    assert not problems, "run with DAGFLEET_UPDATE_GOLDEN=1 if intended:\n" + "\n".join(problems)


def test_render_is_deterministic() -> None:
    fleet = FLEETS["analytics"]()
    first = {t: texts(r) for t, r in render_all(fleet).items()}
    assert first == {t: texts(r) for t, r in render_all(fleet).items()}
