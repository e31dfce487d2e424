"""Dramatiq middleware: Django database hygiene, and the outbox dispatcher (with the liveness
heartbeat) that runs inside every booted worker."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection
from dramatiq import Broker, Middleware, Worker
from dramatiq.message import Message

from backend.jobs.dispatcher import Dispatcher
from backend.jobs.liveness import Heartbeat, heartbeat_dir, worker_alive

logger = logging.getLogger(__name__)


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


class OutboxDispatch(Middleware):
    """Starts the outbox dispatcher (and, in a `dramatiq` CLI run, the liveness heartbeat) when
    a worker boots on this broker, and stops them before it shuts down."""

    def __init__(self) -> None:
        self.dispatcher: Dispatcher | None = None
        self._heartbeat: Heartbeat | None = None

    def after_worker_boot(self, broker: Broker, worker: Worker) -> None:
        self.dispatcher = Dispatcher(broker)
        self.dispatcher.start()
        directory = heartbeat_dir()
        if directory is not None:
            dispatcher = self.dispatcher
            max_age = float(settings.WORKER_HEARTBEAT_MAX_AGE_SECONDS)

            def healthy() -> bool:
                fresh = time.monotonic() - dispatcher.last_beat < max_age
                return worker_alive(worker) and dispatcher.alive and fresh

            self._heartbeat = Heartbeat(directory, healthy)
            self._heartbeat.start()

    def before_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        if self._heartbeat is not None:
            self._heartbeat.stop()
            self._heartbeat = None
        if self.dispatcher is not None:
            self.dispatcher.stop()
            self.dispatcher = None
