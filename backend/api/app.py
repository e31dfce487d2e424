"""The `/api/v1/` NinjaAPI: routers, parser and error rendering."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from django.http import HttpRequest
from django.urls import register_converter
from ninja import NinjaAPI
from ninja.parser import Parser

from backend.api.auth import register_auth_error_handlers
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


api = NinjaAPI(
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
