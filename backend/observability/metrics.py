"""The web's Prometheus metrics: Duka's own, operation-aware route labels, and `/metrics`.

Under gunicorn every worker process counts into its own files in PROMETHEUS_MULTIPROC_DIR
(set up by `backend/gunicorn.conf.py`), and `/metrics` sums them, so whichever process answers
a scrape reports the totals of all. Values that live in the database, such as the outbox
backlog, are read at scrape time instead: they are the same whichever process reads them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from time import perf_counter
from typing import Any

from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.views.decorators.http import require_GET
from django_prometheus.middleware import Metrics
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from backend.health import BrokerUpCollector
from backend.observability.routes import operation_name

logger = logging.getLogger(__name__)

ORDERS_CREATED = Counter(
    "duka_orders_created",
    "Orders created (counted once their transaction has committed; replays of an "
    "Idempotency-Key and bulk seeding are not counted).",
)
OUTBOX_QUERY_TIMEOUT_MS = 2000


def count_created_order(*, sender: object, **kwargs: Any) -> None:
    """`order_placed` receiver: counts the order once its write commits (at once in autocommit),
    so a rolled-back order is never counted. Instrumentation, not business flow, hence a signal."""
    transaction.on_commit(ORDERS_CREATED.inc)


class OutboxPendingCollector(Collector):
    """`duka_outbox_pending`: SMS notifications not yet accepted by the gateway, counted on the
    partial index of pending rows at scrape time. Left out of the scrape (with a warning) when
    the database does not answer in time, rather than failing every other metric."""

    def collect(self) -> Iterator[Metric]:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                if connection.vendor == "postgresql":
                    cursor.execute(f"SET LOCAL statement_timeout = {OUTBOX_QUERY_TIMEOUT_MS}")
                # By table name: observability imports nothing of the write side.
                cursor.execute("SELECT COUNT(*) FROM sms_notifications WHERE status = 'pending'")
                (pending,) = cursor.fetchone()
        except Exception as exc:
            logger.warning("duka_outbox_pending not scraped: %s: %s", type(exc).__name__, exc)
            return
        yield GaugeMetricFamily(
            "duka_outbox_pending",
            "SMS notifications still pending: not yet accepted by the gateway.",
            value=pending,
        )


class _Collectors:
    """Several collectors seen as one registry by `generate_latest`."""

    def __init__(self, collectors: Iterable[Any]) -> None:
        self._collectors = list(collectors)

    def collect(self) -> Iterator[Metric]:
        for collector in self._collectors:
            yield from collector.collect()


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def exposition() -> bytes:
    """The text of `/metrics`: every process's counters (multiprocess mode) or this process's
    registry, plus the values read from the database."""
    path = multiprocess_dir()
    process_metrics = MultiProcessCollector(None, path=path) if path else REGISTRY
    collectors = [process_metrics, OutboxPendingCollector(), BrokerUpCollector()]
    return generate_latest(_Collectors(collectors))  # type: ignore[arg-type]


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)


class _Children:
    """The labelled children of one metric, each looked up in the metric once: `labels()`
    checks and converts its arguments and takes a lock on every call, and a request makes a
    dozen of them with label values drawn from a small set."""

    __slots__ = ("_children", "_metric")

    def __init__(self, metric: Any) -> None:
        self._metric = metric
        self._children: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._metric.labels(*values)
        return child


_KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "TRACE", "OPTIONS", "CONNECT", "PATCH"}
)
_UNNAMED_VIEW = "<unnamed view>"
_VIEW = "_duka_metrics_view"  # request attribute: the `view` label, found once per request
_STARTED = "prometheus_after_middleware_event"  # django-prometheus' name for the same
_TRANSPORT = "_duka_metrics_transport"  # request attribute: http or https, found once


def _method(request: HttpRequest) -> str:
    method = request.method or ""
    return method if method in _KNOWN_METHODS else "<invalid method>"


def _view_label(request: HttpRequest) -> str:
    """`view`: the API operation serving this method (routes.operation_name), else the URL
    name, else `<unnamed view>` (no URL matched)."""
    view = getattr(request, _VIEW, None)
    if view is None:
        match = getattr(request, "resolver_match", None)
        if match is None:
            return _UNNAMED_VIEW
        view = operation_name(request) or match.view_name or _UNNAMED_VIEW
        setattr(request, _VIEW, view)
    return view


class PrometheusBeforeMiddleware:
    """django-prometheus' first middleware (same series, same meaning) as a plain callable:
    requests and responses seen before any other middleware, and the latency including them."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        metrics = Metrics.get_instance()
        self._requests = metrics.requests_total
        self._responses = metrics.responses_total
        self._latency = metrics.requests_latency_before

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        self._requests.inc()
        started = perf_counter()
        response = self.get_response(request)
        self._responses.inc()
        self._latency.observe(perf_counter() - started)
        return response


class PrometheusAfterMiddleware:
    """django-prometheus' last middleware: the same series with the same labels and meaning,
    with `view` naming the API operation, not the URL path (`GET /api/v1/orders/` is
    `api-v1:list_orders` and `POST` on it `api-v1:create_order`).

    Cheaper per request than the library's: labelled children are looked up once per label
    values (`_Children`), the view label is found once per request instead of three times, and
    it is a plain middleware rather than a `MiddlewareMixin` one."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        metrics = Metrics.get_instance()
        self._by_method = _Children(metrics.requests_by_method)
        self._by_transport = _Children(metrics.requests_by_transport)
        self._ajax = metrics.requests_ajax
        self._request_bytes = metrics.requests_body_bytes
        self._by_view_transport_method = _Children(metrics.requests_by_view_transport_method)
        self._by_templatename = _Children(metrics.responses_by_templatename)
        self._by_status = _Children(metrics.responses_by_status)
        self._by_status_view_method = _Children(metrics.responses_by_status_view_method)
        self._by_charset = _Children(metrics.responses_by_charset)
        self._streaming = metrics.responses_streaming
        self._response_bytes = metrics.responses_body_bytes
        self._latency = _Children(metrics.requests_latency_by_view_method)
        self._unknown_latency = metrics.requests_unknown_latency
        self._exceptions_by_type = _Children(metrics.exceptions_by_type)
        self._exceptions_by_view = _Children(metrics.exceptions_by_view)

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        method = _method(request)
        transport = "https" if request.is_secure() else "http"
        setattr(request, _TRANSPORT, transport)
        self._by_method(method).inc()
        self._by_transport(transport).inc()
        # META, as request.headers reads it (that mapping of every header is built on first use).
        if request.META.get("HTTP_X_REQUESTED_WITH") == "XMLHttpRequest":
            self._ajax.inc()
        self._request_bytes.observe(int(request.META.get("CONTENT_LENGTH") or 0))
        setattr(request, _STARTED, perf_counter())
        response = self.get_response(request)
        return self._count_response(request, response, method)

    def process_view(
        self, request: HttpRequest, view_func: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> None:
        if hasattr(request, "resolver_match"):
            transport = getattr(request, _TRANSPORT, None) or (
                "https" if request.is_secure() else "http"
            )
            self._by_view_transport_method(_view_label(request), transport, _method(request)).inc()

    def process_template_response(self, request: HttpRequest, response: Any) -> Any:
        if hasattr(response, "template_name"):
            self._by_templatename(str(response.template_name)).inc()
        return response

    def _count_response(
        self, request: HttpRequest, response: HttpResponseBase, method: str
    ) -> HttpResponseBase:
        view = _view_label(request)
        status = str(response.status_code)
        self._by_status(status).inc()
        self._by_status_view_method(status, view, method).inc()
        self._by_charset(str(response.charset)).inc()
        if response.streaming:
            self._streaming.inc()
        if hasattr(response, "content"):
            self._response_bytes.observe(len(response.content))
        self._observe_latency(request, view)
        return response

    def _observe_latency(self, request: HttpRequest, view: str) -> None:
        started = getattr(request, _STARTED, None)
        if started is None:
            self._unknown_latency.inc()
        else:
            # The raw method, as django-prometheus labels this one.
            self._latency(view, request.method).observe(perf_counter() - started)

    def process_exception(self, request: HttpRequest, exception: Exception) -> None:
        # As django-prometheus: counted here, and the latency observed here too (the 500
        # response that follows is counted and observed again on its way out).
        self._exceptions_by_type(type(exception).__name__).inc()
        if hasattr(request, "resolver_match"):
            self._exceptions_by_view(_view_label(request)).inc()
        self._observe_latency(request, _view_label(request))
