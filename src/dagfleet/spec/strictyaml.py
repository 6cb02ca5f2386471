"""Reading a fleet file's YAML strictly: the one place fleet.yaml and repo files are parsed.

PyYAML's `safe_load` keeps the last of two equal keys without a word, recurses once
per nesting level (a `RecursionError` at about a thousand), and reads any size (10 MB
took 90 s and 1.3 GB). Here the same YAML 1.1 meaning as `safe_load` (libyaml's
parser when present, PyYAML's own composer and safe constructor) with limits:

- a duplicate key (two keys that construct to the same value; `<<` merges excepted)
  is refused with its dotted path and both lines;
- a file over `MAX_FILE_BYTES` is refused before it is read;
- nesting deeper than `MAX_DEPTH` is refused before the composer recurses further;
- more than `MAX_VALUES` values once aliases are expanded (what the validation walks),
  or an alias inside its own anchor, is refused.

The load is bounded by those limits (about a second for a file at the size limit),
and runs as Python between libyaml's events, so a signal's handler runs promptly.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from yaml._yaml import CParser as _Parser  # libyaml: PyYAML's wheels carry it
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

MAX_FILE_BYTES = 1 << 20  # 1 MiB: a repo file is a few kilobytes, fleet.yaml a few more
MAX_DEPTH = 64  # the deepest real fleet.yaml (instance.dagster settings) is under 10
MAX_VALUES = 200_000  # values after alias expansion: ~30,000 environment entries
MERGE_TAG = "tag:yaml.org,2002:merge"


class LimitError(Exception):
    """The YAML is refused: `field` is the dotted path ('' for the file), `message`
    starts with where (`line L` or `line L, column C`) when there is a place."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)


def _dotted(path: list[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class _StrictLoader(Composer, _Parser, SafeConstructor, Resolver):
    """libyaml (or PyYAML) events, PyYAML's composer with the limits, the safe constructor."""

    def __init__(self, text: str) -> None:
        _Parser.__init__(self, text)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self._depth = 0
        self._path: list[str | int | None] = []  # None: a key being composed
        self._sizes: dict[int, int] = {}  # id(node) -> values under it, aliases expanded

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        if isinstance(index, ScalarNode):
            self._path.append(index.value)
        elif isinstance(index, int):
            self._path.append(index)
        elif parent is not None:
            self._path.append(None)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark: Any = self.peek_event().start_mark  # type: ignore[union-attr]
                raise LimitError(
                    "",
                    f"line {mark.line + 1}, column {mark.column + 1}: nested deeper than "
                    f"{MAX_DEPTH} levels: fleet files need a few; flatten what is nested "
                    "this deep",
                )
            alias = self.check_event(yaml.AliasEvent)
            event: Any = self.peek_event()
            node: Node = super().compose_node(parent, index)  # type: ignore[assignment]
            mark = event.start_mark
            self._count(node, alias, mark)
            return node
        finally:
            self._depth -= 1
            if parent is not None:
                self._path.pop()

    def _count(self, node: Node, alias: bool, mark: Any) -> None:
        if id(node) not in self._sizes:
            if alias:  # the anchor's node is still being composed: it contains itself
                raise LimitError(
                    "",
                    f"line {mark.line + 1}, column {mark.column + 1}: alias "
                    f"*{self._anchor_of(node)} is inside the value it names: a fleet file "
                    "cannot contain itself",
                )
            children: list[Node] = []
            if isinstance(node, SequenceNode):
                children = node.value
            elif isinstance(node, MappingNode):
                children = [n for pair in node.value for n in pair]
            self._sizes[id(node)] = 1 + sum(self._sizes[id(c)] for c in children)
        if self._sizes[id(node)] > MAX_VALUES:
            raise LimitError(
                "",
                f"line {mark.line + 1}: more than {MAX_VALUES:,} values once its aliases are "
                "expanded: write the values out, or use fewer aliases of aliases",
            )

    def _anchor_of(self, node: Node) -> str:
        return next((name for name, n in self.anchors.items() if n is node), "?")

    def compose_mapping_node(self, anchor: Any) -> MappingNode:
        node: MappingNode = super().compose_mapping_node(anchor)
        first: dict[Any, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == MERGE_TAG:
                continue
            key = self._key(key_node)
            line = key_node.start_mark.line + 1
            if key in first:
                path = [p for p in self._path if p is not None] + [key_node.value]
                raise LimitError(
                    _dotted(path),
                    f"line {line}: duplicate key {key_node.value!r} (first on line "
                    f"{first[key]}): keep one of them",
                )
            first[key] = line
        return node

    def _key(self, node: ScalarNode) -> Any:
        """What the key constructs to (`1` and `0x1` are one key), or its text."""
        try:
            key = self.construct_object(node)
            hash(key)
        except (yaml.YAMLError, TypeError, ValueError):
            return (node.tag, node.value)
        return (type(key).__name__, key)


def parse(text: str) -> Any:
    """One YAML document read strictly; raises LimitError or yaml.YAMLError."""
    if len(text) > MAX_FILE_BYTES:
        raise LimitError("", f"is over the {MAX_FILE_BYTES:,}-byte limit for a fleet file")
    loader = _StrictLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def read_text(path: Path) -> str:
    """The file's text, refused (LimitError) past the size limit before it is read;
    raises OSError and UnicodeDecodeError as reading does."""
    with path.open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        raw = handle.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:
        size = max(size, len(raw))
        raise LimitError(
            "",
            f"is {size:,} bytes, over the {MAX_FILE_BYTES:,}-byte limit for a fleet file: "
            "a repo file is a few kilobytes; remove what it does not need",
        )
    return raw.decode("utf-8")
