"""Keyset pagination with opaque, signed cursors.

A cursor carries the last row's sort key and a fingerprint of the filters it was made for; it is
signed, so a tampered or foreign cursor is a 400, never a database error.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Generic, TypeVar

from django.conf import settings
from django.core import signing

from backend.errors import BadRequest

T = TypeVar("T")
_SALT = "duka.cursor.v1"
DEFAULT_LIMIT = 50
MAX_LIMIT = 200


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def page_body(items: list[str], next_cursor: str | None) -> bytes:
    """A page's JSON (`OrderPage`, `CustomerPage`) from its items' JSON, as pydantic writes it."""
    return f'{{"items":[{",".join(items)}],"next_cursor":{json.dumps(next_cursor)}}}'.encode()


def _fingerprint(scope: str, filters: dict[str, Any]) -> str:
    # Filters repeat (most pages are unfiltered): memoised when every value is None, an int or a
    # str, whose equality is their JSON's (equal datetimes in two time zones are not: they
    # render apart, so they are digested every time).
    if all(value is None or type(value) in (int, str) for value in filters.values()):
        return _memoised(scope, tuple(filters.items()))
    return _digest(scope, filters)


@lru_cache(maxsize=256)
def _memoised(scope: str, items: tuple[tuple[str, Any], ...]) -> str:
    return _digest(scope, dict(items))


def _digest(scope: str, filters: dict[str, Any]) -> str:
    raw = json.dumps([scope, filters], sort_keys=True, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


@lru_cache(maxsize=4)
def _signer(key: str | bytes, fallback_keys: tuple[str | bytes, ...]) -> signing.TimestampSigner:
    return signing.TimestampSigner(key=key, salt=_SALT, fallback_keys=list(fallback_keys))


def _cursor_signer() -> signing.TimestampSigner:
    """`signing.dumps/loads`' signer, made once per key set instead of per cursor (its settings
    lookups were a tenth of a cursor's cost); a changed SECRET_KEY or fallback list makes a new
    one, as `signing.dumps/loads` would."""
    return _signer(settings.SECRET_KEY, tuple(settings.SECRET_KEY_FALLBACKS))


def encode_cursor(scope: str, filters: dict[str, Any], key: list[Any]) -> str:
    # `signing.dumps(..., salt=_SALT, compress=True)`, the same text.
    return _cursor_signer().sign_object(
        {"f": _fingerprint(scope, filters), "k": key}, compress=True
    )


def decode_cursor(cursor: str, scope: str, filters: dict[str, Any]) -> list[Any]:
    try:
        data = _cursor_signer().unsign_object(cursor)
    except (signing.BadSignature, ValueError, UnicodeError):
        raise BadRequest("The cursor is malformed or was tampered with.") from None
    if not isinstance(data, dict) or not isinstance(data.get("k"), list):
        raise BadRequest("The cursor is malformed.")
    if data.get("f") != _fingerprint(scope, filters):
        raise BadRequest(
            "The cursor belongs to a different list or filter; start again without it."
        )
    return data["k"]
