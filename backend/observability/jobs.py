"""Dramatiq side of the request id: one JSON log line per job, under the id of the request
that queued it.

The id travels in the message's options (`request_id`), set at enqueue with `job_options()`;
Dramatiq keeps options across its own retries, and our delayed re-sends copy it forward.
"""

from __future__ import annotations

import logging
import threading
import time
from contextvars import Token
from typing import Any

from dramatiq import Broker, Middleware
from dramatiq.message import Message

from backend.observability.context import (
    bind_request_id,
    current_request_id,
    unbind_request_id,
)

logger = logging.getLogger("duka.job")

REQUEST_ID_OPTION = "request_id"
_outcome = threading.local()


def set_job_outcome(outcome: str) -> None:
    """What the running job achieved, for its log line (actors return None: Dramatiq warns
    about actors that return values without a result backend)."""
    _outcome.value = outcome


def job_options() -> dict[str, str]:
    """Message options carrying the current request id (none outside a request or job)."""
    request_id = current_request_id()
    return {REQUEST_ID_OPTION: request_id} if request_id else {}


class JobLog(Middleware):
    """Binds the message's request id while the actor runs (so the actor's own log lines carry
    it) and logs one line per processed message: actor, queue, message id, outcome, duration,
    retries and request id. The outcome is what the actor passed to `set_job_outcome` (the SMS
    actor: sent, retry, failed, skipped, stale), else `ok`, `error` or `skipped`."""

    def __init__(self) -> None:
        self._local = threading.local()

    def _stack(self) -> list[tuple[str, Token[str | None], float]]:
        stack = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        return stack

    def before_process_message(self, broker: Broker, message: Message) -> None:
        _outcome.value = None
        token = bind_request_id(message.options.get(REQUEST_ID_OPTION))
        self._stack().append((message.message_id, token, time.perf_counter()))

    def after_process_message(
        self,
        broker: Broker,
        message: Message,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        chosen = getattr(_outcome, "value", None)
        _outcome.value = None
        if exception is not None:
            outcome = "error"
        elif isinstance(chosen, str):
            outcome = chosen
        else:
            outcome = "ok"
        self._finish(message, outcome, exception)

    def after_skip_message(self, broker: Broker, message: Message) -> None:
        self._finish(message, "skipped", None)

    def _finish(self, message: Message, outcome: str, exception: BaseException | None) -> None:
        stack = self._stack()
        entry = next((e for e in reversed(stack) if e[0] == message.message_id), None)
        started = entry[2] if entry is not None else time.perf_counter()
        try:
            duration_ms = round((time.perf_counter() - started) * 1000, 1)
            fields: dict[str, Any] = {
                "event": "job",
                "actor": message.actor_name,
                "queue": message.queue_name,
                "message_id": message.message_id,
                "outcome": outcome,
                "duration_ms": duration_ms,
                "retries": message.options.get("retries", 0),
            }
            if exception is not None:
                fields["error_type"] = type(exception).__name__
            logger.log(
                logging.WARNING if exception is not None else logging.INFO,
                "job %s %s %s %.1fms",
                message.actor_name,
                message.message_id,
                outcome,
                duration_ms,
                extra=fields,
            )
        finally:
            if entry is not None:
                stack.remove(entry)
                unbind_request_id(entry[1])
