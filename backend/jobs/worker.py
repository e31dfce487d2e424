"""Entry module of the `worker` process type: `dramatiq backend.jobs.worker`.

Each Dramatiq worker process imports this module: it points prometheus_client at a per-run
multiprocess directory *before* anything imports it, sets Django up, refuses to start without
REDIS_URL, lowers its CPU priority below the web's (WORKER_NICENESS), enables Sentry's Dramatiq
integration before the broker exists, adds the Prometheus middleware (only here: it needs the
CLI's process_boot hook), and declares the actors.
Metrics are served on `:$METRICS_PORT/metrics`, and liveness on `:$METRICS_PORT/healthz`, by a
process the CLI forks (`serve_metrics`). Booting each worker starts its outbox dispatcher.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from backend.observability.rundir import run_directory  # imports no prometheus_client

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings.base")

# One directory per `dramatiq` run (see run_directory); the root is `dramatiq_prom_db` when set.
_METRICS_ROOT = os.environ.get("dramatiq_prom_db") or os.path.join(  # noqa: SIM112 - Dramatiq's
    tempfile.gettempdir(), "duka-worker-metrics"
)
_METRICS_DIR = str(run_directory(Path(_METRICS_ROOT), os.getppid()))
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

from backend.observability.sentry import init_sentry  # noqa: E402

# Already done by the app's ready() in django.setup(); repeated here (a no-op then) to make the
# order explicit: Sentry's Dramatiq integration patches Broker.__init__, so it must precede it.
init_sentry()

from backend.jobs.priority import yield_cpu  # noqa: E402

# Before the dispatcher and the actors' threads start: they inherit nothing from a later call.
if _lowered := yield_cpu(settings.WORKER_NICENESS):
    print(f"worker: CPU priority lowered ({', '.join(_lowered)})", file=sys.stderr, flush=True)

from dramatiq import Broker  # noqa: E402
from dramatiq.middleware.prometheus import Prometheus, _metrics_handler  # noqa: E402

from backend.jobs.broker import current_broker  # noqa: E402


class WorkerPrometheus(Prometheus):
    """Dramatiq's Prometheus middleware, with the exposition server on settings.METRICS_PORT
    and message durations in seconds (`dramatiq_message_duration_seconds`)."""

    @property
    def forks(self) -> list[Callable[[], int]]:
        return [serve_metrics]

    def after_process_boot(self, broker: Broker) -> None:
        super().after_process_boot(broker)
        from backend.jobs.metrics import MessageDurationSeconds

        self.message_durations = MessageDurationSeconds()


class _Exposition(_metrics_handler):
    """Dramatiq's metrics handler, plus `GET /healthz`: 200 while every worker process of this
    run has a fresh heartbeat (consumers, worker threads and dispatcher alive), else 503."""

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] != "/healthz":
            super().do_GET()
            return
        from backend.jobs.liveness import check

        healthy, ages = check(Path(_METRICS_DIR))
        body = json.dumps({"status": "ok" if healthy else "unhealthy", "heartbeats": ages})
        self.send_response(200 if healthy else 503)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())


def serve_metrics() -> int:
    """Runs in a process forked by the dramatiq CLI: serves every worker process's metrics."""
    from http.server import HTTPServer

    host = os.environ.get("dramatiq_prom_host", "0.0.0.0")  # noqa: S104, SIM112 - Dramatiq's variable
    server = HTTPServer((host, settings.METRICS_PORT), _Exposition)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


broker = current_broker()
broker.add_middleware(WorkerPrometheus())

import backend.jobs.sms  # noqa: E402, F401 - declares the actors
from backend.jobs import webhook_delivery  # noqa: E402, F401 - declares the webhook actor
