"""The Dramatiq broker of this process, built from settings at import.

With `REDIS_URL` set: a `RedisBroker` on a client with socket timeouts (redis-py's URL pool has
none, so a silent Redis would otherwise hang the dispatcher). Without it: an in-memory
`StubBroker`, served by `start_inprocess_worker()` inside the web process (quick start only;
messages live in that process's memory, the outbox row stays the source of truth).

Only the outbox dispatcher (`backend.jobs.dispatcher`) publishes to this broker; web requests
never call it.

Import this module before declaring actors: actors bind to the global broker when declared.
"""

from __future__ import annotations

import atexit
import logging
import threading

import dramatiq
import redis
from django.conf import settings
from dramatiq import Broker, Worker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

from backend.jobs.middleware import DbConnections, OutboxDispatch
from backend.observability.jobs import JobLog

logger = logging.getLogger(__name__)

REDIS_CONNECT_TIMEOUT_SECONDS = 2.0
REDIS_SOCKET_TIMEOUT_SECONDS = 5.0

_current: Broker | None = None
_worker: Worker | None = None
_worker_lock = threading.Lock()


def redis_client(url: str) -> redis.Redis:
    """Redis client with bounded waits; timeouts given in the URL's query string still win."""
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=REDIS_CONNECT_TIMEOUT_SECONDS,
        socket_timeout=REDIS_SOCKET_TIMEOUT_SECONDS,
        health_check_interval=30,
    )


def build_broker(*, redis_url: str | None, dispatch: bool = True) -> Broker:
    """A broker with our middleware: default Dramatiq set, DB connection hygiene, job logs, and
    the outbox dispatcher (which only runs where a Worker boots on this broker)."""
    broker: Broker
    if redis_url:
        broker = RedisBroker(
            client=redis_client(redis_url),
            namespace=settings.DRAMATIQ_NAMESPACE,
            # Dramatiq requeues the unacked messages of a worker silent this long (SIGKILL).
            heartbeat_timeout=int(1000 * float(settings.DRAMATIQ_HEARTBEAT_TIMEOUT_SECONDS)),
            maintenance_chance=int(settings.DRAMATIQ_MAINTENANCE_CHANCE),
        )
    else:
        broker = StubBroker()
    broker.add_middleware(DbConnections())
    broker.add_middleware(
        JobLog()
    )  # request id of the request that placed the order + one line per job
    if dispatch:
        broker.add_middleware(OutboxDispatch())
    return broker


def install_broker(broker: Broker) -> Broker | None:
    """Make `broker` the global broker and move already-declared actors onto it; returns the
    previous one (tests swap brokers with this)."""
    global _current
    previous = _current
    dramatiq.set_broker(broker)
    if previous is not None and previous is not broker:
        for actor in list(previous.actors.values()):
            actor.broker = broker
            broker.declare_actor(actor)
    _current = broker
    return previous


def current_broker() -> Broker:
    assert _current is not None
    return _current


def start_inprocess_worker(*, threads: int = 2) -> bool:
    """Quick start without Redis: serve this process's in-memory broker from worker threads;
    booting them starts the outbox dispatcher. Idempotent; False
    when not started by this call, e.g. with REDIS_URL set (the `worker` process type does the
    work then)."""
    global _worker
    if settings.REDIS_URL:
        return False
    with _worker_lock:
        if _worker is not None:
            return False
        import backend.jobs.sms  # noqa: F401 - declares the actors on the broker
        from backend.jobs import webhook_delivery  # noqa: F401 - declares the webhook actor

        broker = current_broker()
        if not any(isinstance(m, OutboxDispatch) for m in broker.middleware):
            broker.add_middleware(OutboxDispatch())
        worker = Worker(broker, worker_threads=threads, worker_timeout=500)
        worker.start()
        _worker = worker
    atexit.register(stop_inprocess_worker)
    logger.info("In-process SMS worker started (REDIS_URL is unset; quick-start mode)")
    return True


def stop_inprocess_worker() -> None:
    global _worker
    with _worker_lock:
        worker, _worker = _worker, None
    if worker is not None:
        worker.stop(timeout=5000)


install_broker(build_broker(redis_url=settings.REDIS_URL))
