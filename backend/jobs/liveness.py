"""Worker liveness for `GET :$METRICS_PORT/healthz`.

The metrics server runs in a process of its own (forked by the dramatiq CLI), so it cannot look
at the worker threads. Each worker process instead touches a heartbeat file in the run's
metrics directory while its consumers, its worker threads and its outbox dispatcher are alive;
the server answers 200 only while every worker process's heartbeat is fresh. A hung or dead
worker process therefore fails the liveness probe and gets restarted.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from dramatiq import Worker

PREFIX = "heartbeat-"


def heartbeat_dir() -> Path | None:
    """The run's metrics directory (set by `backend.jobs.worker`); None outside a worker run."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return Path(path) if path else None


def worker_alive(worker: Worker) -> bool:
    threads = [*worker.consumers.values(), *worker.workers]
    return bool(threads) and all(thread.is_alive() for thread in threads)


class Heartbeat:
    """Touches `heartbeat-<pid>` every WORKER_HEARTBEAT_SECONDS while `healthy()` holds."""

    def __init__(self, directory: Path, healthy: Callable[[], bool]) -> None:
        self.path = directory / f"{PREFIX}{os.getpid()}"
        self._healthy = healthy
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        with contextlib.suppress(OSError):
            self.path.unlink()

    def _run(self) -> None:
        interval = float(settings.WORKER_HEARTBEAT_SECONDS)
        while True:
            if self._healthy():
                with contextlib.suppress(OSError):
                    self.path.touch()
            if self._stop.wait(interval):
                return


def check(directory: Path | None) -> tuple[bool, dict[str, float]]:
    """(healthy, age in seconds of each process's heartbeat)."""
    if directory is None:
        return False, {}
    now = time.time()
    ages: dict[str, float] = {}
    for path in directory.glob(f"{PREFIX}*"):
        with contextlib.suppress(OSError):
            ages[path.name.removeprefix(PREFIX)] = round(now - path.stat().st_mtime, 1)
    limit = float(settings.WORKER_HEARTBEAT_MAX_AGE_SECONDS)
    return bool(ages) and all(age <= limit for age in ages.values()), ages
