"""One channel's delivery: its own queue and thread, so sending never holds up a sync.

- Dedupe: a notice whose (episode, state) was delivered or is queued is dropped.
- Retries: a transient failure keeps the message at the head of the queue and retries
  after 1 s, doubling to `backoff_cap` (60 s), for as long as dagfleet runs; order is
  kept. A permanent failure (revoked token, unknown channel) drops the message.
- Rate limit: at most `rate_per_minute` messages in any 60 s (default 20). When more
  are queued than the minute still allows, the last message allowed carries all of
  them as one summary; later ones wait for the window.
- Status: `up` is False from a failed attempt to the next success; counts, the last
  success and error, and the queue length feed the status file and metrics.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from dagfleet.alerts.model import ChannelStatus, Notice
from dagfleet.alerts.rules import iso
from dagfleet.alerts.senders import DeliveryError, Sender

log = logging.getLogger(__name__)
WINDOW = 60.0
MAX_QUEUE = 1000
REMEMBERED = 10000  # delivered keys kept for dedupe


class ChannelWorker:
    def __init__(
        self,
        name: str,
        kind: str,
        sender: Sender,
        rate_per_minute: int,
        *,
        backoff_first: float = 1.0,
        backoff_cap: float = 60.0,
        on_change: Callable[[], None] = lambda: None,
        start: bool = True,
    ) -> None:
        self.name = name
        self.kind = kind
        self.sender = sender
        self.rate = rate_per_minute
        self.backoff_first = backoff_first
        self.backoff_cap = backoff_cap
        self.on_change = on_change
        self._queue: deque[Notice] = deque()
        self._delivered: OrderedDict[str, None] = OrderedDict()
        self._window: deque[float] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._deadline = float("inf")
        self._retry_at = 0.0
        self._delay = backoff_first
        self.status = ChannelStatus(name=name, kind=kind, up=True)
        self._thread = threading.Thread(target=self._run, name=f"alerts-{name}", daemon=True)
        if start:
            self._thread.start()

    def start(self) -> None:
        """Start sending (for a worker made with start=False, e.g. to queue a burst first)."""
        self._thread.start()

    # ---- from the engine --------------------------------------------------------------
    def put(self, notice: Notice) -> bool:
        """Queue `notice` unless it was delivered or is queued already; never blocks long."""
        key = notice.dedupe_key
        with self._cond:
            if self._stopping or key in self._delivered:
                return False
            if any(n.dedupe_key == key for n in self._queue):
                return False
            if len(self._queue) >= MAX_QUEUE:
                dropped = self._queue.popleft()
                self._failed(f"queue full: dropped {dropped.title!r}", count=True)
            self._queue.append(notice)
            self.status = self.status.model_copy(update={"queued": len(self._queue)})
            self._cond.notify_all()
        self.on_change()
        return True

    def stop(self, deadline: float) -> None:
        """Deliver what is queued until `deadline` (time.monotonic), then stop."""
        with self._cond:
            self._stopping = True
            self._deadline = deadline
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(max(0.0, deadline - time.monotonic()) + 0.5)
        self.sender.close()

    def snapshot(self) -> ChannelStatus:
        with self._cond:
            return self.status

    # ---- the thread -------------------------------------------------------------------
    def _wait_until(self, at: float) -> None:
        self._cond.wait(timeout=max(0.0, min(at, self._deadline) - time.monotonic()))

    def _next_batch(self) -> list[Notice] | None:
        """Under the lock: the batch to send now, None to stop, [] to wait and look again."""
        if not self._queue:
            if self._stopping:
                return None
            self._cond.wait()
            return []
        now = time.monotonic()
        if self._stopping and now >= self._deadline:
            return None
        if now < self._retry_at:
            self._wait_until(self._retry_at)
            return []
        while self._window and self._window[0] <= now - WINDOW:
            self._window.popleft()
        allowed = self.rate - len(self._window)
        if allowed <= 0:
            self._wait_until(self._window[0] + WINDOW)
            return []
        if len(self._queue) > allowed == 1:
            return list(self._queue)  # the minute's last message: a summary of them all
        return [self._queue[0]]

    def _run(self) -> None:
        while True:
            with self._cond:
                batch = self._next_batch()
                if batch is None:
                    return
                if not batch:
                    continue
            try:
                self.sender.send(batch)
            except DeliveryError as exc:
                self._after_failure(batch, exc)
            except Exception as exc:  # a bug in a sender: keep the thread, report it
                log.exception("alert channel %s: sending failed", self.name)
                self._after_failure(batch, DeliveryError(f"{type(exc).__name__}: {exc}"))
            else:
                self._after_success(batch)
            self.on_change()

    def _remove(self, batch: list[Notice]) -> None:
        for notice in batch:
            if self._queue and self._queue[0] is notice:
                self._queue.popleft()
            else:
                with contextlib.suppress(ValueError):
                    self._queue.remove(notice)

    def _after_success(self, batch: list[Notice]) -> None:
        with self._cond:
            self._remove(batch)
            self._window.append(time.monotonic())
            for notice in batch:
                self._delivered[notice.dedupe_key] = None
            while len(self._delivered) > REMEMBERED:
                self._delivered.popitem(last=False)
            self._delay = self.backoff_first
            self._retry_at = 0.0
            self.status = self.status.model_copy(
                update={
                    "up": True,
                    "queued": len(self._queue),
                    "sent": self.status.sent + 1,
                    "last_success": iso(time.time()),
                }
            )

    def _failed(self, message: str, count: bool) -> None:
        update: dict[str, object] = {
            "up": False,
            "last_error": message,
            "last_error_at": iso(time.time()),
            "queued": len(self._queue),
        }
        if count:
            update["failures"] = self.status.failures + 1
        self.status = self.status.model_copy(update=update)

    def _after_failure(self, batch: list[Notice], exc: DeliveryError) -> None:
        log.warning("alert channel %s: %s", self.name, exc)
        with self._cond:
            if exc.permanent:
                self._remove(batch)  # retrying cannot help: the error stays in the status
            else:
                self._retry_at = time.monotonic() + self._delay
                self._delay = min(self._delay * 2, self.backoff_cap)
            self._failed(str(exc), count=True)
