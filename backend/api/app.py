"""The `/api/v1/` NinjaAPI: routers, parser and error rendering."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from django.http import HttpRequest
from django.urls import register_converter
from ninja import NinjaAPI
from ninja.openapi.schema import OpenAPISchema
from ninja.operation import Operation
from ninja.parser import Parser

from backend.api.auth import ScopedBearer, register_auth_error_handlers
from backend.api.errors import register_error_handlers
from backend.api.routers.customers import router as customers_router
from backend.api.routers.orders import router as orders_router


class IdConverter:
    """Path ids of at most 18 digits: anything longer cannot exist and is a plain 404."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(IdConverter, "id")


class DecimalJSONParser(Parser):
    """Numbers with a fraction become Decimal, so `amount: 1500.10` is never rounded through float."""

    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        return json.loads(request.body, parse_float=Decimal)


class ScopedOpenAPISchema(OpenAPISchema):
    """Lists each operation's required scope, which Ninja leaves empty, so Swagger UI asks for it."""

    def operation_security(self, operation: Operation) -> list[dict[str, Any]] | None:
        security = super().operation_security(operation)
        if not security:
            return security
        scopes = [auth.scope for auth in operation.auth_callbacks if isinstance(auth, ScopedBearer)]
        return [{name: scopes for name in requirement} for requirement in security]


class DukaAPI(NinjaAPI):
    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None
    ) -> OpenAPISchema:
        if path_prefix is None:
            path_prefix = self.get_root_path(path_params or {})
        return ScopedOpenAPISchema(self, path_prefix)


api = DukaAPI(
    title="Duka API",
    version="1.0.0",
    description="Customers and orders, with an SMS to the customer for every order.",
    urls_namespace="api-v1",
    parser=DecimalJSONParser(),
    docs_url="/docs",
    openapi_url="/openapi.json",
)
register_error_handlers(api)
register_auth_error_handlers(api)
api.add_router("/customers", customers_router)
api.add_router("/orders", orders_router)
