"""The token validator against a real loopback issuer (discovery + JWKS over HTTP on 127.0.0.1).

Time is a fake clock handed to the key cache, so cooldowns are tested without sleeping.
"""

from __future__ import annotations

import threading
import time

import jwt
import pytest

from backend.integrations.oidc import (
    REFRESH_COOLDOWN_SECONDS,
    InvalidToken,
    IssuerUnavailable,
    Principal,
    RemoteKeys,
    TokenValidator,
    keys_from_jwks,
)
from tests.fixtures.auth import LoopbackIssuer, SigningKey, b64, hostile_tokens, new_key


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_validator(
    issuer: LoopbackIssuer, clock: FakeClock, *, algorithms: tuple[str, ...] = ("RS256", "ES256")
) -> TokenValidator:
    keys = RemoteKeys(issuer.url, timeout=2, clock=clock)
    return TokenValidator(
        issuer=issuer.url, audience=issuer.audience, algorithms=algorithms, keys=keys
    )


def test_accepts_a_valid_token_and_reports_the_principal(loopback_issuer, clock):
    validator = make_validator(loopback_issuer, clock)
    token = loopback_issuer.mint("orders:read", "customers:read", sub="alice")

    principal = validator.validate(token)

    assert principal == Principal(
        subject="alice",
        client_id="test-client",
        scopes=frozenset({"orders:read", "customers:read"}),
    )
    assert str(principal) == "alice"
    assert loopback_issuer.discovery_fetches == 1
    assert loopback_issuer.jwks_fetches == 1


def test_known_keys_are_served_from_the_cache(loopback_issuer, clock):
    validator = make_validator(loopback_issuer, clock)
    for _ in range(20):
        validator.validate(loopback_issuer.mint("orders:read"))
    assert loopback_issuer.jwks_fetches == 1


def test_accepts_es256_and_rejects_an_algorithm_outside_the_allow_list(loopback_issuer, clock):
    es_key = loopback_issuer.add_key("ES256")
    validator = make_validator(loopback_issuer, clock, algorithms=("RS256",))
    with pytest.raises(InvalidToken, match="algorithm"):
        validator.validate(loopback_issuer.mint("orders:read", key=es_key))

    permissive = make_validator(loopback_issuer, clock)
    assert permissive.validate(loopback_issuer.mint("orders:read", key=es_key)).subject


def test_header_alg_must_fit_the_key_it_names(loopback_issuer, clock):
    rsa_key = loopback_issuer.keys[0]
    es_key = new_key("ES256", kid=rsa_key.kid)  # an EC-signed token naming the RSA key's kid
    token = jwt.encode(
        loopback_issuer.claims("orders:read"), es_key.private_key, "ES256", {"kid": rsa_key.kid}
    )
    with pytest.raises(InvalidToken, match="does not match its key"):
        make_validator(loopback_issuer, clock).validate(token)


def test_jwks_symmetric_encryption_and_kidless_keys_are_ignored():
    good = new_key().public_jwk()
    document = {
        "keys": [
            {"kty": "oct", "kid": "hmac", "k": b64(b"secret"), "alg": "HS256"},
            {**new_key().public_jwk(), "use": "enc", "kid": "enc"},
            {k: v for k, v in new_key().public_jwk().items() if k != "kid"},
            "not a key",
            {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
            good,
        ]
    }
    assert set(keys_from_jwks(document)) == {good["kid"]}
    with pytest.raises(ValueError, match="no usable"):
        keys_from_jwks({"keys": [document["keys"][0]]})


# --- Key rotation and the refresh budget ------------------------------------------------------


def test_a_newly_published_key_is_accepted_after_one_refresh(loopback_issuer, clock):
    validator = make_validator(loopback_issuer, clock)
    validator.validate(loopback_issuer.mint("orders:read"))  # warm-up fetch
    clock.advance(REFRESH_COOLDOWN_SECONDS)

    new = loopback_issuer.rotate()
    principal = validator.validate(loopback_issuer.mint("orders:read", key=new))

    assert principal.subject == "test-user"
    assert loopback_issuer.jwks_fetches == 2


def test_a_key_published_right_after_a_fetch_is_accepted_within_35_seconds(loopback_issuer, clock):
    validator = make_validator(loopback_issuer, clock)
    validator.validate(loopback_issuer.mint("orders:read"))  # the worst moment: a fetch just now
    new = loopback_issuer.add_key()
    token = loopback_issuer.mint("orders:read", key=new)
    first_use = clock.now

    with pytest.raises(InvalidToken, match="unknown key"):
        validator.validate(token)  # inside the cooldown: refused without a fetch
    clock.advance(REFRESH_COOLDOWN_SECONDS - 1)
    with pytest.raises(InvalidToken, match="unknown key"):
        validator.validate(token)
    assert loopback_issuer.jwks_fetches == 1

    clock.advance(1)
    assert validator.validate(token).subject == "test-user"
    assert clock.now - first_use <= 35
    assert loopback_issuer.jwks_fetches == 2


def test_a_hundred_unknown_kids_cost_at_most_two_jwks_fetches(loopback_issuer, clock):
    validator = make_validator(loopback_issuer, clock)
    validator.validate(loopback_issuer.mint("orders:read"))
    clock.advance(REFRESH_COOLDOWN_SECONDS + 1)

    forged = new_key()
    for i in range(100):
        key = SigningKey(kid=f"forged-{i}", private_key=forged.private_key, alg="RS256")
        with pytest.raises(InvalidToken, match="unknown key"):
            validator.validate(loopback_issuer.mint("orders:read", key=key))
        clock.advance(0.1)

    assert loopback_issuer.jwks_fetches <= 2


def test_concurrent_unknown_kids_share_one_fetch(loopback_issuer, clock):
    validator = make_validator(loopback_issuer, clock)
    validator.validate(loopback_issuer.mint("orders:read"))
    clock.advance(REFRESH_COOLDOWN_SECONDS)
    new = loopback_issuer.add_key()
    loopback_issuer.delay = 0.3
    token = loopback_issuer.mint("orders:read", key=new)
    results: list[object] = []

    def call() -> None:
        try:
            results.append(validator.validate(token))
        except Exception as exc:
            results.append(exc)

    threads = [threading.Thread(target=call) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert all(isinstance(result, Principal) for result in results), results
    assert len(results) == 10
    assert loopback_issuer.jwks_fetches == 2


def test_cached_keys_keep_working_while_the_issuer_is_down(loopback_issuer, clock):
    validator = make_validator(loopback_issuer, clock)
    token = loopback_issuer.mint("orders:read")
    validator.validate(token)

    loopback_issuer.down()
    clock.advance(3600)  # long past max age: a background refresh fails, the keys stay
    for _ in range(3):
        assert validator.validate(token).subject == "test-user"
        time.sleep(0.05)
    with pytest.raises(InvalidToken, match="unknown key"):  # and unknown kids are still 401
        validator.validate(loopback_issuer.mint("orders:read", key=new_key()))


def test_issuer_failing_with_5xx_after_warm_up_keeps_the_cached_keys(loopback_issuer, clock):
    validator = make_validator(loopback_issuer, clock)
    token = loopback_issuer.mint("orders:read")
    validator.validate(token)
    loopback_issuer.failing = True
    clock.advance(REFRESH_COOLDOWN_SECONDS)
    with pytest.raises(InvalidToken):
        validator.validate(loopback_issuer.mint("orders:read", key=new_key()))
    assert validator.validate(token).subject == "test-user"


def test_never_fetched_and_unreachable_is_issuer_unavailable(loopback_issuer, clock):
    validator = make_validator(loopback_issuer, clock)
    token = loopback_issuer.mint("orders:read")
    loopback_issuer.down()

    with pytest.raises(IssuerUnavailable) as excinfo:
        validator.validate(token)
    assert 1 <= excinfo.value.retry_after <= 5

    loopback_issuer.up()  # back on the same port
    with pytest.raises(IssuerUnavailable):
        validator.validate(token)  # still inside the retry backoff: no hammering
    clock.advance(5)
    assert validator.validate(token).subject == "test-user"


def test_a_slow_issuer_does_not_stall_requests_with_known_keys(loopback_issuer, clock):
    validator = make_validator(loopback_issuer, clock)
    token = loopback_issuer.mint("orders:read")
    validator.validate(token)
    loopback_issuer.delay = 1.5
    clock.advance(REFRESH_COOLDOWN_SECONDS)
    outcome: list[object] = []

    def unknown_kid() -> None:
        try:
            validator.validate(loopback_issuer.mint("orders:read", key=new_key()))
        except Exception as exc:
            outcome.append(exc)

    # One thread waits on the slow refresh for a kid it does not know...
    waiter = threading.Thread(target=unknown_kid)
    waiter.start()
    time.sleep(0.2)
    # ...while tokens with known keys are answered at once.
    started = time.monotonic()
    for _ in range(10):
        validator.validate(token)
    assert time.monotonic() - started < 0.5
    waiter.join(10)
    assert len(outcome) == 1
    assert isinstance(outcome[0], InvalidToken)
    assert loopback_issuer.jwks_fetches == 2


def test_a_key_removed_from_the_jwks_stops_working_after_the_periodic_refresh(
    loopback_issuer, clock
):
    validator = make_validator(loopback_issuer, clock)
    old_token = loopback_issuer.mint("orders:read")
    validator.validate(old_token)
    loopback_issuer.rotate()
    clock.advance(3600)
    validator.validate(old_token)  # still cached; starts the background refresh
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (
        loopback_issuer.jwks_fetches < 2 or validator.keys._inflight is not None
    ):
        time.sleep(0.02)
    with pytest.raises(InvalidToken, match="unknown key"):
        validator.validate(old_token)


def test_discovery_with_another_issuer_still_refuses_the_tokens(loopback_issuer, clock):
    keys = RemoteKeys(loopback_issuer.url + "/", timeout=2, clock=clock)
    validator = TokenValidator(
        issuer=loopback_issuer.url + "/",
        audience=loopback_issuer.audience,
        algorithms=["RS256"],
        keys=keys,
    )
    with pytest.raises(InvalidToken, match="another issuer"):
        validator.validate(loopback_issuer.mint("orders:read"))


def test_symmetric_algorithms_cannot_be_configured(loopback_issuer, clock):
    with pytest.raises(ValueError, match="never accepted"):
        make_validator(loopback_issuer, clock, algorithms=("RS256", "HS256"))


# --- Hostile tokens: every one is InvalidToken, nothing else escapes -----------------------


def test_hostile_tokens_are_invalid_and_raise_nothing_else(loopback_issuer, clock):
    validator = make_validator(loopback_issuer, clock)
    assert validator.validate(loopback_issuer.mint("orders:read"))
    for name, token in hostile_tokens(loopback_issuer).items():
        try:
            validator.validate(token)
        except InvalidToken:
            continue
        except Exception as exc:
            pytest.fail(f"{name}: raised {type(exc).__name__}: {exc}")
        pytest.fail(f"{name}: was accepted")
