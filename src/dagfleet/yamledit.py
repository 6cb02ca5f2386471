"""Comment-preserving edits of YAML files people also edit by hand.

`merge_patch_text` applies an RFC 7396 JSON merge patch to a YAML document and
keeps what a person wrote around the changed keys: comments, key order, quoting
and the header. Pure: text in, text out.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap


def _yaml() -> YAML:
    y = YAML()  # round-trip mode
    y.preserve_quotes = True
    y.indent(mapping=2, sequence=4, offset=2)
    y.width = 4096
    return y


def _apply(target: CommentedMap, patch: Mapping[str, Any]) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, Mapping):
            current = target.get(key)
            if not isinstance(current, CommentedMap):
                current = CommentedMap()
                target[key] = current
            _apply(current, value)
        else:
            target[key] = value


def merge_patch_text(text: str, patch: Mapping[str, Any]) -> str:
    """`text` (a YAML mapping) with `patch` merged in; raises ValueError if it is no mapping."""
    y = _yaml()
    doc = y.load(text)
    if doc is None:
        doc = CommentedMap()
    if not isinstance(doc, CommentedMap):
        raise ValueError("the document is not a mapping of keys to values")
    _apply(doc, patch)
    out = io.StringIO()
    y.dump(doc, out)
    return out.getvalue()
