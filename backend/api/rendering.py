"""JSON responses: the resources render themselves (`backend.queries.resources`); the webhook
endpoints' bodies are plain dicts."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from django.http import HttpResponse

from backend.notifications.events import timestamp as timestamp
from backend.queries.pagination import Page

T = TypeVar("T")
CONTENT_TYPE = "application/json; charset=utf-8"


def page(result: Page[T], item: Callable[[T], dict[str, Any]]) -> dict[str, Any]:
    return {"items": [item(view) for view in result.items], "next_cursor": result.next_cursor}


def json_response(body: bytes | dict[str, Any], *, status: int = 200) -> HttpResponse:
    """`body` is JSON already (a resource's `body()`) or a dict to encode."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return HttpResponse(content, status=status, content_type=CONTENT_TYPE)
