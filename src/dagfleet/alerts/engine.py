"""`AlertEngine`: EventBus events -> rules -> one delivery worker per channel.

Subscribing costs the publisher one queue put: the rules, the timer and the status
file run on the engine's own thread, and each channel sends on its own.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from dagfleet.alerts import report, senders
from dagfleet.alerts.delivery import ChannelWorker
from dagfleet.alerts.model import AlertsReport, ChannelStatus, EpisodeOut, Notice
from dagfleet.alerts.rules import Rules, iso
from dagfleet.events import Event, EventBus
from dagfleet.layout import Layout
from dagfleet.spec.alerts import ChannelSpec
from dagfleet.spec.models import Fleet

log = logging.getLogger(__name__)
TICK = 0.5  # seconds between timer checks (not_serving_tip, run_longer_than, quiet periods)
STOP_DEADLINE = 5.0  # seconds `stop` gives the channels to deliver what is queued


class AlertEngine:
    def __init__(
        self,
        fleet: Callable[[], Fleet],
        layout: Layout,
        webserver: str,
        environ: Mapping[str, str] | None = None,
        *,
        backoff_first: float = 1.0,
        backoff_cap: float = 60.0,
        write_report: bool = True,
    ) -> None:
        self.fleet = fleet
        self.layout = layout
        self.environ = environ if environ is not None else os.environ
        self.rules = Rules(fleet, lambda: fleet().spec.alerts.webserver_url or webserver)
        self.backoff = (backoff_first, backoff_cap)
        self.write_report = write_report
        self._inbox: queue.Queue[tuple[Event, float] | None] = queue.Queue()
        self._workers: dict[str, tuple[ChannelSpec, ChannelWorker]] = {}
        self._lock = threading.Lock()
        self._dirty = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alerts", daemon=True)

    # ---- lifecycle --------------------------------------------------------------------
    def attach(self, bus: EventBus) -> None:
        bus.subscribe(self.on_event)

    def start(self) -> None:
        self._dirty.set()
        self._thread.start()

    def stop(self, deadline: float = STOP_DEADLINE) -> None:
        """Handle the events already published, give channels `deadline` seconds to
        deliver what is queued, then write the final report."""
        until = time.monotonic() + deadline
        if self._thread.is_alive():
            self._inbox.put(None)
            self._thread.join(deadline)
        with self._lock:
            workers = [w for _, w in self._workers.values()]
        threads = [threading.Thread(target=w.stop, args=(until,)) for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self._write(running=False)

    # ---- the publisher's side: return at once -----------------------------------------
    def on_event(self, event: Event) -> None:
        self._inbox.put((event, time.time()))

    # ---- the engine thread ------------------------------------------------------------
    def _run(self) -> None:
        next_tick = 0.0
        while True:
            try:
                item = self._inbox.get(timeout=TICK)
            except queue.Empty:
                item = ()  # type: ignore[assignment]
            if item is None:
                return
            try:
                if item:
                    event, at = item
                    self._dispatch(self.rules.on_event(event, at))
                if time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + TICK
                    self._dispatch(self.rules.tick(time.time()))
            except Exception:  # a rule's bug must not end alerting for everything else
                log.exception("the alert engine failed on an event")
            if self._dirty.is_set():
                self._write(running=True)

    def _dispatch(self, notices: list[Notice]) -> None:
        if notices:
            self._dirty.set()
        for notice in notices:
            for name in notice.channels:
                worker = self._worker(name)
                if worker is not None:
                    worker.put(notice)

    def _worker(self, name: str) -> ChannelWorker | None:
        spec = self.fleet().spec.alerts.channels.get(name)
        if spec is None:  # the loader refuses this; a fleet.yaml edited since: skip
            log.warning("alert channel %s is no longer defined", name)
            return None
        with self._lock:
            known = self._workers.get(name)
            if known is not None and known[0] == spec:
                return known[1]
        if known is not None:  # the channel changed in fleet.yaml: a fresh worker
            known[1].stop(time.monotonic())
        base = Path(self.fleet().root)
        worker = ChannelWorker(
            name,
            spec.kind,
            senders.make(spec, self.environ, base),
            spec.rate_per_minute,
            backoff_first=self.backoff[0],
            backoff_cap=self.backoff[1],
            on_change=self._dirty.set,
        )
        with self._lock:
            self._workers[name] = (spec, worker)
        return worker

    # ---- status -----------------------------------------------------------------------
    def report(self, running: bool = True) -> AlertsReport:
        with self._lock:
            workers = dict(self._workers)
        channels = []
        for name, spec in sorted(self.fleet().spec.alerts.channels.items()):
            found = workers.get(name)
            if found is not None:
                channels.append(found[1].snapshot())
            else:
                channels.append(ChannelStatus(name=name, kind=spec.kind, up=True))
        episodes = [
            EpisodeOut(
                key=e.key,
                policy=e.policy,
                event=e.event,
                location=e.location,
                opened=e.opened,
                title=e.title,
                channels=list(e.channels),
            )
            for e in self.rules.episodes()
        ]
        return AlertsReport(
            running=running, updated=iso(time.time()), channels=channels, episodes=episodes
        )

    def _write(self, running: bool) -> None:
        self._dirty.clear()
        if not self.write_report:
            return
        try:
            report.write(self.layout, self.report(running))
        except (OSError, ValueError) as exc:
            log.warning("writing the alert status failed: %s", exc)
