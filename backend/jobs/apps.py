"""The `backend.jobs` app: starts the in-process SMS worker for a quick start without Redis."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.signals import request_started

_SERVERS = frozenset({"gunicorn", "uvicorn", "daphne", "hypercorn", "granian", "waitress-serve"})
_SERVING_COMMANDS = frozenset({"runserver", "quickstart"})
_DISPATCH_UID = "duka-start-inprocess-sms-worker"


def serves_http(argv: list[str]) -> bool:
    """True for a web server process: a WSGI/ASGI server, or `manage.py runserver|quickstart`.
    Tests, the dramatiq CLI and every other management command are excluded."""
    if not argv:
        return False
    program = Path(argv[0])
    name = program.parent.name if program.name == "__main__.py" else program.name
    if name in _SERVERS:
        return True
    return name in {"manage.py", "django-admin"} and len(argv) > 1 and argv[1] in _SERVING_COMMANDS


def _start_on_first_request(sender: Any, **kwargs: Any) -> None:
    from backend.jobs.broker import start_inprocess_worker

    request_started.disconnect(dispatch_uid=_DISPATCH_UID)
    start_inprocess_worker()


class JobsConfig(AppConfig):
    name = "backend.jobs"
    label = "jobs"
    verbose_name = "Background jobs"

    def ready(self) -> None:
        # Without REDIS_URL the web process is its own worker. It starts on the first request
        # rather than here: by then migrations have run (quickstart migrates, then serves), and
        # each forked server worker gets its own thread next to its own in-memory broker.
        if settings.REDIS_URL is None and serves_http(sys.argv):
            request_started.connect(_start_on_first_request, dispatch_uid=_DISPATCH_UID)
