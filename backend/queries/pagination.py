"""Keyset pagination with opaque, signed cursors.

A cursor carries the last row's sort key and a fingerprint of the filters it was made for; it is
signed, so a tampered or foreign cursor is a 400, never a database error.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

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


def _fingerprint(scope: str, filters: dict[str, Any]) -> str:
    raw = json.dumps([scope, filters], sort_keys=True, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def encode_cursor(scope: str, filters: dict[str, Any], key: list[Any]) -> str:
    return signing.dumps({"f": _fingerprint(scope, filters), "k": key}, salt=_SALT, compress=True)


def decode_cursor(cursor: str, scope: str, filters: dict[str, Any]) -> list[Any]:
    try:
        data = signing.loads(cursor, salt=_SALT)
    except (signing.BadSignature, ValueError, UnicodeError):
        raise BadRequest("The cursor is malformed or was tampered with.") from None
    if not isinstance(data, dict) or not isinstance(data.get("k"), list):
        raise BadRequest("The cursor is malformed.")
    if data.get("f") != _fingerprint(scope, filters):
        raise BadRequest(
            "The cursor belongs to a different list or filter; start again without it."
        )
    return data["k"]
