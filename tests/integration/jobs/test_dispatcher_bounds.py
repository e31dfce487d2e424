"""The dispatcher's catch-up after a broker outage is bounded: a pass publishes a few batches,
refreshing its liveness beat after each, so the worker's liveness probe stays green and the
sweep runs between passes; consecutive passes (without waiting for a NOTIFY) drain the rest."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from backend.commands.models import SmsNotification
from backend.commands.outbox import sms_notifications
from backend.jobs.dispatcher import Dispatcher
from tests.factories import make_customer, make_order

pytestmark = pytest.mark.django_db(transaction=True)
BACKLOG = 40


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        time.sleep(0.02)


def backlog() -> list[int]:
    """Orders placed while the broker was away: their SMS rows wait unpublished."""
    customer = make_customer()
    return [make_order(customer, item="Widget", amount="10.00") for _ in range(BACKLOG)]


def unpublished() -> int:
    return SmsNotification.objects.filter(enqueued_at__isnull=True).count()


def test_a_pass_publishes_a_bounded_number_of_batches_and_beats_after_each(
    stub_broker, settings, monkeypatch
):
    settings.OUTBOX_BATCH_SIZE = 5
    settings.OUTBOX_PASS_MAX_BATCHES = 3
    backlog()
    dispatcher = Dispatcher(stub_broker)
    beats_seen: list[float] = []
    real_publish = dispatcher.publish_sms

    def publish(row_ids: list[int], request_id: str) -> str:
        beats_seen.append(dispatcher.last_beat)
        return real_publish(row_ids, request_id)

    monkeypatch.setattr(dispatcher, "publish_sms", publish)
    swept: list[int] = []
    real_sweep = sms_notifications.republish_lost

    def sweep(**kwargs: object) -> tuple[int, int]:
        swept.append(1)
        return real_sweep(**kwargs)

    monkeypatch.setattr(sms_notifications, "republish_lost", sweep)

    dispatcher.run_once()

    assert unpublished() == BACKLOG - 15  # three batches of five, the rest left for later
    assert dispatcher.backlog
    assert swept, "the sweep ran in the same pass, not after the whole backlog"
    # The beat moved after each batch: the publishes of each batch saw a fresher one.
    assert len(set(beats_seen)) == 3

    for _ in range(BACKLOG):  # bounded: each pass publishes at least one batch
        if not dispatcher.backlog:
            break
        dispatcher.run_once()
    assert unpublished() == 0
    assert not dispatcher.backlog


def test_the_thread_runs_the_next_pass_at_once_while_a_backlog_is_left(stub_broker, settings):
    settings.OUTBOX_BATCH_SIZE = 5
    settings.OUTBOX_PASS_MAX_BATCHES = 1
    settings.OUTBOX_POLL_SECONDS = 60.0  # waiting for the poll between passes would fail this
    backlog()
    dispatcher = Dispatcher(stub_broker)
    dispatcher.start()
    try:
        wait_until(lambda: unpublished() == 0, timeout=20)
    finally:
        dispatcher.stop()
    assert dispatcher.passes >= BACKLOG // 5
