"""Gateway status codes and HTTP statuses -> accepted / transient / permanent; retry timing."""

from __future__ import annotations

import itertools

import pytest

from backend.commands.outbox.sms_notifications import retry_delay
from backend.integrations.africastalking import (
    Outcome,
    ReportOutcome,
    classify_http_status,
    classify_report_status,
    classify_status_code,
)
from backend.settings import base


@pytest.mark.parametrize("code", [100, 101, 102])
def test_accepted_codes(code):
    assert classify_status_code(code) is Outcome.ACCEPTED


@pytest.mark.parametrize("code", [401, 405, 500, 501, 502])
def test_transient_codes_are_retried(code):
    assert classify_status_code(code) is Outcome.TRANSIENT


@pytest.mark.parametrize("code", [402, 403, 404, 406, 407, 409])
def test_permanent_codes_fail_at_once(code):
    assert classify_status_code(code) is Outcome.PERMANENT


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        (103, Outcome.ACCEPTED),
        (408, Outcome.PERMANENT),
        (503, Outcome.TRANSIENT),
        (0, Outcome.TRANSIENT),
    ],
)
def test_unknown_codes_fall_back_on_their_class(code, outcome):
    assert classify_status_code(code) is outcome


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.ACCEPTED),
        (201, Outcome.ACCEPTED),
        (500, Outcome.TRANSIENT),
        (502, Outcome.TRANSIENT),
        (503, Outcome.TRANSIENT),
        (429, Outcome.TRANSIENT),
        (401, Outcome.TRANSIENT),
        (400, Outcome.PERMANENT),
        (409, Outcome.PERMANENT),
    ],
)
def test_http_statuses(status, outcome):
    assert classify_http_status(status) is outcome


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("Success", ReportOutcome.DELIVERED),
        ("Failed", ReportOutcome.FAILED),
        ("Rejected", ReportOutcome.FAILED),
        ("Sent", None),
        ("Submitted", None),
        ("Buffered", None),
        ("success", None),
    ],
)
def test_delivery_report_vocabulary(status, outcome):
    assert classify_report_status(status) is outcome


def test_backoff_meets_the_contract_timings(settings):
    settings.SMS_RETRY_BASE_SECONDS = base.SMS_RETRY_BASE_SECONDS
    attempts = base.SMS_MAX_ATTEMPTS
    assert attempts == 10
    for _ in range(200):
        delays = [retry_delay(attempt) for attempt in range(1, attempts)]
        assert delays[0] <= 5.0  # first retry within 5 s
        assert max(delays) <= base.SMS_RETRY_CAP_SECONDS == 300  # capped at 5 min
        assert all(later >= earlier * 0.6 for earlier, later in itertools.pairwise(delays))
        # every attempt fits in the hour, even when each one runs to the gateway deadline
        worst = sum(delays) + attempts * base.SMS_GATEWAY_DEADLINE_SECONDS
        assert worst < base.SMS_RETRY_WINDOW_SECONDS == 3600


def test_lease_and_redelivery_defaults_meet_the_contract_bounds():
    statement = base.DATABASE_STATEMENT_TIMEOUT_MS / 1000
    # An attempt cannot outlive its lease: the actor is interrupted at its time limit, and the
    # only thing the interrupt cannot break is one blocking database statement.
    assert base.SMS_ACTOR_TIME_LIMIT_SECONDS + statement <= base.SMS_CLAIM_LEASE_SECONDS
    # Inside the time limit: the whole gateway call, then every database retry of the record.
    attempt = base.SMS_GATEWAY_DEADLINE_SECONDS + sum(base.OUTBOX_RECORD_RETRY_DELAYS_SECONDS)
    assert attempt + 2 * statement < base.SMS_ACTOR_TIME_LIMIT_SECONDS
    # The deadline covers a connect plus at least one full read timeout.
    assert base.SMS_GATEWAY_DEADLINE_SECONDS > base.SMS_GATEWAY_CONNECT_TIMEOUT_SECONDS + (
        base.SMS_GATEWAY_READ_TIMEOUT_SECONDS
    )
    sweep_gap = base.OUTBOX_REDELIVERY_GRACE_SECONDS + base.OUTBOX_REDELIVERY_GRACE_SECONDS / 3
    # A row whose message was lost is re-sent within 60 s of the broker being reachable.
    assert sweep_gap + base.OUTBOX_BROKER_BACKOFF_MAX_SECONDS <= 60
    # A dead worker's row is redelivered within 2 min: the sweep publishes it again at its first
    # check after the lease has ended and the worker's Dramatiq heartbeat has gone stale (a
    # check just before that defers the next one by the grace).
    sweep_period = base.OUTBOX_REDELIVERY_GRACE_SECONDS / 3
    assert base.SMS_CLAIM_LEASE_SECONDS + sweep_period <= 120
    assert base.DRAMATIQ_HEARTBEAT_TIMEOUT_SECONDS + sweep_gap <= 120
    # A stale idempotency claim is only taken over long after any statement could still run.
    assert 3 * statement <= base.IDEMPOTENCY_STALE_CLAIM_SECONDS
    assert base.DATABASE_LOCK_TIMEOUT_MS <= base.DATABASE_STATEMENT_TIMEOUT_MS
