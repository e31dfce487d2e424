"""The `/api/v1/` NinjaAPI: routers, parser and error rendering."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import register_converter
from ninja import NinjaAPI, Swagger
from ninja.openapi.docs import render_template
from ninja.openapi.schema import OpenAPISchema
from ninja.operation import Operation
from ninja.parser import Parser

from backend.api.auth import ScopedBearer, register_auth_error_handlers
from backend.api.errors import register_error_handlers
from backend.api.openapi import complete_openapi
from backend.api.routers.customers import router as customers_router
from backend.api.routers.orders import router as orders_router
from backend.api.routers.sms import router as sms_router
from backend.api.routers.webhooks import router as webhooks_router


class IdConverter:
    """Path ids of at most 18 digits: anything longer cannot exist and is a plain 404."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(IdConverter, "id")


MAX_JSON_DEPTH = 32


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of parsed JSON, iteratively (a deep document cannot exhaust the stack here)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, level)
            if deepest > limit:
                break
            stack.extend(
                (child, level + 1) for child in (node.values() if isinstance(node, dict) else node)
            )
    return deepest


class DecimalJSONParser(Parser):
    """Numbers with a fraction become Decimal, so `amount: 1500.10` is never rounded through float.

    Any failure here is reported by Ninja as a 400 "cannot parse", before validation or a query.
    """

    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        data = json.loads(request.body, parse_float=Decimal)
        if _depth(data, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
            raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        return data


class ScopedOpenAPISchema(OpenAPISchema):
    """Lists each operation's required scope, which Ninja leaves empty, so Swagger UI asks for it."""

    def operation_security(self, operation: Operation) -> list[dict[str, Any]] | None:
        security = super().operation_security(operation)
        if not security:
            return security
        scopes = [auth.scope for auth in operation.auth_callbacks if isinstance(auth, ScopedBearer)]
        return [{name: scopes for name in requirement} for requirement in security]


def camel_case(name: str) -> str:
    """`place_order` -> `placeOrder`: operation ids as the contract lists them (section 5)."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


class DukaAPI(NinjaAPI):
    def get_openapi_operation_id(self, operation: Operation) -> str:
        """The view's name in camelCase, so a new view is named by its function (Ninja's default,
        `backend_api_routers_orders_place_order`, would leak our module tree into every SDK)."""
        return camel_case(operation.view_func.__name__)

    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None
    ) -> OpenAPISchema:
        if path_prefix is None:
            path_prefix = self.get_root_path(path_params or {})
        schema = ScopedOpenAPISchema(self, path_prefix)
        complete_openapi(schema)
        return schema


def swagger_settings() -> dict[str, Any]:
    """Swagger UI pre-fills the client id only: a secret in a public page would not be secret."""
    oauth: dict[str, Any] = {
        "scopes": ["customers:read", "customers:write", "orders:read", "orders:write"]
    }
    if settings.OIDC_CLIENT_ID:
        oauth["clientId"] = settings.OIDC_CLIENT_ID
    return {"persistAuthorization": True, "dukaOAuth": oauth}


class DukaSwagger(Swagger):
    """Ninja's Swagger page with its settings read per request rather than frozen at import, so
    the client the quick start creates just before serving is the one pre-filled. The API
    authenticates by bearer token only, never by session cookie, so the page sends no CSRF token
    (backend/templates/ninja/swagger.html has no CSRF attributes)."""

    def render_page(self, request: HttpRequest, api: NinjaAPI, **kwargs: Any) -> HttpResponse:
        page_settings = {
            **self.settings,
            **swagger_settings(),
            "url": self.get_openapi_url(api, kwargs),
        }
        context = {
            # Embedded in a <script> element: no `<` may close it early.
            "swagger_settings": json.dumps(page_settings, indent=1).replace("<", "\\u003c"),
            "api": api,
        }
        return render_template(request, self.template, self.template_cdn, context)


api = DukaAPI(
    title="Duka API",
    version="1.0.0",
    description="Customers and orders, with an SMS to the customer for every order.",
    urls_namespace="api-v1",
    parser=DecimalJSONParser(),
    docs_url="/docs",
    docs=DukaSwagger(settings={"persistAuthorization": True}),
    openapi_url="/openapi.json",
)
register_error_handlers(api)
register_auth_error_handlers(api)
api.add_router("/customers", customers_router)
api.add_router("/orders", orders_router)
api.add_router("/sms", sms_router)
api.add_router("/webhooks", webhooks_router)
