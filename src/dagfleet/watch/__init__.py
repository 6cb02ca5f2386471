"""The instance watcher: runs, ticks and the daemon's heartbeats, as events.

A thread in `dagfleet up` (started once the webserver answers, stopped first on
stop) polls the central instance about once a second and publishes RUN_STARTED,
RUN_SUCCEEDED, RUN_FAILED, RUN_CANCELED, TICK_FAILED, TICK_SUCCEEDED, DAEMON_DOWN
and DAEMON_UP on the reconcile context's EventBus (dagfleet.events), each once.
It only publishes: the alert engine decides what becomes an alert.

`runs`, `ticks` and `daemon` decide which events a record calls for (no I/O
beyond reading the instance); `watcher` owns the thread and the cursors.
"""

from dagfleet.watch.watcher import InstanceWatcher, resolver

__all__ = ["InstanceWatcher", "resolver"]
