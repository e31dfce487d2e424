"""Gateway status codes and HTTP statuses -> accepted / transient / permanent; retry timing."""

from __future__ import annotations

import itertools

import pytest

from backend.commands.sms import MAX_ATTEMPTS, RETRY_CAP_SECONDS, RETRY_WINDOW, retry_delay
from backend.integrations.africastalking import Outcome, classify_http_status, classify_status_code


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


def test_backoff_meets_the_contract_timings(settings):
    settings.SMS_RETRY_BASE_SECONDS = 2.0
    for _ in range(200):
        delays = [retry_delay(attempt) for attempt in range(1, MAX_ATTEMPTS)]
        assert delays[0] <= 5.0  # first retry within 5 s
        assert max(delays) <= RETRY_CAP_SECONDS  # capped at 5 min
        assert all(later >= earlier * 0.6 for earlier, later in itertools.pairwise(delays))
        # every attempt fits in the hour, even allowing 15 s per gateway call
        assert sum(delays) + MAX_ATTEMPTS * 15 < RETRY_WINDOW.total_seconds()


def test_relay_and_lease_defaults_meet_the_contract_bounds():
    from backend.commands.sms import CLAIM_LEASE_SECONDS, RELAY_GRACE_SECONDS
    from backend.integrations.africastalking import CONNECT_TIMEOUT_S, READ_TIMEOUT_S
    from backend.jobs.broker import HEARTBEAT_TIMEOUT_SECONDS
    from backend.jobs.middleware import RELAY_INTERVAL_SECONDS

    longest_pass_gap = RELAY_INTERVAL_SECONDS * 1.2  # jittered interval
    # a pending row is re-sent within 60 s of the broker being reachable again
    assert RELAY_GRACE_SECONDS + longest_pass_gap <= 60
    # a claim outlives the slowest gateway call, so a live sender is never raced
    assert CLAIM_LEASE_SECONDS > CONNECT_TIMEOUT_S + READ_TIMEOUT_S + 10
    # a dead worker's row is redelivered within 2 min (relay after the lease ends)
    assert CLAIM_LEASE_SECONDS + longest_pass_gap <= 120
    # Dramatiq's own redelivery arrives after the lease has ended, so it can send
    assert HEARTBEAT_TIMEOUT_SECONDS > CLAIM_LEASE_SECONDS
