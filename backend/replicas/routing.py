"""Which database a query in `backend/queries/` reads from: the replica, or the primary.

With `DATABASE_READ_URL` set, the `read` database alias points at a hot standby and reads go
there, except:

* inside a transaction on the primary (a command's transaction reads what it writes), and in
  a write request (it answers with what it wrote, read back after the commit);
* while the replica is down or lags more than `DATABASE_READ_MAX_LAG_S` behind the primary;
* for a caller (token `sub`) whose last write the replica has not replayed yet: after each
  successful write the middleware stores the primary's WAL position (LSN) for that subject in
  the Django cache (Redis when REDIS_URL is set, so every web process sees it), keeping the
  highest one atomically (`remember_position`), and that caller reads from the primary until
  the replica's replay LSN has passed it.

A read by id that finds nothing on the replica is asked again on the primary before it is a
404 (`backend.queries.sql.select(..., primary_if_empty=True)`): someone told about a new
resource (a webhook receiver, another client) reads it at once, whatever the replica's lag.

The replica's state (replay LSN, lag) is probed at most once per `STATUS_TTL_SECONDS` per
process, by one thread while the others use the previous answer; a replica that fails a probe
or a query is left alone for `DOWN_RETRY_SECONDS`. Lag is `now() - pg_last_xact_replay_timestamp()`
on the replica while it is behind the primary's current LSN, else 0. So that a quiet spell does
not count as lag (the first write after it would find the last replayed commit minutes old),
the worker's dispatcher commits a `heartbeat` on the primary every `HEARTBEAT_SECONDS`: the last
replayed commit is then at most about that much older than the real lag.
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, cache, caches
from django.core.cache.backends.redis import RedisCache
from django.db import DEFAULT_DB_ALIAS, connections

logger = logging.getLogger(__name__)

READ_ALIAS = "read"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
STATUS_TTL_SECONDS = 1.0
DOWN_RETRY_SECONDS = 5.0
HEARTBEAT_SECONDS = 1.0
# How long a subject's last write LSN is remembered: far longer than any lag the replica may
# have while it is used at all (DATABASE_READ_MAX_LAG_S).
WRITE_MEMORY_SECONDS = 600

_request: contextvars.ContextVar[Any] = contextvars.ContextVar("duka_read_request", default=None)


def configured() -> bool:
    return READ_ALIAS in connections.settings


def parse_lsn(text: str) -> int:
    """`16/B374D848` -> an integer that orders like the LSN."""
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


def bind_request(request: Any) -> contextvars.Token[Any]:
    return _request.set(request)


def unbind_request(token: contextvars.Token[Any]) -> None:
    _request.reset(token)


def current_subject() -> str | None:
    """The token subject of the request being served (after authentication), if any."""
    auth = getattr(_request.get(), "auth", None)
    subject = getattr(auth, "subject", None)
    return subject if isinstance(subject, str) and subject else None


def _write_key(subject: str) -> str:
    return (
        "replicas:write-lsn:" + hashlib.sha256(subject.encode("utf-8", "surrogatepass")).hexdigest()
    )


@dataclass(frozen=True)
class ReplicaStatus:
    checked_at: float  # monotonic
    up: bool
    replay_lsn: int = 0
    lag_seconds: float = math.inf


_lag_gauge: Any = None
_gauge_lock = threading.Lock()


def _set_lag_gauge(value: float) -> None:
    """`duka_replica_lag_seconds`, created on first use so it exists only with a replica."""
    global _lag_gauge
    if _lag_gauge is None:
        from prometheus_client import Gauge

        with _gauge_lock:
            if _lag_gauge is None:
                _lag_gauge = Gauge(
                    "duka_replica_lag_seconds",
                    "How far the read replica is behind the primary (+Inf while unreachable); "
                    "reads go to the primary beyond DATABASE_READ_MAX_LAG_S.",
                    multiprocess_mode="livemax",
                )
    _lag_gauge.set(value)


class ReplicaMonitor:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._status: ReplicaStatus | None = None

    def reset(self) -> None:
        self._status = None

    def status(self) -> ReplicaStatus:
        status = self._status
        now = time.monotonic()
        ttl = STATUS_TTL_SECONDS if status is None or status.up else DOWN_RETRY_SECONDS
        if status is not None and now - status.checked_at < ttl:
            return status
        # One prober at a time; the others go on with the previous answer (or the primary).
        if not self._lock.acquire(blocking=False):
            return status or ReplicaStatus(checked_at=now, up=False)
        try:
            self._status = status = self.probe()
        finally:
            self._lock.release()
        return status

    def mark_down(self) -> None:
        self._status = ReplicaStatus(checked_at=time.monotonic(), up=False)
        _set_lag_gauge(math.inf)

    def probe(self) -> ReplicaStatus:
        now = time.monotonic()
        try:
            with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
                cursor.execute("SELECT pg_current_wal_lsn()::text")
                (primary_lsn,) = cursor.fetchone()
            with connections[READ_ALIAS].cursor() as cursor:
                cursor.execute(
                    "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text,"
                    " pg_wal_lsn_diff(%s::pg_lsn, pg_last_wal_replay_lsn()),"
                    " EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())",
                    [primary_lsn],
                )
                in_recovery, replay_lsn, behind, since_replay = cursor.fetchone()
        except Exception as exc:
            logger.warning(
                "read replica unusable (%s: %s); reading from the primary", type(exc).__name__, exc
            )
            connections[READ_ALIAS].close()
            self.mark_down()
            return ReplicaStatus(checked_at=now, up=False)
        if not in_recovery or replay_lsn is None:
            logger.error("DATABASE_READ_URL is not a standby in recovery; reading from the primary")
            self.mark_down()
            return ReplicaStatus(checked_at=now, up=False)
        if behind is None or behind <= 0:
            lag = 0.0
        else:
            lag = max(0.0, float(since_replay)) if since_replay is not None else math.inf
        _set_lag_gauge(lag)
        return ReplicaStatus(
            checked_at=now, up=True, replay_lsn=parse_lsn(replay_lsn), lag_seconds=lag
        )


monitor = ReplicaMonitor()


def heartbeat() -> None:
    """Commit a transaction on the primary (it takes a transaction id, so PostgreSQL writes a
    commit record with its time, which the standby replays), without a table to keep."""
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT pg_current_xact_id()")


def read_alias() -> str:
    """The alias a query of `backend/queries/` should read from now."""
    if not configured() or connections[DEFAULT_DB_ALIAS].in_atomic_block:
        return DEFAULT_DB_ALIAS
    request = _request.get()
    if getattr(request, "method", None) in WRITE_METHODS:
        return DEFAULT_DB_ALIAS  # a write answers with what it wrote (read back after commit)
    status = monitor.status()
    if not status.up or status.lag_seconds > settings.DATABASE_READ_MAX_LAG_S:
        return DEFAULT_DB_ALIAS
    subject = current_subject()
    if subject is not None:
        try:
            written = cache.get(_write_key(subject))
        except Exception:
            logger.warning("cache unavailable; reading from the primary", exc_info=True)
            return DEFAULT_DB_ALIAS
        if written is not None and status.replay_lsn < written:
            return DEFAULT_DB_ALIAS
    return READ_ALIAS


def record_write(subject: str) -> None:
    """Remember the primary's WAL position after `subject`'s committed write."""
    try:
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_lsn()::text")
            (lsn_text,) = cursor.fetchone()
        remember_position(_write_key(subject), parse_lsn(lsn_text))
    except Exception:
        # Without the record this caller may read its write late from the replica; the write
        # itself succeeded, so the response stands.
        logger.warning("could not record the write position of a caller", exc_info=True)


# Keeps the higher of the stored and the given position in one step on the Redis server.
# Positions are compared as decimal text (length, then digits): exact beyond 2**53, where Lua's
# numbers are not. Django's Redis cache stores an int as its decimal text, so `cache.get` reads
# what this writes.
_MAX_SCRIPT = """
local stored = redis.call('GET', KEYS[1])
local given = ARGV[1]
if (not stored) or #stored < #given or (#stored == #given and stored < given) then
    redis.call('SET', KEYS[1], given, 'EX', ARGV[2])
    return 1
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 0
"""
_local_max = threading.Lock()


def remember_position(key: str, lsn: int) -> None:
    """Store `lsn` under `key` unless a higher position is stored: concurrent writes of one
    subject never move it backwards. Atomic on the Redis server with Django's Redis cache; any
    other cache (the in-process one without REDIS_URL) compares and sets under a process lock,
    which is atomic for a cache that lives in this process."""
    backend = caches[DEFAULT_CACHE_ALIAS]
    if isinstance(backend, RedisCache):
        redis_key = backend.make_and_validate_key(key)
        # Django's own client for the key (a private attribute: the contract test in
        # tests/integration/replicas/test_write_positions.py pins it to a real Redis).
        client = backend._cache.get_client(redis_key, write=True)
        client.eval(_MAX_SCRIPT, 1, redis_key, str(lsn), WRITE_MEMORY_SECONDS)
        return
    with _local_max:
        previous = cache.get(key)
        if previous is None or previous < lsn:
            cache.set(key, lsn, timeout=WRITE_MEMORY_SECONDS)
