"""A daemon thread that runs a loop until it is stopped: the dispatcher and the housekeeping."""

from __future__ import annotations

import threading


class BackgroundLoop:
    """Runs `_run` in a daemon thread named `thread_name` from `start` until `stop`; `_run`
    returns once `self._stop` is set."""

    thread_name = "background-loop"

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        raise NotImplementedError
