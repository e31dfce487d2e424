"""The webhook defaults meet contract section 9 and fit together (the SMS ones are checked in
test_status_mapping.py)."""

from __future__ import annotations

import itertools

from backend.commands.outbox.webhook_deliveries import retry_delay
from backend.commands.webhook_endpoints import new_secret
from backend.notifications import events
from backend.settings import base


def test_first_retry_comes_within_10_seconds(settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = base.WEBHOOK_RETRY_BASE_SECONDS
    settings.WEBHOOK_RETRY_CAP_SECONDS = base.WEBHOOK_RETRY_CAP_SECONDS
    worst = max(retry_delay(1) for _ in range(500))
    # Due time, then at most one poll before the dispatcher publishes it.
    assert worst + base.OUTBOX_POLL_SECONDS <= 10


def test_backoff_is_exponential_and_capped(settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = base.WEBHOOK_RETRY_BASE_SECONDS
    settings.WEBHOOK_RETRY_CAP_SECONDS = base.WEBHOOK_RETRY_CAP_SECONDS
    lows = [min(retry_delay(n) for _ in range(200)) for n in range(1, 6)]
    assert all(b > a for a, b in itertools.pairwise(lows))
    assert max(retry_delay(40) for _ in range(200)) <= base.WEBHOOK_RETRY_CAP_SECONDS


def test_deadline_and_disable_window_are_the_contracts():
    assert base.WEBHOOK_DEADLINE_SECONDS == 15
    assert base.WEBHOOK_DISABLE_AFTER_SECONDS == 3 * 24 * 3600
    assert base.WEBHOOKS_ALLOW_PRIVATE is False


def test_the_lease_outlasts_an_attempt_and_a_dead_workers_delivery_is_redelivered_in_2_min():
    # The POST, then recording its outcome through the database retries.
    attempt = base.WEBHOOK_DEADLINE_SECONDS + sum(base.OUTBOX_RECORD_RETRY_DELAYS_SECONDS)
    assert attempt < base.WEBHOOK_ACTOR_TIME_LIMIT_SECONDS
    assert base.WEBHOOK_CLAIM_LEASE_SECONDS > base.WEBHOOK_ACTOR_TIME_LIMIT_SECONDS
    # The sweep publishes it again once the lease has ended and the worker's heartbeat is stale.
    grace = base.OUTBOX_REDELIVERY_GRACE_SECONDS
    assert base.WEBHOOK_CLAIM_LEASE_SECONDS + grace / 3 <= 120
    assert base.DRAMATIQ_HEARTBEAT_TIMEOUT_SECONDS + grace + grace / 3 <= 120


def test_secrets_and_ids_have_the_standard_webhooks_shape():
    import base64

    secret = new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert new_secret() != secret
    event_id = events.new_event_id()
    assert event_id.startswith("msg_") and len(event_id) == 36
