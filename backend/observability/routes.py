"""Names of API operations, for metric labels and log lines.

Django resolves a URL to the *first* pattern of its path, and Ninja registers one pattern per
operation on the same path view, so `request.resolver_match.view_name` names the path's first
operation whatever the method (`POST orders/` and `GET orders/` would both be `create_order`).
`operation_name` picks the operation that serves the request's method instead. Ninja has no
public way to ask; `_path_view` reads its URL callback, a layout pinned by
tests/unit/test_ninja_operation_names.py and the `django-ninja<2` bound.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from django.http import HttpRequest
from ninja.operation import PathView


@lru_cache(maxsize=512)
def _path_view(view: Callable[..., object]) -> PathView | None:
    """The Ninja PathView behind a URL callback: its view function is a closure over it."""
    for cell in getattr(view, "__closure__", None) or ():
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if isinstance(value, PathView):
            return value
    return None


def operation_name(request: HttpRequest) -> str | None:
    """`namespace:url_name` of the operation serving this request's method (Ninja routes), the
    URL name for other Django views, None when no URL matched (404)."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return None
    path_view = _path_view(match.func)
    if path_view is not None:
        for operation in path_view.operations:
            if request.method in operation.methods:
                name = operation.url_name or operation.view_func.__name__
                return ":".join([*match.namespaces, name])
    return match.view_name
