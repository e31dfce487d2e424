"""The service's URLs behind four bench-only views (`bench/run.py --floor`).

They measure what any read costs before the API does its own work, under the same server and
middleware as `/healthz` and the API: `floor_sql` is a plain Django view that runs exactly the
order read's query (`backend.queries.orders.get_order`) and returns its body, without the
bearer-token check, Ninja, the ETag or the problem handling; `floor_body` returns a body of the
same size without the database; `floor_orders` and `floor_customers` return the first page of 50
exactly as the API's pages make it (`list_orders` / `list_customers`: the statement, the cursor
signed, the body rendered). An API read can be no cheaper than its
floor, so the floor's ratio to `/healthz` bounds the read's.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path

from backend.errors import NotFound
from backend.queries import customers, orders
from backend.urls import handler400, handler404, handler500
from backend.urls import urlpatterns as service_urls

CONTENT_TYPE = "application/json"
# A seeded order's document is about this size (the order read returns 250-300 bytes).
BODY = (
    b'{"id":123456,"customer_id":812,"customer_code":"CUST-00812","customer_name":'
    b'"Customer 812","item":"Maize flour 2kg","amount":"1234.56","note":null,'
    b'"time":"2026-12-06T12:00:00.123Z","sms_status":"sent","sms_error":null}'
)


def floor_sql(request: HttpRequest, order_id: int) -> HttpResponse:
    try:
        return HttpResponse(orders.get_order(order_id), content_type=CONTENT_TYPE)
    except NotFound:
        return HttpResponse(b"{}", status=404, content_type=CONTENT_TYPE)


def floor_orders(request: HttpRequest) -> HttpResponse:
    return HttpResponse(orders.list_orders(limit=50), content_type=CONTENT_TYPE)


def floor_customers(request: HttpRequest) -> HttpResponse:
    return HttpResponse(customers.list_customers(limit=50), content_type=CONTENT_TYPE)


def floor_body(request: HttpRequest, order_id: int) -> HttpResponse:
    return HttpResponse(BODY, content_type=CONTENT_TYPE)


# In front, so the floor's URL resolution is as cheap as it can be (the bound stays an upper one).
urlpatterns = [
    path("bench/floor/sql/<int:order_id>/", floor_sql),
    path("bench/floor/body/<int:order_id>/", floor_body),
    path("bench/floor/orders/", floor_orders),
    path("bench/floor/customers/", floor_customers),
    *service_urls,
]
__all__ = ["handler400", "handler404", "handler500", "urlpatterns"]
