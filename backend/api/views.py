"""Django-level error views, so errors outside Ninja are problem+json too."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from backend.problems import problem_response


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return problem_response(400, "The request could not be understood (check the Host header).")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return problem_response(404, "No such resource.")


def server_error(request: HttpRequest) -> HttpResponse:
    return problem_response(500, "An unexpected error occurred; it has been logged.")
