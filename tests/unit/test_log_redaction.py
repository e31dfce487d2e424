"""`redact` skips its substitutions only for text none of them could change."""

from __future__ import annotations

import random
import string

import pytest

from backend.observability.logging import _may_hold_secret, _redact_all, redact

SECRETS = [
    "Authorization: Bearer abcdefghijklmnop",
    "basic dXNlcjpwYXNzd29yZA==",
    "jwt eyJhbGciOi.eyJzdWIiOi.c2ln in text",
    "/api/v1/sms/delivery-reports/?token=s3cr3t&x=1",
    "AT said apiKey: at-key-0987654321",
    "api_key=abc",
    "client_secret=xyz",
    "PASSWORD=hunter2",
    "SMS to +254712345678 sent",
    "call 0712 345 678 now",
    "/api/v1/customers/+254712345678/",
    "/api/v1/customers/0712345678/",
    "\u017fecret=abc",  # a long s: `(?i)` matches it as an s, str.lower() does not
]
ORDINARY = [
    "GET /api/v1/orders/123456/ 200 0.4ms",
    "POST /api/v1/orders/ 201 12.5ms",
    "/api/v1/orders/1050/",
    "api-v1:get_order",
    "/api/v1/orders/<int:order_id>/",
    "order #1042 for customer 17: 3 items, KES 1500.00",
]


@pytest.mark.parametrize("text", SECRETS + ORDINARY)
def test_same_result_as_every_substitution(text):
    assert redact(text) == _redact_all(text)


@pytest.mark.parametrize("text", SECRETS)
def test_secrets_take_the_full_path(text):
    assert _may_hold_secret(text)
    assert redact(text) != text


@pytest.mark.parametrize("text", ORDINARY)
def test_request_lines_skip_the_substitutions(text):
    assert not _may_hold_secret(text)


def test_random_text_gives_the_same_result_as_every_substitution():
    # Pieces that start or complete a pattern, glued at random: any text a pattern would
    # change must be caught by the pre-check.
    pieces = [
        *"+0123456789 .-_=:/'\"&;",
        "bearer ",
        "Basic ",
        "eyJ",
        "abcdEFGH",
        "token",
        "apiKey",
        "api_key",
        "Secret",
        "passWord",
        "\u017f",
        "\u212a",
        "0712",
        "+254",
        "345678",
    ]
    rng = random.Random(11)
    alphabet = string.ascii_letters + string.digits
    for _ in range(20_000):
        text = "".join(
            rng.choice(pieces) if rng.random() < 0.6 else rng.choice(alphabet)
            for _ in range(rng.randint(1, 30))
        )
        assert redact(text) == _redact_all(text), text
