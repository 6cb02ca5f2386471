"""dagfleet's REST API (FastAPI, under /api/v1): repos, locations, promotion, webhooks, metrics.

`create_app(settings, controller)` builds the app; `server.ApiServer` runs it in a
thread for `dagfleet up`. Handlers only edit files through `dagfleet.registry`
and ask the `Controller` to act.
"""

from typing import Any

# Imported lazily: the CLI uses small parts of this package (models, logs, names)
# and must not pay for FastAPI and the runtime on every `dagfleet --help`.
_EXPORTS = {
    "PREFIX": "dagfleet.api.app",
    "create_app": "dagfleet.api.app",
    "ApiServer": "dagfleet.api.server",
    "serve": "dagfleet.api.server",
    "start_api": "dagfleet.api.server",
    "ApiSettings": "dagfleet.api.settings",
    "SettingsError": "dagfleet.api.settings",
    "check_bind": "dagfleet.api.settings",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(name)
    import importlib

    return getattr(importlib.import_module(_EXPORTS[name]), name)


__all__ = sorted(_EXPORTS)
