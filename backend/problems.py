"""RFC 9457 problem+json responses: one builder for the API's error handlers and middleware and
for the health endpoints (a top-level module, so `backend.health` needs nothing of `backend.api`)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from django.http import HttpResponse

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_BASE = "https://duka.dev/problems/"


def problem_response(
    status: int,
    detail: str,
    *,
    code: str | None = None,
    title: str | None = None,
    errors: Sequence[Mapping[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> HttpResponse:
    """Render one problem document. `code` names the problem type; generic HTTP errors omit it."""
    phrase = HTTPStatus(status).phrase
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + code if code else "about:blank",
        "title": title or phrase,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = list(errors)
    response = HttpResponse(json.dumps(body), status=status, content_type=PROBLEM_CONTENT_TYPE)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


# Seconds a client waits before retrying while the database is away (a restart or a failover
# takes a few; requests succeed again within 15 s of it answering, contract section 6).
DATABASE_RETRY_AFTER_SECONDS = 5


def database_unavailable() -> HttpResponse:
    """503 while the database cannot be reached or did not answer in time: retry, not a bug."""
    return problem_response(
        503,
        "The database is unavailable or did not answer in time; retry after "
        f"{DATABASE_RETRY_AFTER_SECONDS} seconds.",
        code="database-unavailable",
        title="Database unavailable",
        headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
    )
