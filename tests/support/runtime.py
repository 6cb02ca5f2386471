"""A real Reconciler over a fleet directory whose loops are never started.

For API and CLI tests that need the runtime's registry, status store and
controller, but no code servers.
"""

from __future__ import annotations

from pathlib import Path

from dagfleet.layout import Layout
from dagfleet.reconcile.context import MirrorPool, ReconcileContext
from dagfleet.reconcile.manager import Reconciler
from dagfleet.runtime.processes import PidRegistry
from dagfleet.spec import load_fleet
from dagfleet.status import StatusStore
from dagfleet.venvs.builder import EnvBuilder


def idle_runtime(fleet_dir: Path) -> Reconciler:
    layout = Layout.for_fleet(fleet_dir)
    ctx = ReconcileContext(
        layout=layout,
        fleet_ref=[load_fleet(fleet_dir)],
        builder=EnvBuilder(layout.venvs),
        mirrors=MirrorPool(layout),
        store=StatusStore(layout.status),
        pids=PidRegistry(layout.root / "pids", marker=str(layout.root)),
    )
    return Reconciler(ctx, on_workspace_changed=lambda _locations: None)
