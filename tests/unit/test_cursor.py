import pytest

from backend.errors import BadRequest
from backend.queries.pagination import decode_cursor, encode_cursor


def test_round_trip():
    cursor = encode_cursor("orders", {"customer_id": 3}, ["2026-11-27T08:30:00+00:00", 41])
    assert decode_cursor(cursor, "orders", {"customer_id": 3}) == ["2026-11-27T08:30:00+00:00", 41]


def test_cursor_is_opaque():
    cursor = encode_cursor("customers", {}, [12345])
    assert "12345" not in cursor


@pytest.mark.parametrize("cursor", ["", "abc", "a" * 500, "eyJrIjpbMV19", "::::", "\u00e9\u00e9"])
def test_garbage_is_a_bad_request(cursor):
    with pytest.raises(BadRequest):
        decode_cursor(cursor, "customers", {})


def test_tampered_cursor_is_a_bad_request():
    cursor = encode_cursor("customers", {}, [10])
    flipped = cursor[:-2] + ("A" if cursor[-2] != "A" else "B") + cursor[-1]
    with pytest.raises(BadRequest):
        decode_cursor(flipped, "customers", {})


def test_cursor_from_other_filters_is_refused():
    cursor = encode_cursor("orders", {"customer_id": 1}, ["2026-11-27T08:30:00+00:00", 5])
    with pytest.raises(BadRequest, match="different"):
        decode_cursor(cursor, "orders", {"customer_id": 2})
    with pytest.raises(BadRequest, match="different"):
        decode_cursor(cursor, "customers", {"customer_id": 1})


def test_fingerprints_are_the_digest_of_the_filters():
    from datetime import UTC, datetime, timedelta, timezone

    from backend.queries import pagination

    utc = datetime(2026, 11, 27, 5, tzinfo=UTC)
    eat = utc.astimezone(timezone(timedelta(hours=3)))  # the same instant, another rendering
    for filters in ({}, {"code": None, "search": "x"}, {"customer_id": 3}, {"since": utc}):
        for _ in range(2):  # computed, then memoised where it is
            assert pagination._fingerprint("orders", filters) == pagination._digest(
                "orders", filters
            )
    assert pagination._fingerprint("orders", {"since": utc}) != pagination._fingerprint(
        "orders", {"since": eat}
    )
    cursor = encode_cursor("orders", {"since": eat}, [1])
    with pytest.raises(BadRequest):
        decode_cursor(cursor, "orders", {"since": utc})


def test_the_signer_follows_the_secret_key_and_its_fallbacks(settings):
    cursor = encode_cursor("customers", {}, [10])
    old_key = settings.SECRET_KEY
    settings.SECRET_KEY = "another-" * 8
    with pytest.raises(BadRequest):
        decode_cursor(cursor, "customers", {})
    settings.SECRET_KEY_FALLBACKS = [old_key]
    assert decode_cursor(cursor, "customers", {}) == [10]
