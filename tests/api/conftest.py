from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client


class Api:
    """Thin JSON client for `/api/v1/` with a token carrying every scope."""

    def __init__(self, client: Client, headers: dict[str, str]) -> None:
        self.client = client
        self.headers = headers

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | str | None = None,
        content_type: str = "application/json",
        **headers: str,
    ):
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        kwargs: dict[str, Any] = {**self.headers, **headers}
        if data is not None:
            kwargs["data"] = data
            kwargs["content_type"] = content_type
        return getattr(self.client, method.lower())(f"/api/v1/{path}", **kwargs)

    def post(self, path: str, body: Any = None, **kw: Any):
        return self.call("POST", path, body, **kw)

    def get(self, path: str, **kw: Any):
        return self.call("GET", path, **kw)


@pytest.fixture
def api(client: Client, all_scopes_headers: dict[str, str]) -> Api:
    return Api(client, all_scopes_headers)
