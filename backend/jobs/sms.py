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
import time
from typing import Literal

import dramatiq
from django.conf import settings
from django.db import InterfaceError, OperationalError

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

    Each acceptance is recorded before the next send starts: a worker killed while a later
    send hangs at the gateway must not leave an accepted SMS unrecorded, to be sent again once
    its lease ends. Claims left when the batch's time is up are given back (`released`)."""
    started = time.monotonic()
    claims = sms_notifications.claim_notifications(ids)
    results: dict[int, Result] = dict.fromkeys(ids, "skipped")
    if claims:
        gateway = gateway or get_gateway()
    budget = _batch_budget()
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
            _record(outcome, results)
        else:
            results[claim.notification_id] = outcome
    return results


def _record(send: sms_notifications.Sent, results: dict[int, Result]) -> None:
    """Record an accepted send (one short transaction, retried on database errors) and log it."""
    [ok] = with_db_retries(lambda: sms_notifications.record_sends([send]), what="an SMS")
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
