"""The web's Prometheus metrics: Duka's own, operation-aware route labels, and `/metrics`.

Under gunicorn every worker process counts into its own files in PROMETHEUS_MULTIPROC_DIR
(set up by `backend/gunicorn.conf.py`), and `/metrics` sums them, so whichever process answers
a scrape reports the totals of all. Values that live in the database, such as the outbox
backlog, are read at scrape time instead: they are the same whichever process reads them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from typing import Any

from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.views.decorators.http import require_GET
from django_prometheus import middleware
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


def view_label(request: HttpRequest) -> str:
    """`view`: the API operation serving this method (routes.operation_name), else the URL
    name, else `<unnamed view>` (no URL matched), as django-prometheus names it."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "<unnamed view>"
    return operation_name(request) or match.view_name or "<unnamed view>"


class PrometheusAfterMiddleware(middleware.PrometheusAfterMiddleware):
    """django-prometheus' last middleware, with `view` naming the API operation rather than the
    URL: Ninja registers one URL per path, so `GET /api/v1/orders/` and `POST` on it would share
    one name; here they are `api-v1:list_orders` and `api-v1:create_order`. `label_metric` is
    the library's documented hook for changing labels."""

    def label_metric(
        self,
        metric: Any,
        request: HttpRequest,
        response: HttpResponseBase | None = None,
        **labels: str,
    ) -> Any:
        if "view" in labels:
            labels["view"] = view_label(request)
        return super().label_metric(metric, request, response, **labels)
