"""SMS actor: send a message's outbox rows through the gateway and record the outcomes.

The dispatcher publishes `send_sms_notification([row ids])` for due rows. At-least-once
delivery from the broker is made at-most-once-per-acceptance by the claim in
`backend.commands.outbox.sms_notifications`: a redelivered or duplicated message finds the row
sent, failed, not yet due or claimed by someone else, and does nothing. A failed attempt
schedules the next one in the row (`next_attempt_at`); the dispatcher publishes it when due, so
this actor never enqueues anything.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from typing import Literal

import dramatiq
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

import backend.jobs.broker  # noqa: F401 - sets the global broker before the actor binds to it
from backend.commands.outbox import sms_notifications
from backend.integrations.africastalking import (
    PermanentSmsError,
    SmsError,
    SmsGateway,
    TransientSmsError,
    get_gateway,
)
from backend.jobs.dispatcher import SMS_ACTOR, SMS_QUEUE
from backend.jobs.metrics import SMS_NOTIFICATIONS, SMS_SEND_SECONDS
from backend.jobs.recording import with_db_retries
from backend.observability.context import bind_request_id, unbind_request_id
from backend.observability.jobs import set_job_outcome

logger = logging.getLogger(__name__)

Result = Literal["sent", "retry", "failed", "skipped", "stale", "released"]


def deliver(notification_id: int, *, gateway: SmsGateway | None = None) -> Result:
    """One delivery attempt for one notification; returns what happened."""
    return deliver_many([notification_id], gateway=gateway)[notification_id]


def _batch_budget() -> float:
    """Seconds into a batch after which no new attempt starts: the last one (its gateway
    deadline and the outcome's recording retries) must end inside the actor's time limit, which
    the claim leases are sized from."""
    worst_attempt = float(settings.SMS_GATEWAY_DEADLINE_SECONDS) + sum(
        settings.OUTBOX_RECORD_RETRY_DELAYS_SECONDS
    )
    return float(settings.SMS_ACTOR_TIME_LIMIT_SECONDS) - worst_attempt - 5.0


def deliver_many(ids: list[int], *, gateway: SmsGateway | None = None) -> dict[int, Result]:
    """One attempt for each due notification of `ids` (claimed in one statement), one after
    the other on this thread's keep-alive connection; returns what happened to each.

    Each acceptance goes to this process's recorder (`SendRecorder`), which records it within
    SMS_RECORD_WINDOW_SECONDS whatever the next send does; the batch returns once all of its
    acceptances are recorded. Claims left when the batch's time is up are given back."""
    started = time.monotonic()
    claims = sms_notifications.claim_notifications(ids)
    results: dict[int, Result] = dict.fromkeys(ids, "skipped")
    if claims:
        gateway = gateway or get_gateway()
    budget = _batch_budget()
    recording: list[tuple[sms_notifications.Sent, Future[bool]]] = []
    try:
        for n, claim in enumerate(claims):
            if n and time.monotonic() - started > budget:
                sms_notifications.release_claims(claims[n:])
                logger.warning(
                    "SMS batch out of time after %d of %d attempts; %d given back",
                    n,
                    len(claims),
                    len(claims) - n,
                )
                results.update(dict.fromkeys((c.notification_id for c in claims[n:]), "released"))
                break
            # Each SMS logs with its own order's request id (the message carries its first row's).
            token = bind_request_id(claim.request_id or None)
            try:
                outcome = _attempt(claim, gateway)
            finally:
                unbind_request_id(token)
            if isinstance(outcome, sms_notifications.Sent):
                recording.append((outcome, RECORDER.record(outcome)))
            else:
                results[claim.notification_id] = outcome
    finally:
        # Also when interrupted: the recorder records what AT accepted either way.
        for send, future in recording:
            _recorded(send, future.result(timeout=RECORDER.longest_wait()), results)
    return results


def _recorded(send: sms_notifications.Sent, ok: bool, results: dict[int, Result]) -> None:
    claim = send.claim
    results[claim.notification_id] = "sent" if ok else "stale"
    if ok:
        SMS_NOTIFICATIONS.labels(status="sent").inc()
        token = bind_request_id(claim.request_id or None)
        try:
            logger.info(
                "SMS notification %s sent (gateway message %s)",
                claim.notification_id,
                send.message_id,
            )
        finally:
            unbind_request_id(token)


class SendRecorder:
    """Records the sends the gateway accepted, for every worker thread of this process together
    (one transaction for all accepted within SMS_RECORD_WINDOW_SECONDS of the first).

    An acceptance is recorded within that window whatever its thread does next: a worker killed
    while a later send hangs at the gateway leaves no accepted SMS unrecorded for longer, which
    would be sent again once its lease ends. The thread starts with the first send and closes
    its database connection when idle for IDLE_SECONDS (or on `stop()`)."""

    IDLE_SECONDS = 5.0

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[sms_notifications.Sent, Future[bool]] | None] = (
            queue.SimpleQueue()
        )
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def record(self, send: sms_notifications.Sent) -> Future[bool]:
        """A future of whether the row was still `pending` (False: a duplicate acceptance)."""
        future: Future[bool] = Future()
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="sms-recorder", daemon=True)
                self._thread.start()
            self._queue.put((send, future))
        return future

    def longest_wait(self) -> float:
        """Bound on a future's wait: the window and every recording retry, with a margin."""
        return (
            float(settings.SMS_RECORD_WINDOW_SECONDS)
            + sum(settings.OUTBOX_RECORD_RETRY_DELAYS_SECONDS)
            + float(settings.SMS_GATEWAY_DEADLINE_SECONDS)
        )

    def stop(self) -> None:
        """Record what is queued, close the connection and end the thread (tests, shutdown)."""
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is not None:
                self._queue.put(None)
        if thread is not None:
            thread.join(self.longest_wait())

    def _run(self) -> None:
        try:
            while True:
                try:
                    first = self._queue.get(timeout=self.IDLE_SECONDS)
                except queue.Empty:
                    connection.close()  # idle: no connection held open for nothing
                    continue
                if first is None:
                    return
                batch, stop = self._gather(first)
                self._write(batch)
                if stop:
                    return
        finally:
            connection.close()

    def _gather(
        self, first: tuple[sms_notifications.Sent, Future[bool]]
    ) -> tuple[list[tuple[sms_notifications.Sent, Future[bool]]], bool]:
        batch = [first]
        deadline = time.monotonic() + float(settings.SMS_RECORD_WINDOW_SECONDS)
        while (left := deadline - time.monotonic()) > 0:
            try:
                item = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _write(self, batch: list[tuple[sms_notifications.Sent, Future[bool]]]) -> None:
        sends = [send for send, _ in batch]
        try:
            recorded = with_db_retries(lambda: sms_notifications.record_sends(sends), what="an SMS")
        except Exception as exc:  # the batches' actors see it; the rows keep their claims
            for _, future in batch:
                future.set_exception(exc)
            return
        for (_, future), ok in zip(batch, recorded, strict=True):
            future.set_result(ok)


RECORDER = SendRecorder()


def _attempt(
    claim: sms_notifications.Claim, gateway: SmsGateway
) -> Result | sms_notifications.Sent:
    """One gateway call; a failure is recorded here, an acceptance returned for `_record`."""
    notification_id = claim.notification_id
    started = time.monotonic()
    try:
        accepted = gateway.send(to=claim.recipient, message=claim.text)
    except Exception as exc:
        SMS_SEND_SECONDS.observe(time.monotonic() - started)
        permanent = isinstance(exc, PermanentSmsError)
        if not isinstance(exc, PermanentSmsError | TransientSmsError):
            # A bug or an unforeseen library error: retried like a transient one (bounded).
            logger.exception("Unexpected error sending SMS notification %s", notification_id)
        error = str(exc) or type(exc).__name__
        reason = exc.reason if isinstance(exc, SmsError) else "InternalError"
        outcome = with_db_retries(
            lambda: sms_notifications.record_failure(
                claim, error=error, reason=reason, permanent=permanent
            ),
            what="an SMS",
        )
        if outcome.kind == "stale":
            return "stale"
        SMS_NOTIFICATIONS.labels(status=outcome.kind).inc()
        if outcome.kind == "failed":
            logger.warning(
                "SMS notification %s failed after attempt %d: %s",
                notification_id,
                claim.attempt,
                error,
            )
            return "failed"
        logger.info(
            "SMS notification %s attempt %d failed (%s); retrying in %.1fs",
            notification_id,
            claim.attempt,
            error,
            outcome.retry_in,
        )
        return "retry"
    SMS_SEND_SECONDS.observe(time.monotonic() - started)
    return sms_notifications.Sent(claim=claim, message_id=accepted.message_id, cost=accepted.cost)


@dramatiq.actor(
    queue_name=SMS_QUEUE,
    actor_name=SMS_ACTOR,
    # The outbox owns retries (its backoff and budget) and redelivery (the dispatcher), so a
    # message that fails is not retried by Dramatiq as well.
    max_retries=0,
    time_limit=int(1000 * float(settings.SMS_ACTOR_TIME_LIMIT_SECONDS)),
)
def send_notification(notification_ids: int | list[int]) -> None:
    """A message carries one row id (messages published before batching) or a list of them."""
    ids = [notification_ids] if isinstance(notification_ids, int) else list(notification_ids)
    try:
        outcomes = list(dict.fromkeys(deliver_many(ids).values()))
    except (OperationalError, InterfaceError) as exc:
        # The rows are untouched or still claimed: the dispatcher's sweep publishes them again.
        logger.warning("SMS notifications %s not attempted, database error: %s", ids, exc)
        outcomes = ["error"]
    # The job's log line (backend.observability.jobs.JobLog): one word, or each one that occurred.
    set_job_outcome(",".join(outcomes))
