"""The one writer of the YAML files people also edit by hand: repos/*.yaml and fleet.yaml.

These files live in git, so every byte that changes is a line in somebody's diff.
New files are written in one house style (`HOUSE`: nested mappings by 2, list
dashes 2 in under their key). Edits keep the file's own style: its indentation
is detected from the text (`detect_style`), and ruamel's round trip keeps
comments, key order, quoting, blank lines and the header. `merge_patch_text`
applies an RFC 7396 merge patch; `replace_text` puts a whole new document onto
the old one as a structural update, so unchanged keys and list items stay as
written, removed keys go and new keys are appended. Lines ruamel would still
normalise (spacing inside a line) are put back as they were when the change did
not touch them. Pure: text in, text out. Reading stays with PyYAML.
"""

from __future__ import annotations

import difflib
import io
import itertools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.representer import RoundTripRepresenter
from ruamel.yaml.resolver import VersionedResolver
from ruamel.yaml.scalarstring import ScalarString
from ruamel.yaml.tag import Tag
from ruamel.yaml.tokens import CommentToken

_STR = "tag:yaml.org,2002:str"
_PYYAML = yaml.resolver.Resolver()


def _pyyaml_tag(value: str) -> str:
    """The tag PyYAML (the reader of these files) gives `value` written plain."""
    return str(_PYYAML.resolve(yaml.ScalarNode, value, (True, False)))  # type: ignore[no-untyped-call]


class _ReadsLikePyYAML(VersionedResolver):
    """Plain scalars mean what PyYAML reads (YAML 1.1: `on` is true, `017` is 15),
    so the round trip and the registry never disagree about a value."""

    @property
    def processing_version(self) -> Any:
        return (1, 1)  # the constructors' 1.1 rules too: `017` is octal, as PyYAML reads it

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is ScalarNode and implicit[0]:
            return Tag(suffix=_pyyaml_tag(value))
        return super().resolve(kind, value, implicit)


class _WritesForPyYAML(RoundTripRepresenter):
    """Strings PyYAML would read as something else (`no`, `on`, `017`) are quoted."""

    def represent_str(self, data: str) -> Any:
        style = "'" if data and _pyyaml_tag(data) != _STR else None
        return self.represent_scalar(_STR, data, style=style)


_WritesForPyYAML.add_representer(str, _WritesForPyYAML.represent_str)


@dataclass(frozen=True)
class Style:
    """ruamel's indentation knobs: nested mapping indent, list item indent, dash offset."""

    mapping: int = 2
    sequence: int = 4
    offset: int = 2


HOUSE = Style()

# A line that opens a block: `key:` (maybe after list dashes) with no value, maybe a comment.
_OPENS = re.compile(r"^(?P<dashes>(?:-\s+)*)[^\s#-][^#]*:\s*(?:#.*)?$")


def _content_lines(text: str) -> list[tuple[int, str]]:
    out = []
    for line in text.splitlines():
        body = line.lstrip(" ")
        if body and not body.startswith("#") and body not in ("---", "..."):
            out.append((len(line) - len(body), body.rstrip()))
    return out


def detect_style(text: str) -> Style:
    """The indentation `text` uses for nested mappings and lists (HOUSE where it has none)."""
    mapping = sequence = offset = None
    lines = _content_lines(text)
    for (col, body), (next_col, next_body) in itertools.pairwise(lines):
        opened = _OPENS.match(body)
        if opened is None:
            continue
        key_col = col + len(opened["dashes"])
        if next_body == "-" or next_body.startswith("- "):
            if sequence is None and next_col >= key_col:
                offset = next_col - key_col
                sequence = offset + max(2, len(next_body) - len(next_body[1:].lstrip()))
        elif mapping is None and next_col > key_col:
            mapping = next_col - key_col
        if mapping is not None and sequence is not None:
            break
    if mapping is None:
        mapping = offset or HOUSE.mapping
    if sequence is None or offset is None:
        offset, sequence = mapping, mapping + 2
    return Style(mapping, max(sequence, offset + 2), offset)


def _yaml(style: Style) -> YAML:
    y = YAML()  # round-trip mode
    y.Resolver = _ReadsLikePyYAML
    y.Representer = _WritesForPyYAML
    y.preserve_quotes = True
    y.indent(mapping=style.mapping, sequence=style.sequence, offset=style.offset)
    y.width = 4096  # never fold a long URL or command onto a second line
    return y


def _dump(y: YAML, doc: Any) -> str:
    out = io.StringIO()
    y.dump(doc, out)
    return out.getvalue()


def dump_new(doc: Mapping[str, Any], header: str = "") -> str:
    """A new file holding `doc` in the house style, after `header` (comment lines)."""
    return header + _dump(_yaml(HOUSE), dict(doc))


# ---- structural updates of a round-trip document ------------------------------------------
def _same(old: Any, new: Any) -> bool:
    """Equal as JSON values (True is not 1, "1" is not 1)."""
    if isinstance(old, bool) or isinstance(new, bool):
        return isinstance(old, bool) and isinstance(new, bool) and old == new
    if isinstance(old, str) != isinstance(new, str):
        return False
    return bool(old == new)


def _assign(target: CommentedMap | CommentedSeq, key: Any, value: Any) -> None:
    """Set target[key] to `value`, changing as little of what is written as possible."""
    present = key in target if isinstance(target, CommentedMap) else key < len(target)
    old = target[key] if present else None
    if isinstance(old, CommentedMap) and isinstance(value, Mapping):
        update_mapping(old, value)
    elif (
        isinstance(old, CommentedSeq) and isinstance(value, Sequence) and not isinstance(value, str)
    ):
        _update_sequence(old, value)
    elif present and _same(old, value):
        pass  # keep the file's spelling: quotes, 0x1F, yes/no, ...
    elif isinstance(old, ScalarString) and isinstance(value, str):
        target[key] = type(old)(value)  # keep the quoting style the value was written in
    else:
        target[key] = value


def update_mapping(old: CommentedMap, new: Mapping[str, Any]) -> None:
    """Make `old` equal to `new` in place: keys it lacks go, new keys are appended."""
    for key in [k for k in old if k not in new]:
        _delete(old, key)
    for key, value in new.items():
        _assign(old, key, value)


def _identity(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _update_sequence(old: CommentedSeq, new: Sequence[Any]) -> None:
    """Make `old` equal to `new`: items that stay keep their place, spelling and comments."""
    matcher = difflib.SequenceMatcher(
        None, [_identity(v) for v in old], [_identity(v) for v in new], False
    )
    for tag, i1, i2, j1, j2 in reversed(matcher.get_opcodes()):
        if tag == "equal":
            continue
        paired = min(i2 - i1, j2 - j1) if tag == "replace" else 0
        for k in range(paired):
            _assign(old, i1 + k, new[j1 + k])
        for index in reversed(range(i1 + paired, i2)):
            _delete(old, index)
        for k in range(j1 + paired, j2):
            old.insert(i1 + k - j1, new[k])


# ---- comments of deleted entries -------------------------------------------------------------
# ruamel keeps the comment lines that follow a value (blank lines, `# about the next key`)
# in that value's end-of-line comment slot; deleting the entry would delete them too.
def _slot(container: CommentedMap | CommentedSeq, key: Any) -> tuple[Any, Any]:
    """Where the comment lines after container[key] are kept: its deepest last entry."""
    value = container[key]
    while isinstance(value, CommentedMap | CommentedSeq) and len(value):
        container = value
        key = list(value)[-1] if isinstance(value, CommentedMap) else len(value) - 1
        value = container[key]
    return container, key


def _position(container: CommentedMap | CommentedSeq) -> int:
    return 2 if isinstance(container, CommentedMap) else 0


def _take_trailing(container: CommentedMap | CommentedSeq, key: Any) -> str:
    holder, at = _slot(container, key)
    entry = holder.ca.items.get(at)
    token = entry[_position(holder)] if entry else None
    if token is None:
        return ""
    return str(token.value).partition("\n")[2]


def _give_trailing(container: CommentedMap | CommentedSeq, key: Any, lines: str) -> None:
    holder, at = _slot(container, key)
    entry = holder.ca.items.setdefault(at, [None] * (4 if isinstance(holder, CommentedMap) else 2))
    token = entry[_position(holder)]
    if token is None:
        entry[_position(holder)] = CommentToken("\n" + lines, CommentMark(0), None)
    else:
        token.value = str(token.value) + lines


def _delete(container: CommentedMap | CommentedSeq, key: Any) -> None:
    """Delete container[key]; the comment lines after it go to the entry before it."""
    keys = list(container) if isinstance(container, CommentedMap) else list(range(len(container)))
    index = keys.index(key)
    lines = _take_trailing(container, key)
    if lines and index > 0:
        _give_trailing(container, keys[index - 1], lines)
    del container[key]
    if isinstance(container, CommentedSeq):  # ruamel does not renumber a list's comments
        items = container.ca.items
        items.pop(key, None)
        for at in sorted(k for k in items if k > key):
            items[at - 1] = items.pop(at)


def _merge(target: CommentedMap, patch: Mapping[str, Any]) -> None:
    for key, value in patch.items():
        if value is None:
            if key in target:
                _delete(target, key)
        elif isinstance(value, Mapping):
            if not isinstance(target.get(key), CommentedMap):
                target[key] = CommentedMap()
            _merge(target[key], value)
        else:
            _assign(target, key, value)


# ---- editing a file's text -----------------------------------------------------------------
def _load_mapping(y: YAML, text: str) -> CommentedMap:
    doc = y.load(text)
    if doc is None:
        return CommentedMap()
    if not isinstance(doc, CommentedMap):
        raise ValueError("the document is not a mapping of keys to values")
    return doc


def _restore_untouched(original: str, round_trip: str, edited: str) -> str:
    """`edited`, with each line the edit did not touch spelled as in `original`.

    `round_trip` is `original` loaded and dumped unchanged: lines it shares with
    `edited` were not touched, and where it differs from `original` only within
    lines (spacing ruamel normalises), those lines map back one to one.
    """
    orig, rt, new = (t.splitlines(keepends=True) for t in (original, round_trip, edited))
    back: dict[int, str] = {}
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, rt, orig, False).get_opcodes():
        if tag == "equal" or (tag == "replace" and i2 - i1 == j2 - j1):
            back.update({i1 + k: orig[j1 + k] for k in range(i2 - i1)})
    out: list[str] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, rt, new, False).get_opcodes():
        if tag == "equal":
            out.extend(back.get(i, rt[i]) for i in range(i1, i2))
        else:
            out.extend(new[j1:j2])
    return "".join(out)


def _split_preamble(text: str) -> tuple[str, str]:
    """(comment lines up to a `---` marker, the document after it); ("", text) without
    one. ruamel would drop comments written before `---`, so they are kept aside."""
    lines = text.splitlines(keepends=True)
    for index, line in enumerate(lines):
        if line.rstrip() == "---":
            return "".join(lines[: index + 1]), "".join(lines[index + 1 :])
        if line.strip() and not line.lstrip().startswith("#"):
            break
    return "", text


def edit_text(text: str, change: Callable[[CommentedMap], None]) -> str:
    """`text` (a YAML mapping) after `change` ran on its round-trip document, in its own
    style; `text` itself when the data did not change. ValueError if it is no mapping."""
    preamble, body = _split_preamble(text)
    return preamble + _edit_body(body, change)


def _edit_body(text: str, change: Callable[[CommentedMap], None]) -> str:
    y = _yaml(detect_style(text))
    doc = _load_mapping(y, text)
    before = yaml.safe_load(text)
    round_trip = _dump(y, doc)
    change(doc)
    edited = _dump(y, doc)
    after = yaml.safe_load(edited)
    if after == (before or {}):
        return text
    if round_trip == text:
        return edited  # ruamel spells every line as the file does
    try:
        restored = _restore_untouched(text, round_trip, edited)
        if yaml.safe_load(restored) == after:
            return restored
    except yaml.YAMLError:
        pass  # a mix of spellings that no longer parses: ruamel's own text is right
    return edited


def merge_patch_text(text: str, patch: Mapping[str, Any]) -> str:
    """`text` with the RFC 7396 merge `patch` applied, keeping everything it did not change."""
    return edit_text(text, lambda doc: _merge(doc, patch))


def replace_text(text: str, new: Mapping[str, Any]) -> str:
    """`text` made to hold `new`, as a structural update that keeps what did not change."""
    return edit_text(text, lambda doc: update_mapping(doc, new))
