"""Django-level error views, so errors outside Ninja are problem+json too."""

from __future__ import annotations

import sys

from django.http import HttpRequest, HttpResponse

from backend.api.errors import DATABASE_AWAY, database_away
from backend.problems import problem_response


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return problem_response(400, "The request could not be understood (check the Host header).")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return problem_response(404, "No such resource.")


def server_error(request: HttpRequest) -> HttpResponse:
    # Django calls this while handling the exception: one raised outside a view (a middleware)
    # because the database is away is a 503 like any other.
    exc = sys.exc_info()[1]
    if isinstance(exc, DATABASE_AWAY):
        return database_away(request, exc)
    return problem_response(500, "An unexpected error occurred; it has been logged.")
