"""Dramatiq middleware: Django database hygiene and the outbox relay that runs inside workers."""

from __future__ import annotations

import logging
import random
import threading
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection
from dramatiq import Broker, Middleware, Worker
from dramatiq.message import Message

logger = logging.getLogger(__name__)

RELAY_INTERVAL_SECONDS = 10.0


class DbConnections(Middleware):
    """Close stale or broken database connections around every message, as Django does around
    every request; worker threads live for days and would otherwise keep dead connections."""

    def before_process_message(self, broker: Broker, message: Message) -> None:
        close_old_connections()

    def after_process_message(
        self,
        broker: Broker,
        message: Message,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        close_old_connections()

    after_skip_message = after_process_message

    def before_worker_thread_shutdown(self, broker: Broker, thread: threading.Thread) -> None:
        connection.close()


class OutboxRelay(Middleware):
    """Runs `relay_pending` every few seconds in a thread of each booted worker.

    The relay finds outbox rows whose message never reached a worker (broker down at commit
    time, message lost, worker killed) and enqueues them again. Any number of worker processes
    may run it at once (see `backend.commands.sms.relay_pending`)."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def after_worker_boot(self, broker: Broker, worker: Worker) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="outbox-relay", daemon=True)
        self._thread.start()

    def before_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        interval = float(getattr(settings, "SMS_RELAY_INTERVAL_SECONDS", RELAY_INTERVAL_SECONDS))
        try:
            # Jitter keeps replicas that booted together from sweeping in lockstep.
            while not self._stop.wait(interval * random.uniform(0.8, 1.2)):  # noqa: S311 - not crypto
                sweep()
        finally:
            connection.close()


def sweep() -> int:
    """One relay pass; never raises (a down database or broker is retried next pass)."""
    from backend.commands.sms import relay_pending
    from backend.jobs.sms import send_notification

    close_old_connections()
    try:
        return relay_pending(enqueue=send_notification.send)
    except Exception as exc:
        logger.warning(
            "Outbox relay pass failed, retrying next pass: %s: %s", type(exc).__name__, exc
        )
        return 0
    finally:
        close_old_connections()
