"""Exception handlers: every error leaves the API as RFC 9457 problem+json."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import (
    BadRequest,
    RequestDataTooBig,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from ninja import NinjaAPI
from ninja.errors import HttpError, ValidationError

from backend.dbconnections import close_broken
from backend.errors import DomainError, InvalidField
from backend.problems import database_unavailable, problem_response

logger = logging.getLogger("duka.api")

# Ninja wraps a body schema under the parameter name; clients know fields, not our parameter names.
BODY_PARAM = "payload"


def _loc(loc: Any) -> list[str | int]:
    parts = list(loc) if isinstance(loc, list | tuple) else [loc]
    if len(parts) >= 2 and parts[0] == "body" and parts[1] == BODY_PARAM:
        del parts[1]
    return parts


def _msg(error: dict[str, Any]) -> str:
    msg = str(error.get("msg", "invalid value"))
    return msg.removeprefix("Value error, ")


def _validation(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    errors = [{"loc": _loc(e.get("loc", [])), "msg": _msg(e)} for e in exc.errors]
    names = ", ".join(".".join(str(p) for p in e["loc"][1:]) or str(e["loc"][0]) for e in errors)
    return problem_response(
        422,
        f"Request validation failed: {names}.",
        code="validation-error",
        title="Validation failed",
        errors=errors,
    )


def _domain(request: HttpRequest, exc: DomainError) -> HttpResponse:
    errors = None
    if isinstance(exc, InvalidField):
        errors = [{"loc": ["body", exc.field], "msg": exc.detail}]
    return problem_response(
        exc.status, exc.detail, code=exc.code, title=exc.title, errors=errors, headers=exc.headers
    )


def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    detail = str(exc.message) if hasattr(exc, "message") else str(exc)
    if exc.status_code == 400 and detail.startswith("Cannot parse request body"):
        return problem_response(
            400,
            "The request body is not valid JSON (or is nested more than 32 levels deep).",
            code="malformed-json",
        )
    return problem_response(exc.status_code, detail)


def _unreadable_body(request: HttpRequest, exc: Exception) -> HttpResponse:
    # Django refuses to parse the form body: a multipart body without a usable boundary, a form
    # that is not UTF-8, too many fields. The client's fault, never a 500.
    return problem_response(
        400,
        "The request body cannot be read as the Content-Type it declares "
        f"({request.META.get('CONTENT_TYPE', '')[:100]!r}).",
        code="malformed-body",
        title="Malformed request body",
    )


def _not_found(request: HttpRequest, exc: Exception) -> HttpResponse:
    return problem_response(404, "No such resource.")


# Every way the database can be away or too slow: refused, reset, terminated, timed out.
DATABASE_AWAY = (OperationalError, InterfaceError)


def database_away(request: HttpRequest, exc: Exception) -> HttpResponse:
    """A 503 with Retry-After, never a 500: the request may succeed once the database is
    back. The connection that failed is closed, so the next request connects afresh."""
    logger.warning(
        "Database unavailable on %s %s (%s: %s)",
        request.method,
        request.path,
        type(exc).__name__,
        str(exc).strip().splitlines()[0] if str(exc).strip() else "",
    )
    close_broken()
    return database_unavailable()


def _unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    # Logged with its traceback for operators; the client sees no internals.
    logger.exception("Unhandled error on %s %s", request.method, request.path)
    return problem_response(500, "An unexpected error occurred; it has been logged.")


def register_error_handlers(api: NinjaAPI) -> None:
    api.add_exception_handler(ValidationError, _validation)
    api.add_exception_handler(DomainError, _domain)
    api.add_exception_handler(HttpError, _http_error)
    api.add_exception_handler(Http404, _not_found)
    for unreadable in (
        MultiPartParserError,
        BadRequest,
        TooManyFieldsSent,
        TooManyFilesSent,
        RequestDataTooBig,
    ):
        api.add_exception_handler(unreadable, _unreadable_body)
    for away in DATABASE_AWAY:
        api.add_exception_handler(away, database_away)
    api.add_exception_handler(Exception, _unexpected)
