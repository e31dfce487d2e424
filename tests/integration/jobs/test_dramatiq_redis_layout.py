"""Contract with Dramatiq's Redis key layout, on the real Redis.

The outbox dispatcher (backend/jobs/dispatcher.py) reads the layout directly, which Dramatiq
does not document: `{ns}:{queue}` and `{ns}:{queue}.DQ` are lists of waiting and delayed
message ids (queue depth, SMS waiting), and `{ns}:{queue}.msgs` / `{ns}:{queue}.DQ.msgs` hash
each message it still holds (waiting, delayed or being worked on) by its `redis_message_id`
(the lost-message sweep), `{ns}:__acks__.{worker}.{queue}` holds the ids a worker (its broker's
`broker_id`) fetched and has not acked, and `{ns}:__heartbeats__` scores each worker by the time
(ms) of its last command, which the sweep compares with the broker's `heartbeat_timeout` to tell
a killed worker's messages from a live one's. A failure here means Dramatiq changed that layout: fix the dispatcher
and the `dramatiq<3` bound in pyproject.toml.

Deliberately without the `redis` marker or the skipping `redis_url` fixture: CI starts Redis
(.ci/run), and this test must fail rather than skip when it cannot reach it.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker

QUEUE = "layout"


@pytest.fixture
def broker() -> Iterator[RedisBroker]:
    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    namespace = f"duka-layout-{uuid.uuid4().hex[:12]}"
    broker = RedisBroker(url=url, namespace=namespace)
    broker.declare_queue(QUEUE)
    try:
        yield broker
    finally:
        client: redis.Redis = broker.client
        keys = list(client.scan_iter(match=f"{namespace}:*", count=500))
        if keys:
            client.delete(*keys)
        broker.close()


def _message() -> Message:
    return Message(queue_name=QUEUE, actor_name="noop", args=(), kwargs={}, options={})


def test_waiting_and_worked_on_messages_are_where_the_dispatcher_looks(broker):
    client, ns = broker.client, broker.namespace
    enqueued = broker.enqueue(_message())
    message_id = enqueued.options["redis_message_id"]

    assert client.type(f"{ns}:{QUEUE}") == b"list"
    assert client.llen(f"{ns}:{QUEUE}") == 1
    assert client.hexists(f"{ns}:{QUEUE}.msgs", message_id)

    consumer = broker.consume(QUEUE, prefetch=1, timeout=1000)
    try:
        fetched = next(message for message in consumer if message is not None)
        assert fetched.options["redis_message_id"] == message_id
        # Being worked on: out of the waiting list, still in the hash until acked.
        assert client.llen(f"{ns}:{QUEUE}") == 0
        assert client.hexists(f"{ns}:{QUEUE}.msgs", message_id)
        consumer.ack(fetched)
        assert not client.hexists(f"{ns}:{QUEUE}.msgs", message_id)
    finally:
        consumer.close()


def test_a_fetched_message_is_held_by_its_worker_which_beats_at_every_command(broker):
    client, ns = broker.client, broker.namespace
    message_id = broker.enqueue(_message()).options["redis_message_id"]
    acks = f"{ns}:__acks__.{broker.broker_id}.{QUEUE}"

    consumer = broker.consume(QUEUE, prefetch=1, timeout=1000)
    try:
        before = time.time() * 1000
        fetched = next(message for message in consumer if message is not None)
        assert fetched.options["redis_message_id"] == message_id
        assert client.type(acks) == b"set"
        assert client.smembers(acks) == {message_id.encode()}
        assert client.type(f"{ns}:__heartbeats__") == b"zset"
        beat = client.zscore(f"{ns}:__heartbeats__", broker.broker_id)
        assert beat is not None
        assert before - 1000 <= beat <= time.time() * 1000 + 1000  # milliseconds since the epoch
        assert broker.heartbeat_timeout == 60_000  # milliseconds, as the sweep compares them
        consumer.ack(fetched)
        assert not client.exists(acks)
    finally:
        consumer.close()


def test_delayed_messages_are_where_the_dispatcher_looks(broker):
    client, ns = broker.client, broker.namespace
    enqueued = broker.enqueue(_message(), delay=60_000)
    message_id = enqueued.options["redis_message_id"]

    assert client.type(f"{ns}:{QUEUE}.DQ") == b"list"
    assert client.llen(f"{ns}:{QUEUE}.DQ") == 1
    assert client.hexists(f"{ns}:{QUEUE}.DQ.msgs", message_id)
    assert client.llen(f"{ns}:{QUEUE}") == 0
    assert not client.hexists(f"{ns}:{QUEUE}.msgs", message_id)
