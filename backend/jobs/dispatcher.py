"""The outbox dispatcher: the only code that publishes to the broker.

A thread in every worker process (and, in the quick start, in the web process next to its
in-process worker). It publishes every due outbox row as a Dramatiq message, named by actor,
and records when it did (`enqueued_at`):

* woken within milliseconds of a commit by PostgreSQL `LISTEN/NOTIFY` (a trigger notifies when
  an outbox row is written), with a short poll as the fallback;
* several dispatchers share the rows with `FOR UPDATE SKIP LOCKED`;
* a row published more than the redelivery grace ago that is still due is checked against the
  broker, and published again only when the broker no longer holds its message for a live
  worker (a killed worker's message is published again once its Dramatiq heartbeat is stale);
* while the broker fails it backs off (up to OUTBOX_BROKER_BACKOFF_MAX_SECONDS), so a dead or
  silent broker costs one bounded call per pause, never a request's time;
* a pass is bounded (OUTBOX_PASS_MAX_BATCHES batches per channel, the liveness beat refreshed
  after each): a backlog after a broker outage goes out over consecutive passes, with the
  sweep between them, and the worker's liveness probe stays green meanwhile;
* it exports the broker's queue depth, and starts the housekeeping in a thread of its own
  (backend.jobs.housekeeping: batched deletes that never hold up publishing);
* with a read replica configured, it commits the replica heartbeat every second
  (backend.replicas.routing.heartbeat), so replica lag is not overstated after a quiet spell.

Web requests never touch the broker: a command writes the outbox row and returns.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import psycopg
from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone
from dramatiq import Broker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.message import Message

from backend.commands.outbox import core, sms_notifications, webhook_deliveries
from backend.jobs import housekeeping
from backend.jobs.background import BackgroundLoop
from backend.jobs.metrics import QUEUE_DEPTH, WEBHOOK_PENDING
from backend.observability.jobs import REQUEST_ID_OPTION
from backend.replicas import routing

logger = logging.getLogger(__name__)

CHANNEL = "duka_outbox"
SMS_QUEUE = "sms"
SMS_ACTOR = "send_sms_notification"
WEBHOOK_QUEUE = "webhooks"
WEBHOOK_ACTOR = "deliver_webhook"


def _setting(name: str) -> float:
    return float(getattr(settings, name))


def _drain(
    publish_due: Callable[[], int], limit: int, max_batches: int, beat: Callable[[], None]
) -> tuple[int, bool]:
    """Call `publish_due` until a call publishes less than a full batch, at most `max_batches`
    times, calling `beat` after each; returns (the total, whether rows may be left)."""
    total = 0
    for _ in range(max_batches):
        batch = publish_due()
        total += batch
        beat()
        if batch < limit:
            return total, False
    return total, True


def _drain_lost(
    republish_lost: Callable[[], tuple[int, int]],
    limit: int,
    max_batches: int,
    beat: Callable[[], None],
) -> tuple[int, bool]:
    """Call `republish_lost` until a call checks less than a full batch, at most `max_batches`
    times, calling `beat` after each; returns (how many messages were published again, whether
    rows may be left to check)."""
    total = 0
    for _ in range(max_batches):
        checked, lost = republish_lost()
        total += lost
        beat()
        if checked < limit:
            return total, False
    return total, True


class Listener:
    """A dedicated autocommit connection LISTENing on the outbox channel: to
    `DATABASE_LISTEN_URL` when set (behind a transaction-pooling pgbouncer), else to the
    default database."""

    def __init__(self) -> None:
        self._conn: psycopg.Connection | None = None

    def _connect(self) -> psycopg.Connection:
        if settings.DATABASE_LISTEN_URL:
            conn = psycopg.connect(settings.DATABASE_LISTEN_URL, autocommit=True, connect_timeout=5)
        else:
            params = dict(connection.get_connection_params())
            for key in ("cursor_factory", "context", "prepare_threshold"):
                params.pop(key, None)
            conn = psycopg.connect(**params, autocommit=True)
        conn.execute(f"LISTEN {CHANNEL}")
        return conn

    def wait(self, timeout: float, stop: threading.Event, *, coalesce: float = 0.0) -> bool:
        """Block up to `timeout` s for a notification; True when one arrived. Then keep taking
        the notifications of the next `coalesce` s, so that one pass publishes the rows of many
        commits instead of one pass per commit (each pass is several round trips)."""
        if self._conn is None or self._conn.closed:
            try:
                self._conn = self._connect()
            except psycopg.Error as exc:
                logger.warning("Outbox dispatcher cannot LISTEN (%s); polling instead", exc)
                stop.wait(timeout)
                return False
            return True  # a commit may have slipped in while not listening
        try:
            # Short slices, so a stop request is seen promptly.
            deadline = time.monotonic() + timeout
            while not stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                if list(self._conn.notifies(timeout=min(left, 0.5), stop_after=1)):
                    if coalesce > 0:  # the first generator is finished: one at a time per conn
                        for _ in self._conn.notifies(timeout=coalesce):
                            pass
                    return True
        except psycopg.Error as exc:
            logger.warning("Outbox dispatcher lost its LISTEN connection (%s)", exc)
            self.close()
        return False

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None


class Dispatcher(BackgroundLoop):
    """Publishes due outbox rows to `broker`. `run_once` is one pass (tests call it directly);
    `start` runs passes in a daemon thread until `stop`."""

    thread_name = "outbox-dispatcher"

    def __init__(self, broker: Broker) -> None:
        super().__init__()
        self.broker = broker
        self.started_at = timezone.now()
        self._failures = 0
        self._next_sweep = 0.0
        self._next_pending_sample = 0.0
        self.last_beat = time.monotonic()
        self.passes = 0
        self.backlog = False  # the last pass stopped at its bound: the next one follows at once
        self.housekeeper = housekeeping.Housekeeper()
        self._next_replica_heartbeat = 0.0

    # --- publishing ----------------------------------------------------------------------------

    def publish_sms(self, row_ids: list[int], request_id: str) -> str:
        """One message for a group of rows (`sms_notifications.sms_per_message` sizes it)."""
        return self._publish(SMS_QUEUE, SMS_ACTOR, (list(row_ids),), request_id)

    def publish_webhook(self, row_ids: list[int], request_id: str) -> str:
        """One message per delivery (the webhook channel publishes one row per message)."""
        [row_id] = row_ids
        return self._publish(WEBHOOK_QUEUE, WEBHOOK_ACTOR, (row_id,), request_id)

    def _publish(self, queue: str, actor: str, args: tuple[object, ...], request_id: str) -> str:
        """Enqueue one message by actor name; returns its id in the broker."""
        options = {REQUEST_ID_OPTION: request_id} if request_id else {}
        message = Message(queue_name=queue, actor_name=actor, args=args, kwargs={}, options=options)
        enqueued = self.broker.enqueue(message)
        return str(enqueued.options.get("redis_message_id") or enqueued.message_id)

    def still_queued(
        self, messages: list[tuple[str, datetime]], queue: str = SMS_QUEUE
    ) -> set[str]:
        """Which of these messages the broker still holds for a live worker: waiting, delayed,
        or fetched by a worker whose Dramatiq heartbeat is fresh. A message fetched by a worker
        that stopped beating (SIGKILL mid-send) counts as lost: Dramatiq would requeue it only
        in its randomly scheduled maintenance, so the sweep publishes the row again (if that
        maintenance requeues the old message later, its actor finds the row sent or claimed
        and does nothing)."""
        if isinstance(self.broker, RedisBroker):
            return self._still_queued_in_redis([message_id for message_id, _ in messages], queue)
        # An in-memory broker cannot be asked; its messages die with this process.
        window = timedelta(seconds=_setting("OUTBOX_REDELIVERY_WINDOW_SECONDS"))
        cutoff = max(self.started_at, timezone.now() - window)
        return {message_id for message_id, at in messages if at >= cutoff}

    def _still_queued_in_redis(self, ids: list[str], queue: str) -> set[str]:
        """Dramatiq's Redis layout (dramatiq/brokers/redis/dispatch.lua; pinned by
        tests/integration/jobs/test_dramatiq_redis_layout.py): `{ns}:{queue}.msgs` and
        `{ns}:{queue}.DQ.msgs` hash every message not yet acked, `{ns}:__heartbeats__` scores
        each worker by its last command (ms), `{ns}:__acks__.{worker}.{queue}` holds what that
        worker fetched and has not acked."""
        assert isinstance(self.broker, RedisBroker)
        ns, client = self.broker.namespace, self.broker.client
        now_ms = int(time.time() * 1000)
        dead = client.zrangebyscore(
            f"{ns}:__heartbeats__", 0, now_ms - int(self.broker.heartbeat_timeout)
        )
        pipe = client.pipeline(transaction=True)  # one snapshot
        for message_id in ids:
            pipe.hexists(f"{ns}:{queue}.msgs", message_id)
            pipe.hexists(f"{ns}:{queue}.DQ.msgs", message_id)
        for worker in dead:
            worker_id = worker.decode()
            pipe.smembers(f"{ns}:__acks__.{worker_id}.{queue}")
            pipe.smembers(f"{ns}:__acks__.{worker_id}.{queue}.DQ")
        found = pipe.execute()
        held_by_dead = {m.decode() for members in found[2 * len(ids) :] for m in members}
        held = {message_id for i, message_id in enumerate(ids) if found[2 * i] or found[2 * i + 1]}
        if held & held_by_dead:
            logger.warning(
                "Outbox: %d %s message(s) held by a worker that stopped beating (killed?); "
                "publishing again",
                len(held & held_by_dead),
                queue,
            )
        return held - held_by_dead

    def beat(self) -> None:
        """The dispatcher is making progress: its liveness heartbeat (backend.jobs.middleware)
        stays fresh. Called at every pass and after every batch within one."""
        self.last_beat = time.monotonic()

    def run_once(self) -> int:
        """One bounded pass: publish what is due, at most OUTBOX_PASS_MAX_BATCHES batches per
        channel, and sweep for lost messages when it is time (as bounded). `backlog` then says
        whether rows may be left for the next pass. Returns how many messages were published.
        Raises on broker or database errors."""
        limit = int(settings.OUTBOX_BATCH_SIZE)
        batches = max(1, int(settings.OUTBOX_PASS_MAX_BATCHES))
        waiting = self.sms_waiting()
        published, sms_left = _drain(
            lambda: sms_notifications.publish_due(
                publish=self.publish_sms, limit=limit, waiting=waiting
            ),
            limit,
            batches,
            self.beat,
        )
        more, webhooks_left = _drain(
            lambda: webhook_deliveries.publish_due(publish=self.publish_webhook, limit=limit),
            limit,
            batches,
            self.beat,
        )
        published += more
        self.backlog = sms_left or webhooks_left
        now = time.monotonic()
        if now >= self._next_sweep:
            more, sms_left = _drain_lost(
                lambda: sms_notifications.republish_lost(
                    publish=self.publish_sms, still_queued=self.still_queued, limit=limit
                ),
                limit,
                batches,
                self.beat,
            )
            published += more
            more, webhooks_left = _drain_lost(
                lambda: webhook_deliveries.republish_lost(
                    publish=self.publish_webhook,
                    still_queued=lambda messages: self.still_queued(messages, WEBHOOK_QUEUE),
                    limit=limit,
                ),
                limit,
                batches,
                self.beat,
            )
            published += more
            # A sweep cut short by its bound goes on at the next pass (at once); else after a
            # third of the grace, as before.
            swept = not (sms_left or webhooks_left)
            self.backlog = self.backlog or not swept
            self._next_sweep = (
                now + _setting("OUTBOX_REDELIVERY_GRACE_SECONDS") / 3 if swept else now
            )
        return published

    def sms_waiting(self) -> int:
        """SMS messages waiting in the broker for a worker thread (0 when it cannot be asked,
        or does not answer: publishing goes on, with one row per free thread)."""
        try:
            if isinstance(self.broker, RedisBroker):
                return int(self.broker.client.llen(f"{self.broker.namespace}:{SMS_QUEUE}"))
            queues = getattr(self.broker, "queues", None)  # the stub and in-process brokers
            queue = queues.get(SMS_QUEUE) if isinstance(queues, dict) else None
            return int(queue.qsize()) if queue is not None else 0
        except Exception:
            return 0

    def queue_depth(self) -> None:
        if isinstance(self.broker, RedisBroker):
            ns = self.broker.namespace
            for queue in (SMS_QUEUE, WEBHOOK_QUEUE):
                pipe = self.broker.client.pipeline(transaction=False)
                pipe.llen(f"{ns}:{queue}")
                pipe.llen(f"{ns}:{queue}.DQ")
                waiting, delayed = pipe.execute()
                QUEUE_DEPTH.labels(queue=queue).set(waiting + delayed)

    # --- the thread ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start publishing, and the housekeeping in a thread of its own (its deletes never
        hold up publishing)."""
        super().start()
        self.housekeeper.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.housekeeper.stop(timeout=timeout)
        super().stop(timeout=timeout)

    def _backoff(self) -> float:
        self._failures += 1
        return min(_setting("OUTBOX_BROKER_BACKOFF_MAX_SECONDS"), 0.25 * 2**self._failures)

    def _run(self) -> None:
        listener = Listener()
        logger.info("Outbox dispatcher started (LISTEN/NOTIFY)")
        try:
            while not self._stop.is_set():
                self.beat()
                self._replica_heartbeat()
                backoff = self._pass()
                self.passes += 1
                if backoff is not None:
                    self._stop.wait(backoff)
                elif self.backlog:
                    continue  # rows are left: the next pass follows at once
                else:
                    listener.wait(
                        _setting("OUTBOX_POLL_SECONDS"),
                        self._stop,
                        coalesce=_setting("OUTBOX_COALESCE_SECONDS"),
                    )
        finally:
            listener.close()
            connection.close()

    def _replica_heartbeat(self) -> None:
        """At most every HEARTBEAT_SECONDS, with a read replica configured; a failure (the
        database away) is the pass's to report."""
        now = time.monotonic()
        if now < self._next_replica_heartbeat or not routing.configured():
            return
        self._next_replica_heartbeat = now + routing.HEARTBEAT_SECONDS
        try:
            routing.heartbeat()
        except Exception:
            close_old_connections()

    def _pass(self) -> float | None:
        """One guarded pass; returns the back-off after a failure, None after a good pass."""
        close_old_connections()
        try:
            self.run_once()
        except core.PublishError as exc:
            pause = self._backoff()
            logger.warning(
                "Outbox dispatcher: the broker refused a message after %d were published (%s); "
                "next try in %.1fs",
                exc.published,
                exc,
                pause,
            )
            return pause
        except Exception as exc:  # the database is down or similar: keep the thread alive
            pause = self._backoff()
            logger.warning(
                "Outbox dispatcher pass failed (%s: %s); next try in %.1fs",
                type(exc).__name__,
                exc,
                pause,
            )
            close_old_connections()
            return pause
        self._failures = 0
        self._periodic()
        return None

    def _periodic(self) -> None:
        now = time.monotonic()
        # Sampled at most once a poll interval: a pass follows every burst of commits, and a
        # COUNT and two Redis round trips per pass were a good part of the dispatcher's cost.
        if now >= self._next_pending_sample:
            self._next_pending_sample = now + _setting("OUTBOX_POLL_SECONDS")
            with contextlib.suppress(Exception):  # metrics never stop publishing
                self.queue_depth()
            with contextlib.suppress(Exception):
                WEBHOOK_PENDING.set(webhook_deliveries.pending_count())
