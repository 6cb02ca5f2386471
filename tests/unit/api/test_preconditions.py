"""If-Match parsing: absent, empty (412), malformed (400), well formed (passed on)."""

from __future__ import annotations

import pytest

from dagfleet.api.preconditions import check_if_match
from dagfleet.control import ControlError

pytestmark = pytest.mark.unit
TAG = '"3fa9c0ffee"'


@pytest.mark.parametrize("value", [None, TAG, f"W/{TAG}", "*", f' "a" , {TAG} ', '""'])
def test_well_formed_passes_unchanged(value: str | None) -> None:
    assert check_if_match(value) == value


@pytest.mark.parametrize("value", ["", "  ", ",", " , ,"])
def test_empty_is_412(value: str) -> None:
    with pytest.raises(ControlError, match="If-Match is empty") as err:
        check_if_match(value)
    assert err.value.status_code == 412


@pytest.mark.parametrize(
    "value", ["3fa9c0ffee", '"3fa9', '"a" "b"', f"{TAG}, *", 'w/"a"', '"a b"', "W/3fa9"]
)
def test_malformed_is_400_and_names_the_form(value: str) -> None:
    with pytest.raises(ControlError, match="If-Match") as err:
        check_if_match(value)
    assert err.value.status_code == 400
    assert "quotes included" in str(err.value)
