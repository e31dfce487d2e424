"""Entry module of the `worker` process type: `dramatiq backend.jobs.worker`.

Each Dramatiq worker process imports this module: it points prometheus_client at a per-run
multiprocess directory *before* anything imports it, sets Django up, refuses to start without
REDIS_URL, enables Sentry's Dramatiq integration before the broker exists, adds the Prometheus
middleware (only here: it needs the CLI's process_boot hook), and declares the actors.
Metrics are served on `:$METRICS_PORT/metrics` by a process the CLI forks (`serve_metrics`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings.base")


def _metrics_dir() -> str:
    """One directory per `dramatiq` run (keyed by the CLI's pid, the parent of every worker and
    fork process), so counters of an earlier run never leak in; dirs of dead runs are removed."""
    explicit = os.environ.get("dramatiq_prom_db")  # noqa: SIM112 - Dramatiq's own name
    if explicit:
        return explicit
    root = Path(tempfile.gettempdir()) / "duka-worker-metrics"
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.iterdir():
        if stale.name.isdigit() and not _alive(int(stale.name)):
            shutil.rmtree(stale, ignore_errors=True)
    path = root / str(os.getppid())
    path.mkdir(exist_ok=True)
    return str(path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_METRICS_DIR = _metrics_dir()
# Must precede the first import of prometheus_client (django_prometheus imports it at setup):
# the client picks its multiprocess value store once, at import.
os.environ["dramatiq_prom_db"] = _METRICS_DIR  # noqa: SIM112 - Dramatiq's name
os.environ["PROMETHEUS_MULTIPROC_DIR"] = _METRICS_DIR

import django  # noqa: E402
from django.core.exceptions import ImproperlyConfigured  # noqa: E402


def _fail(message: str) -> None:
    print(f"worker: configuration error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(2)


try:
    django.setup()
except ImproperlyConfigured as exc:
    _fail(str(exc))

from django.conf import settings  # noqa: E402

if not settings.REDIS_URL:
    _fail(
        "REDIS_URL must be set for the worker process (without it the web process runs its own in-process worker)"
    )

if settings.SENTRY_DSN:
    import sentry_sdk
    from sentry_sdk.integrations.dramatiq import DramatiqIntegration

    # Before the broker is created: the integration patches Broker.__init__.
    sentry_sdk.init(dsn=settings.SENTRY_DSN, integrations=[DramatiqIntegration()])

from dramatiq.middleware.prometheus import Prometheus, _metrics_handler  # noqa: E402

from backend.jobs.broker import current_broker  # noqa: E402


class WorkerPrometheus(Prometheus):
    """Dramatiq's Prometheus middleware, with the exposition server on settings.METRICS_PORT."""

    @property
    def forks(self) -> list[Callable[[], int]]:
        return [serve_metrics]


def serve_metrics() -> int:
    """Runs in a process forked by the dramatiq CLI: serves every worker process's metrics."""
    from http.server import HTTPServer

    host = os.environ.get("dramatiq_prom_host", "0.0.0.0")  # noqa: S104, SIM112 - Dramatiq's variable
    server = HTTPServer((host, settings.METRICS_PORT), _metrics_handler)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


broker = current_broker()
broker.add_middleware(WorkerPrometheus())

import backend.jobs.sms  # noqa: E402, F401 - declares the actors
