"""Read-your-writes keeps each caller's highest write position, however its writes interleave:
concurrent writes of one subject (one `sub` per client-credentials client) never move the
stored position backwards, with the in-process cache and with Django's Redis cache."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.core.cache import cache
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from django.db import connection

from backend.replicas import routing

pytestmark = pytest.mark.django_db(transaction=True)
WRITERS = 8
ROUNDS = 4
READ_DELAY = 0.02  # widens each writer's window between reading the position and storing its own


@pytest.fixture(params=["locmem", pytest.param("redis", marks=pytest.mark.redis)])
def shared_cache(request: pytest.FixtureRequest, settings: Any) -> Iterator[type]:
    """The cache read-your-writes uses: in-process (no REDIS_URL) or Django's Redis cache."""
    if request.param == "locmem":
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
        yield LocMemCache
        return
    url = request.getfixturevalue("redis_url")
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": f"duka-test-{uuid.uuid4().hex[:8]}",
        }
    }
    yield RedisCache


def test_concurrent_writes_of_one_subject_keep_the_highest_position(
    shared_cache: type, monkeypatch: pytest.MonkeyPatch
):
    given = threading.local()
    # Each writer's "current WAL position" is the one the test hands it, so they differ.
    monkeypatch.setattr(routing, "parse_lsn", lambda text: given.lsn)
    real_get = shared_cache.get

    def slow_get(self: Any, *args: Any, **kwargs: Any) -> Any:
        value = real_get(self, *args, **kwargs)
        time.sleep(READ_DELAY)  # every writer reads before any of them stores
        return value

    monkeypatch.setattr(shared_cache, "get", slow_get)

    for round_ in range(ROUNDS):
        subject = f"client-{round_}-{uuid.uuid4().hex[:6]}"
        start = threading.Barrier(WRITERS)
        errors: list[BaseException] = []

        def write(
            lsn: int,
            subject: str = subject,
            start: threading.Barrier = start,
            errors: list[BaseException] = errors,
        ) -> None:
            try:
                given.lsn = lsn
                start.wait(timeout=10)
                routing.record_write(subject)
            except BaseException as exc:  # reported below
                errors.append(exc)
            finally:
                connection.close()

        # The highest position first: with a get-compare-set, a lower one stored later wins.
        threads = [
            threading.Thread(target=write, args=(1000 + lsn,)) for lsn in range(WRITERS, 0, -1)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert not errors, errors
        monkeypatch.setattr(shared_cache, "get", real_get)
        assert cache.get(routing._write_key(subject)) == 1000 + WRITERS
        monkeypatch.setattr(shared_cache, "get", slow_get)


@pytest.mark.redis
def test_the_redis_max_is_exact_and_readable_through_the_cache(redis_url: str, settings: Any):
    """Contract test of the one private API used (RedisCache's client): what the script stores
    is what `cache.get` reads, compared exactly beyond 2**53, and it expires."""
    prefix = f"duka-test-{uuid.uuid4().hex[:8]}"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_url,
            "KEY_PREFIX": prefix,
        }
    }
    key = routing._write_key("contract")
    high = 2**60 + 1
    routing.remember_position(key, high)
    routing.remember_position(key, 2**60)  # lower by one: a float comparison would not see it
    routing.remember_position(key, 99)
    assert cache.get(key) == high
    routing.remember_position(key, high + 1)
    assert cache.get(key) == high + 1

    client = redis.Redis.from_url(redis_url)
    try:
        ttl = client.ttl(cache.make_and_validate_key(key))
        assert 0 < ttl <= routing.WRITE_MEMORY_SECONDS
    finally:
        client.delete(cache.make_and_validate_key(key))
        client.close()
