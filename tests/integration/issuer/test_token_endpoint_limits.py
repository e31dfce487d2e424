"""Failed client authentications at /o/token/ are limited per client id and per address.

Time is pinned (the limiter counts in fixed windows), so no test races a window boundary.
"""

from __future__ import annotations

import base64
import uuid

import pytest
from django.core.cache import cache, caches
from django.core.cache.backends.locmem import LocMemCache
from django.test import Client

from backend import limits
from backend.issuer import throttling
from tests.integration.issuer.test_builtin_issuer import createclient

pytestmark = pytest.mark.django_db

WINDOW = 300
NOW = 1_000_050.0  # 150 s before its window ends


class FrozenTime:
    def __init__(self) -> None:
        self.now = NOW

    def time(self) -> float:
        return self.now


@pytest.fixture
def frozen(monkeypatch, settings) -> FrozenTime:
    settings.ISSUER_AUTH_FAILURES_PER_CLIENT = 3
    settings.ISSUER_AUTH_FAILURES_PER_ADDRESS = 5
    settings.ISSUER_AUTH_FAILURE_WINDOW_S = WINDOW
    clock = FrozenTime()
    monkeypatch.setattr(limits, "time", clock)
    _clear_local_cache()
    yield clock
    _clear_local_cache()


def _clear_local_cache() -> None:
    # Only the in-process cache: clear() on a Redis cache is FLUSHDB on a shared server.
    if isinstance(caches["default"], LocMemCache):
        cache.clear()


def token_request(client: Client, client_id: str, secret: str, address: str = "127.0.0.1"):
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return client.post(
        "/o/token/",
        {"grant_type": "client_credentials", "scope": "orders:read"},
        HTTP_AUTHORIZATION=f"Basic {basic}",
        REMOTE_ADDR=address,
    )


def assert_limited(response, retry_after: int = 150) -> None:
    assert response.status_code == 429, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert response["Retry-After"] == str(retry_after)
    body = response.json()
    assert body["status"] == 429
    assert "failed client authentications" in body["detail"]


def test_wrong_secrets_for_one_client_are_refused_until_the_window_ends(client, frozen):
    victim = createclient("victim", "orders:read")
    other = createclient("other", "orders:read")
    for attempt in range(3):  # from three addresses, so only the per-client limit is reached
        response = token_request(client, victim["client_id"], "guess", f"10.0.0.{attempt}")
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_client"

    assert_limited(token_request(client, victim["client_id"], "guess", "10.0.1.1"))
    # The right secret is checked first and always passes: a guesser's failures cannot lock
    # out the client they name (its id is in every token's `sub`).
    granted = token_request(client, victim["client_id"], victim["client_secret"], "10.0.1.2")
    assert granted.status_code == 200, granted.content
    assert token_request(client, other["client_id"], other["client_secret"]).status_code == 200

    frozen.now += 150
    assert token_request(client, victim["client_id"], "guess").status_code == 401


def test_made_up_client_ids_from_a_shared_address_never_lock_out_the_right_secret(client, frozen):
    # Issue 24: 55 requests with made-up ids locked out a client that had never failed. Behind
    # one proxy address every caller shares the per-address counter.
    victim = createclient("bystander", "orders:read")
    for _ in range(55):
        response = token_request(client, uuid.uuid4().hex, "guess", "10.7.7.7")
        assert response.status_code in (401, 429)
    assert_limited(token_request(client, uuid.uuid4().hex, "guess", "10.7.7.7"))
    for _ in range(3):
        granted = token_request(client, victim["client_id"], victim["client_secret"], "10.7.7.7")
        assert granted.status_code == 200, granted.content


def test_the_toolkits_other_secret_checking_endpoints_are_not_routed(client, frozen):
    victim = createclient("revoker", "orders:read")
    basic = base64.b64encode(f"{victim['client_id']}:guess".encode()).decode()
    for path in ("/o/revoke_token/", "/o/introspect/"):
        response = client.post(path, {"token": "whatever"}, HTTP_AUTHORIZATION=f"Basic {basic}")
        assert response.status_code == 404, path
    metadata = client.get("/o/.well-known/oauth-authorization-server").json()
    assert "introspection_endpoint" not in metadata
    assert "revocation_endpoint" not in metadata


def test_failures_from_one_address_refuse_only_failures_from_that_address(client, frozen):
    good = createclient("good", "orders:read")
    for _ in range(5):  # a different made-up client id each time: only the address repeats
        assert token_request(client, uuid.uuid4().hex, "guess", "10.9.9.9").status_code == 401

    assert_limited(token_request(client, good["client_id"], "guess", "10.9.9.9"))
    granted = token_request(client, good["client_id"], good["client_secret"], "10.9.9.9")
    assert granted.status_code == 200
    assert token_request(client, good["client_id"], "guess", "10.9.9.10").status_code == 401


def test_form_credentials_count_the_same(client, frozen):
    target = createclient("formy", "orders:read")
    for attempt in range(3):
        response = client.post(
            "/o/token/",
            {
                "grant_type": "client_credentials",
                "client_id": target["client_id"],
                "client_secret": "guess",
            },
            REMOTE_ADDR=f"10.1.0.{attempt}",
        )
        assert response.status_code == 401
    assert_limited(token_request(client, target["client_id"], "guess", "10.1.1.1"))
    assert token_request(client, target["client_id"], target["client_secret"]).status_code == 200


def test_successes_are_not_counted(client, frozen):
    good = createclient("busy", "orders:read")
    for _ in range(10):
        assert token_request(client, good["client_id"], good["client_secret"]).status_code == 200


def failing_request(client: Client, forwarded: str | None, remote: str = "192.0.2.1"):
    extra = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}
    return client.post(
        "/o/token/",
        {"grant_type": "client_credentials", "client_id": uuid.uuid4().hex},
        REMOTE_ADDR=remote,
        **extra,
    )


def test_without_trusted_proxies_the_socket_address_counts(client, frozen, settings):
    settings.TRUSTED_PROXY_COUNT = 0
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")  # not a proxy count
    for index in range(5):  # a forged X-Forwarded-For changes nothing
        assert failing_request(client, f"203.0.113.{index}").status_code == 401
    assert_limited(failing_request(client, "198.51.100.77"))
    assert failing_request(client, None, remote="192.0.2.2").status_code == 401


@pytest.mark.parametrize(
    ("count", "locked", "spoofed", "fresh"),
    [
        # One proxy appends the address it saw: the last entry is the caller.
        (1, "evil, 198.51.100.1", "198.51.100.1, 198.51.100.2", "198.51.100.3"),
        # Two proxies: the second from the right; whatever the caller wrote is further left.
        (2, "evil, 198.51.100.1, 10.0.0.5", "198.51.100.1, 198.51.100.2, 10.0.0.5", "10.0.0.5"),
    ],
)
def test_trusted_proxies_are_counted_from_the_right(
    client, frozen, settings, count, locked, spoofed, fresh
):
    settings.TRUSTED_PROXY_COUNT = count
    for _ in range(5):  # all through the one proxy address 192.0.2.1
        assert failing_request(client, locked).status_code == 401
    assert_limited(failing_request(client, locked))
    # A caller cannot borrow (or escape into) another address by writing X-Forwarded-For.
    assert failing_request(client, spoofed).status_code == 401
    # Fewer entries than proxies: the leftmost one, still written by a trusted proxy.
    assert failing_request(client, fresh).status_code == 401


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Basic " + base64.b64encode(b"my%20client:secret").decode(), "my client"),
        ("Basic !!!not-base64", ""),
        ("Basic " + base64.b64encode(b"\xff\xfe:x").decode(), ""),
        ("Bearer abc", "from-form"),
    ],
)
def test_claimed_client_id(rf, header, expected):
    request = rf.post("/o/token/", {"client_id": "from-form"}, HTTP_AUTHORIZATION=header)
    assert throttling.claimed_client_id(request) == expected


def test_an_unreachable_cache_lets_token_requests_through(client, frozen, monkeypatch):
    good = createclient("resilient", "orders:read")

    def down(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(cache, "get_many", down)
    monkeypatch.setattr(cache, "add", down)
    for _ in range(5):
        assert token_request(client, good["client_id"], "guess").status_code == 401
    assert token_request(client, good["client_id"], good["client_secret"]).status_code == 200


@pytest.mark.redis
def test_counters_are_shared_through_redis(client, frozen, settings, redis_url):
    prefix = f"duka-test-{uuid.uuid4().hex[:10]}"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_url,
            "KEY_PREFIX": prefix,
        }
    }
    import redis

    victim = createclient("shared", "orders:read")
    try:
        for attempt in range(3):
            token_request(client, victim["client_id"], "guess", f"10.2.0.{attempt}")
        assert_limited(token_request(client, victim["client_id"], "guess", "10.2.1.1"))
        server = redis.Redis.from_url(redis_url)
        keys = server.keys(f"{prefix}:*issuer:auth-failures:client:*")
        assert len(keys) == 1
        assert int(server.get(keys[0])) == 4  # a refused failure is a failure too
    finally:
        server = redis.Redis.from_url(redis_url)
        for key in server.scan_iter(f"{prefix}:*"):
            server.delete(key)
