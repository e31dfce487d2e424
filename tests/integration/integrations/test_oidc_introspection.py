"""RFC 7662 introspection rules and caching, against a loopback issuer whose answers we choose.

The real provider (test_oidc_provider.py) shows the happy paths work with certified software;
here each rule gets an answer crafted to break it. The cache runs on a fake monotonic clock.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from backend.integrations.oidc_claims import InvalidToken, IssuerUnavailable
from backend.integrations.oidc_http import Discovery
from backend.integrations.oidc_introspection import (
    ACTIVE_TTL_SECONDS,
    INACTIVE_TTL_SECONDS,
    UNAVAILABLE_BACKOFF_SECONDS,
    IntrospectionLimited,
    Introspector,
    MissBudget,
)
from backend.integrations.oidc_jwt import TokenValidator
from backend.integrations.oidc_keys import RemoteKeys
from tests.fixtures.auth import LoopbackIssuer

TOKEN = "opaque-token-abc"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def issuer(loopback_issuer: LoopbackIssuer) -> LoopbackIssuer:
    loopback_issuer.introspection = {}
    return loopback_issuer


def active(issuer: LoopbackIssuer, **claims: Any) -> dict[str, Any]:
    now = int(time.time())
    answer = {
        "active": True,
        "iss": issuer.url,
        "client_id": "reporting",
        "scope": "orders:read",
        "exp": now + 300,
        "iat": now,
        "token_type": "Bearer",
        "aud": issuer.audience,
    }
    answer.update(claims)
    return {name: value for name, value in answer.items() if value is not None}


def introspector(issuer: LoopbackIssuer, clock: FakeClock, **kwargs: Any) -> Introspector:
    options: dict[str, Any] = {
        "issuer": issuer.url,
        "audience": issuer.audience,
        "client_id": "duka-api",
        "client_secret": "duka-api-secret",
        "discovery": Discovery(issuer.url, timeout=2),
        "timeout": 2,
        "clock": clock,
    }
    options.update(kwargs)
    return Introspector(**options)


def test_an_active_answer_gives_the_principal(issuer, clock):
    issuer.introspection[TOKEN] = active(issuer, sub="alice", aud=["x", issuer.audience])
    principal = introspector(issuer, clock).introspect(TOKEN)
    assert principal.subject == "alice"
    assert principal.client_id == "reporting"
    assert principal.scopes == frozenset({"orders:read"})


def test_client_id_is_the_subject_when_sub_is_missing(issuer, clock):
    issuer.introspection[TOKEN] = active(issuer)
    assert introspector(issuer, clock).introspect(TOKEN).subject == "reporting"


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"active": False}, "not active"),
        ({"active": "true"}, "not active"),
        ({"iss": "http://127.0.0.1:1/evil"}, "another issuer"),
        ({"aud": "another-api"}, "aud"),
        ({"aud": ["a", "b"]}, "aud"),
        ({"exp": None}, "'exp'"),
        ({"exp": "tomorrow"}, "'exp'"),
        ({"exp": int(time.time()) - 120}, "expired"),
        ({"nbf": int(time.time()) + 86400 * 365}, "not valid yet"),  # a year: collected long before
        ({"iat": int(time.time()) + 86400 * 365}, "not valid yet"),
        ({"nonce": "n-0S6_WzA2Mj"}, "ID token"),
        ({"at_hash": "77QmUPtjPfzWtF2AnpK9RQ"}, "ID token"),
        ({"token_use": "refresh_token"}, "not an access token"),
        ({"token_type": "Refresh"}, "not an access token"),
        ({"client_id": None}, "no subject"),
        ({"client_id": None, "sub": "  "}, "no subject"),
    ],
)
def test_answers_breaking_a_rule_are_refused(issuer, clock, claims, reason):
    issuer.introspection[TOKEN] = active(issuer, **claims)
    with pytest.raises(InvalidToken, match=reason):
        introspector(issuer, clock).introspect(TOKEN)


def test_an_answer_without_iss_is_accepted(issuer, clock):
    # Optional in RFC 7662; the answer comes from the issuer's own endpoint.
    issuer.introspection[TOKEN] = active(issuer, iss=None, aud=issuer.audience)
    assert introspector(issuer, clock).introspect(TOKEN).subject == "reporting"


@pytest.mark.parametrize("aud", [None, [], ""])
def test_an_answer_without_our_audience_is_refused(issuer, clock, aud):
    # Issue 24: an answer without `aud` was accepted, so a token the issuer minted for any other
    # API of the same issuer was good here too.
    issuer.introspection[TOKEN] = active(issuer, aud=aud)
    with pytest.raises(InvalidToken, match="aud"):
        introspector(issuer, clock).introspect(TOKEN)


def test_scopes_come_from_the_configured_claims(issuer, clock):
    issuer.introspection[TOKEN] = active(
        issuer, scope="openid", realm_access={"roles": ["customers:read"]}
    )
    plain = introspector(issuer, clock).introspect(TOKEN)
    roles = introspector(issuer, clock, scope_claims=["scope", "realm_access.roles"]).introspect(
        TOKEN
    )
    assert plain.scopes == frozenset({"openid"})
    assert roles.scopes == frozenset({"openid", "customers:read"})


def test_active_answers_are_cached_for_at_most_a_minute(issuer, clock):
    issuer.introspection[TOKEN] = active(issuer, exp=int(time.time()) + 3600)
    checker = introspector(issuer, clock)
    checker.introspect(TOKEN)
    clock.now += ACTIVE_TTL_SECONDS - 1
    checker.introspect(TOKEN)
    assert issuer.introspection_calls == 1

    issuer.introspection[TOKEN] = {"active": False}  # revoked meanwhile
    clock.now += 1
    with pytest.raises(InvalidToken, match="not active"):
        checker.introspect(TOKEN)
    assert issuer.introspection_calls == 2


def test_a_token_close_to_exp_is_cached_only_until_exp(issuer, clock):
    issuer.introspection[TOKEN] = active(issuer, exp=int(time.time()) + 10)
    checker = introspector(issuer, clock)
    checker.introspect(TOKEN)
    clock.now += 12
    checker.introspect(TOKEN)  # re-asked (the stub still says active; its exp is in the leeway)
    assert issuer.introspection_calls == 2


def test_inactive_answers_are_cached_briefly(issuer, clock):
    checker = introspector(issuer, clock)
    for _ in range(5):
        with pytest.raises(InvalidToken):
            checker.introspect("unknown")
    assert issuer.introspection_calls == 1
    clock.now += INACTIVE_TTL_SECONDS
    with pytest.raises(InvalidToken):
        checker.introspect("unknown")
    assert issuer.introspection_calls == 2


def test_endpoint_down_is_503_for_new_tokens_only_and_retried_after_the_backoff(issuer, clock):
    issuer.introspection[TOKEN] = active(issuer)
    issuer.introspection["other"] = active(issuer)
    checker = introspector(issuer, clock)
    checker.introspect(TOKEN)
    issuer.failing = True

    assert checker.introspect(TOKEN).subject == "reporting"
    with pytest.raises(IssuerUnavailable) as excinfo:
        checker.introspect("other")
    assert excinfo.value.retry_after == UNAVAILABLE_BACKOFF_SECONDS
    calls = issuer.introspection_calls
    with pytest.raises(IssuerUnavailable):
        checker.introspect("other")
    assert issuer.introspection_calls == calls  # no hammering inside the backoff

    issuer.failing = False
    clock.now += UNAVAILABLE_BACKOFF_SECONDS
    assert checker.introspect("other").subject == "reporting"


def test_wrong_client_credentials_make_the_token_invalid_and_are_logged(issuer, clock, caplog):
    # Contract section 3: a 4xx is not the issuer being down; the log names the variables.
    issuer.introspection[TOKEN] = active(issuer)
    with pytest.raises(InvalidToken):
        introspector(issuer, clock, client_secret="wrong").introspect(TOKEN)
    assert "OIDC_CLIENT_SECRET" in caplog.text


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413])
def test_a_4xx_about_one_token_makes_that_token_invalid_not_the_issuer_down(issuer, clock, status):
    # Issue 24: one token the issuer answered with 400 made the next valid token a 503.
    issuer.introspection[TOKEN] = active(issuer)
    issuer.introspection_status["odd-token"] = status
    checker = introspector(issuer, clock)
    with pytest.raises(InvalidToken):
        checker.introspect("odd-token")
    assert checker.introspect(TOKEN).subject == "reporting"
    with pytest.raises(InvalidToken):
        checker.introspect("odd-token")  # remembered briefly, like an inactive answer
    assert issuer.introspection_calls == 2


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_5xx_and_429_mean_the_issuer_is_down(issuer, clock, status):
    issuer.introspection[TOKEN] = active(issuer)
    issuer.introspection_status["odd-token"] = status
    checker = introspector(issuer, clock)
    with pytest.raises(IssuerUnavailable):
        checker.introspect("odd-token")
    with pytest.raises(IssuerUnavailable):
        checker.introspect(TOKEN)  # inside the backoff nobody asks


def test_a_timeout_means_the_issuer_is_down(issuer, clock):
    issuer.introspection[TOKEN] = active(issuer)
    issuer.introspection_delay = 2.0
    checker = introspector(issuer, clock, timeout=0.3)
    with pytest.raises(IssuerUnavailable):
        checker.introspect(TOKEN)


def flood(checker: Introspector, count: int, caller: str, batch: str = "") -> tuple[int, int]:
    """(refused as invalid, refused as limited) for `count` made-up tokens from `caller`."""
    invalid, waits = 0, []
    for index in range(count):
        try:
            checker.introspect(f"random{batch}-{caller}-{index}", caller=caller)
        except InvalidToken:
            invalid += 1
        except IntrospectionLimited as exc:
            waits.append(exc.retry_after)
    assert all(wait >= 1 for wait in waits)
    return invalid, len(waits)


def test_a_flood_of_random_tokens_from_one_caller_cannot_make_valid_tokens_fail(issuer, clock):
    # Issue 24: every random token cost an introspection call, and the issuer's errors under
    # that load marked it down, so valid fresh tokens failed with 503.
    issuer.introspection[TOKEN] = active(issuer, aud=issuer.audience)
    issuer.introspection["fresh"] = active(issuer, aud=issuer.audience)
    checker = introspector(
        issuer,
        clock,
        caller_budget=MissBudget(per_second=1, burst=5),
        overall_budget=MissBudget(per_second=100, burst=100),
    )
    assert checker.introspect(TOKEN, caller="10.0.0.1").subject == "reporting"
    assert flood(checker, 60, "10.6.6.6") == (5, 55)
    assert issuer.introspection_calls == 1 + 5
    assert checker.introspect(TOKEN, caller="10.6.6.6").subject == "reporting"  # cached
    assert checker.introspect("fresh", caller="10.0.0.2").subject == "reporting"
    clock.now += 2  # the flooding caller's budget refills slowly
    assert flood(checker, 5, "10.6.6.6", batch="-later") == (2, 3)


def test_misses_are_limited_overall_yet_known_tokens_keep_working(issuer, clock):
    issuer.introspection[TOKEN] = active(issuer, aud=issuer.audience)
    checker = introspector(
        issuer,
        clock,
        caller_budget=MissBudget(per_second=100, burst=100),
        overall_budget=MissBudget(per_second=1, burst=10),
    )
    checker.introspect(TOKEN, caller="10.0.0.1")
    invalid = limited = 0
    for caller in range(30):  # a flood spread over many addresses
        i, lim = flood(checker, 1, f"10.8.0.{caller}")
        invalid, limited = invalid + i, limited + lim
    assert (invalid, limited) == (9, 21)
    assert checker.introspect(TOKEN, caller="10.0.0.1").subject == "reporting"
    with pytest.raises(InvalidToken):
        checker.introspect("random-10.8.0.0-0", caller="10.0.0.1")  # refused earlier: cached
    assert issuer.introspection_calls == 10


def test_unreachable_discovery_is_503(issuer, clock):
    checker = introspector(issuer, clock)
    issuer.down()
    with pytest.raises(IssuerUnavailable):
        checker.introspect(TOKEN)


def test_without_an_introspection_endpoint_an_opaque_token_is_invalid(loopback_issuer, clock):
    assert loopback_issuer.introspection is None
    with pytest.raises(InvalidToken, match="no introspection"):
        introspector(loopback_issuer, clock).introspect(TOKEN)


def test_the_validator_sends_only_non_jwts_to_introspection(issuer, clock):
    issuer.introspection[TOKEN] = active(issuer, scope="customers:read")
    discovery = Discovery(issuer.url, timeout=2)
    validator = TokenValidator(
        issuer=issuer.url,
        audience=issuer.audience,
        algorithms=["RS256"],
        keys=RemoteKeys(issuer.url, discovery=discovery, timeout=2),
        introspector=introspector(issuer, clock, discovery=discovery),
    )
    assert validator.validate(TOKEN).scopes == frozenset({"customers:read"})
    assert validator.validate(issuer.mint("orders:read")).scopes == frozenset({"orders:read"})
    assert issuer.introspection_calls == 1
    assert issuer.discovery_fetches == 1  # shared by the key cache and the introspector
    with pytest.raises(InvalidToken):
        validator.validate("a.b.c")  # JWT-shaped garbage is judged as a JWT, not introspected
    assert issuer.introspection_calls == 1
