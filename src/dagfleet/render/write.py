"""Serialise a render result and write it under a directory: the renderers' only I/O."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from dagfleet.render.common import Rendered


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        # Shared dicts (labels) are written out in full: anchors confuse readers and tools.
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # Multi-line strings (workspace.yaml, the launcher) as readable literal blocks.
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _dump(doc: Any) -> str:
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100)


def to_text(content: Any) -> str:
    """YAML for a dict, a multi-document stream for a list of dicts, text as is."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "---\n".join(_dump(doc) for doc in content)
    return _dump(content)


def texts(result: Rendered) -> dict[str, str]:
    return {path: to_text(content) for path, content in sorted(result.items())}


def write(result: Rendered, out: Path) -> list[Path]:
    """Write every file atomically (temp file, rename); returns the paths written."""
    written = []
    for rel, text in texts(result).items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
        written.append(path)
    return written
