"""Request guards and the last line of RFC 9457: no error leaves without a problem document."""

from __future__ import annotations

import functools
from collections.abc import Callable
from http import HTTPStatus
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from backend.api.errors import DATABASE_AWAY, database_away
from backend.dbconnections import drop_dead
from backend.problems import PROBLEM_CONTENT_TYPE, problem_response

# OAuth endpoints answer with RFC 6749 error JSON, which clients of /o/ expect; the back-office
# answers people with HTML pages.
_PASSTHROUGH_PREFIXES = ("/o/", "/static/", "/admin/")
_JSON_PREFIX = "/api/"
_FORM_PATHS = ("/api/v1/sms/",)  # Africa's Talking posts form-encoded delivery reports
_BODY_METHODS = {"POST", "PUT", "PATCH"}
_KEEP_HEADERS = ("Allow", "WWW-Authenticate", "Retry-After")


_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _is_form(content_type: str) -> bool:
    return _media_type(content_type) in _FORM_TYPES


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class ProblemDetailsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refused = self._refuse(request)
        response = refused if refused is not None else self.get_response(request)
        if response.status_code >= 400 and not response.get("Content-Type", "").startswith(
            PROBLEM_CONTENT_TYPE
        ):
            # OAuth errors under /o/ keep their RFC 6749 JSON; only bodiless errors get a problem.
            passthrough = request.path.startswith(_PASSTHROUGH_PREFIXES)
            if not passthrough or (not response.streaming and not response.content):
                return self._as_problem(response)
        return response

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        """A view outside Ninja (the token endpoint, /metrics) failing on the database."""
        return database_away(request, exc) if isinstance(exc, DATABASE_AWAY) else None

    def _refuse(self, request: HttpRequest) -> HttpResponse | None:
        """Reject oversized and non-JSON bodies before anything reads them."""
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return problem_response(400, "Content-Length is not a number.")
        if length > settings.MAX_REQUEST_BODY_BYTES:
            return problem_response(
                413, f"The request body is larger than {settings.MAX_REQUEST_BODY_BYTES} bytes."
            )
        if length > 0 and request.method in _BODY_METHODS and request.path.startswith(_JSON_PREFIX):
            content_type = request.META.get("CONTENT_TYPE", "")
            if request.path.startswith(_FORM_PATHS):
                if not _is_form(content_type):
                    return problem_response(
                        415,
                        "The request body must be form data (application/x-www-form-urlencoded "
                        "or multipart/form-data).",
                    )
            elif not _is_json(content_type):
                return problem_response(
                    415, "The request body must be JSON (Content-Type: application/json)."
                )
        return None

    @staticmethod
    def _as_problem(response: HttpResponse) -> HttpResponse:
        status = response.status_code
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
        details = {
            400: "The request could not be understood (check the Host header and the request syntax).",
            404: "No such resource.",
            405: "This method is not allowed on this resource.",
        }
        problem = problem_response(status, details.get(status, phrase))
        for name in _KEEP_HEADERS:
            if name in response:
                problem[name] = response[name]
        return problem


class StaleConnectionMiddleware:
    """Before each request, closes the persistent database connections the server dropped
    while they were idle (a restart, a failover), so the request reconnects instead of failing
    on them (backend.dbconnections.drop_dead: no round trip unless the socket says so)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        drop_dead()
        return self.get_response(request)


class ContentSecurityPolicyMiddleware:
    """API responses may load nothing; the docs page and the back-office load only their own
    assets (served locally: no CDN, no inline script or style)."""

    API_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            if request.path.startswith("/admin/"):
                policy = _page_policies(settings.OIDC_ISSUER)[1]
            elif request.path == "/api/v1/docs" or request.path.startswith("/static/"):
                policy = _page_policies(settings.OIDC_ISSUER)[0]
            else:
                policy = self.API_POLICY
            response["Content-Security-Policy"] = policy
        return response


@functools.lru_cache(maxsize=4)
def _page_policies(issuer: str | None) -> tuple[str, str]:
    """The docs page's and the back-office's policies for this issuer."""
    issuer_origin = f" {_origin(issuer)}" if issuer else ""
    # Swagger UI's Authorize calls the token endpoint of the issuer from the browser.
    docs = (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        f"script-src 'self'; connect-src 'self'{issuer_origin}; frame-ancestors 'none'; "
        "base-uri 'self'; form-action 'self'"
    )
    # The sign-out form is answered with a redirect to the issuer's end_session_endpoint,
    # which browsers check against form-action too.
    admin = (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"font-src 'self'; connect-src 'self'; form-action 'self'{issuer_origin}; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    return docs, admin


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
