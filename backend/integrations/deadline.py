"""Total deadlines for outgoing calls, run by one watchdog thread per process.

Socket timeouts bound each read, not a call: a peer that trickles a byte a second never times
out. A call arms a deadline whose action shuts its sockets down. A `threading.Timer` per call
did that too, but started (and tore down) a thread for every SMS and webhook; here arming is a
heap push and disarming a flag, and the one thread sleeps until the earliest live deadline.
"""

from __future__ import annotations

import heapq
import itertools
import os
import threading
import time
from collections.abc import Callable


class Deadline:
    __slots__ = ("_lock", "action", "at", "live")

    def __init__(self, at: float, action: Callable[[], None], lock: threading.Condition) -> None:
        self.at = at
        self.action = action
        self.live = True
        self._lock = lock

    def disarm(self) -> None:
        """The call ended: from now on the action does not start (no wake-up needed)."""
        with self._lock:
            self.live = False


class Watchdog:
    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)  # threads do not survive a fork

    def _reset(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, seconds: float, action: Callable[[], None]) -> Deadline:
        """Run `action` in `seconds` unless the returned deadline is disarmed first."""
        deadline = Deadline(time.monotonic() + max(seconds, 0.0), action, self._cond)
        with self._cond:
            earliest = self._heap[0][0] if self._heap else None
            heapq.heappush(self._heap, (deadline.at, next(self._order), deadline))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="deadlines", daemon=True)
                self._thread.start()
            elif earliest is None or deadline.at < earliest:
                self._cond.notify()
        return deadline

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._heap and not self._heap[0][2].live:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                due = heapq.heappop(self._heap)[2]
                fire = due.live
                due.live = False
            if fire:
                due.action()


WATCHDOG = Watchdog()
