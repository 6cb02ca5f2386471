"""Build-time metadata of the dagfleet wheel: its dependencies, dagfleet-runtime pinned.

dagfleet installs the dagfleet-runtime it ships (`dagfleet/_packages`) into every
location environment, and imports the same package itself; the wheel therefore
requires exactly its own version of it (`dagfleet-runtime==<version>`), the version
[tool.hatch.version] reads from packages/dagfleet-runtime/pyproject.toml. The other
dependencies are listed in pyproject.toml under [tool.hatch.metadata.hooks.custom].
"""

from __future__ import annotations

from typing import Any

from hatchling.metadata.plugin.interface import MetadataHookInterface

RUNTIME = "dagfleet-runtime"


class DagfleetMetadataHook(MetadataHookInterface):
    def update(self, metadata: dict[str, Any]) -> None:
        deps = self.config.get("dependencies")
        if not isinstance(deps, list):
            raise ValueError(
                "pyproject.toml: [tool.hatch.metadata.hooks.custom] dependencies: "
                "missing; list dagfleet's dependencies there (they are dynamic)"
            )
        if any(str(d).replace("_", "-").startswith(RUNTIME) for d in deps):
            raise ValueError(
                "pyproject.toml: [tool.hatch.metadata.hooks.custom] dependencies: "
                f"remove {RUNTIME}; hatch_build.py adds it pinned to dagfleet's version"
            )
        metadata["dependencies"] = [*deps, f"{RUNTIME}=={metadata['version']}"]
