"""Contract with Ninja's URL layout, which `backend.observability.routes` relies on.

Ninja's URL callback for a path closes over a `PathView` holding the path's operations; `operation_name` reads it to name the operation serving a request's method (the
`view` of metrics and log lines). No database, no service: nothing can skip this. A failure
means Ninja changed that layout: fix `routes._path_view` and the `django-ninja<2` bound.
"""

from __future__ import annotations

from types import SimpleNamespace

from django.http import HttpRequest
from ninja import NinjaAPI

from backend.observability.routes import operation_name

NAMESPACE = "contract-routes"


def test_operation_name_is_the_operation_serving_the_method():
    api = NinjaAPI(urls_namespace=NAMESPACE)

    @api.get("/things/", url_name="list_things")
    def list_things(request: HttpRequest) -> list[int]:
        return []

    @api.post("/things/", url_name="create_thing")
    def create_thing(request: HttpRequest) -> int:
        return 1

    # Django resolves a path to its first pattern (Ninja adds one per operation, same callback).
    pattern = next(p for p in api.urls[0] if str(p.pattern) == "things/")

    def name(method: str) -> str | None:
        match = SimpleNamespace(
            func=pattern.callback, namespaces=[NAMESPACE], view_name=f"{NAMESPACE}:{pattern.name}"
        )
        return operation_name(SimpleNamespace(method=method, resolver_match=match))

    assert name("GET") == f"{NAMESPACE}:list_things"
    assert name("POST") == f"{NAMESPACE}:create_thing"
    # No operation for the method (Ninja answers 405): the URL's own name.
    assert name("DELETE") == f"{NAMESPACE}:{pattern.name}"
