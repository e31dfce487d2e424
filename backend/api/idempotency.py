"""`Idempotency-Key` handling for POSTs: claim, run the command, remember the response."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse
from ninja import Schema

from backend.commands.idempotency import (
    IdempotencyClaim,
    Replay,
    claim_key,
    release_claim,
    store_response,
)
from backend.errors import BadRequest

HEADER = "Idempotency-Key"


@dataclass(frozen=True)
class Created:
    """What a command wrote, rendered from its own values: no read-back query for the body."""

    resource_id: int
    body: bytes


def _created(body: bytes, location: str | None, *, replayed: bool, status: int) -> HttpResponse:
    response = HttpResponse(body, status=status, content_type="application/json")
    if location is not None:
        response["Location"] = location
    if replayed:
        response["Idempotent-Replayed"] = "true"
    return response


def _valid_key(key: str) -> str:
    if not 1 <= len(key) <= 255 or not all(" " <= ch <= "~" for ch in key):
        raise BadRequest(f"{HEADER} must be 1-255 printable ASCII characters.")
    return key


def create(
    request: HttpRequest,
    *,
    endpoint: str,
    payload: Schema | None,
    execute: Callable[[IdempotencyClaim | None], int | Created],
    render: Callable[[int], bytes],
    location: Callable[[int], str] | None,
    status: int = 201,
) -> HttpResponse:
    """Run a command once per (subject, endpoint, key); repeats get the first response.
    `payload` is what must match for a repeat (None: the endpoint's path says it all).
    `execute` returns the new resource's id (`render` then reads it) or a `Created`."""

    def run(claim: IdempotencyClaim | None) -> tuple[int, bytes]:
        result = execute(claim)
        if isinstance(result, Created):
            return result.resource_id, result.body
        return result, render(result)

    def respond(resource_id: int, body: bytes, *, replayed: bool) -> HttpResponse:
        where = location(resource_id) if location is not None else None
        return _created(body, where, replayed=replayed, status=status)

    raw_key = request.headers.get(HEADER)
    if raw_key is None:
        resource_id, body = run(None)
        return respond(resource_id, body, replayed=False)
    key = _valid_key(raw_key)
    fingerprint = hashlib.sha256(
        json.dumps(
            payload.model_dump(mode="json", exclude_none=True) if payload else {}, sort_keys=True
        ).encode()
    ).hexdigest()
    subject = str(getattr(request.auth, "subject", ""))
    outcome = claim_key(subject=subject, endpoint=endpoint, key=key, fingerprint=fingerprint)
    if isinstance(outcome, Replay):
        body = outcome.body.encode() if outcome.body is not None else render(outcome.resource_id)
        return respond(outcome.resource_id, body, replayed=True)
    try:
        resource_id, body = run(outcome)
    except BaseException:
        release_claim(outcome)
        raise
    store_response(outcome, body.decode())
    return respond(resource_id, body, replayed=False)
