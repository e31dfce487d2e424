"""Makes the caller known to read routing, and records the WAL position after its writes."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from backend.replicas import routing


class ReadYourWritesMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not routing.configured():
            return self.get_response(request)
        token = routing.bind_request(request)
        try:
            response = self.get_response(request)
        finally:
            routing.unbind_request(token)
        # A refused request changed nothing; a successful one has committed by now.
        if request.method in routing.WRITE_METHODS and response.status_code < 400:
            subject = getattr(getattr(request, "auth", None), "subject", None)
            if isinstance(subject, str) and subject:
                routing.record_write(subject)
        return response
