"""The validator's memory of accepted tokens: a repeat costs a lookup, never a weaker check."""

from __future__ import annotations

import time

import pytest

from backend.integrations.oidc import InvalidToken, RemoteKeys, TokenValidator
from tests.fixtures.auth import LoopbackIssuer


def make_validator(issuer: LoopbackIssuer) -> TokenValidator:
    return TokenValidator(
        issuer=issuer.url,
        audience=issuer.audience,
        algorithms=("RS256",),
        keys=RemoteKeys(issuer.url, timeout=2),
    )


def test_a_repeated_token_is_answered_from_memory(loopback_issuer):
    validator = make_validator(loopback_issuer)
    token = loopback_issuer.mint("orders:read", sub="alice")
    first = validator.validate(token)
    assert validator.validate(token) is first
    assert loopback_issuer.jwks_fetches == 1


def test_a_token_past_its_exp_is_checked_again(loopback_issuer):
    validator = make_validator(loopback_issuer)
    # Expired 5 s ago: still inside the 30 s leeway, so accepted, but never from memory.
    token = loopback_issuer.mint("orders:read", exp=int(time.time()) - 5)
    first = validator.validate(token)
    assert validator.validate(token) is not first


def test_only_accepted_tokens_are_remembered(loopback_issuer):
    validator = make_validator(loopback_issuer)
    expired = loopback_issuer.mint("orders:read", exp=int(time.time()) - 3600)
    for _ in range(2):
        with pytest.raises(InvalidToken, match="expired"):
            validator.validate(expired)
    other_audience = loopback_issuer.mint("orders:read", aud="someone-else")
    for _ in range(2):
        with pytest.raises(InvalidToken, match="aud"):
            validator.validate(other_audience)


def test_a_token_whose_key_was_rotated_out_is_refused_despite_the_memory(loopback_issuer):
    keys = RemoteKeys(loopback_issuer.url, timeout=2, refresh_cooldown=0, max_age=0)
    validator = TokenValidator(
        issuer=loopback_issuer.url,
        audience=loopback_issuer.audience,
        algorithms=("RS256",),
        keys=keys,
    )
    old_token = loopback_issuer.mint("orders:read")
    validator.validate(old_token)
    loopback_issuer.rotate()
    deadline = time.monotonic() + 5
    refusal = None
    while time.monotonic() < deadline and refusal is None:
        try:
            validator.validate(old_token)  # each call looks the key up, which refreshes the set
        except InvalidToken as exc:
            refusal = exc.reason
        time.sleep(0.02)
    assert refusal is not None
    assert "unknown key" in refusal
    assert validator.validate(loopback_issuer.mint("orders:read")).subject == "test-user"


def test_memory_is_bounded(loopback_issuer):
    validator = make_validator(loopback_issuer)
    validator.VERIFIED_TOKENS = 3
    for n in range(10):
        validator.validate(loopback_issuer.mint("orders:read", sub=f"user-{n}"))
        assert len(validator._verified) <= 3
