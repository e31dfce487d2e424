"""Worker metrics, exported on the worker's `:$METRICS_PORT/metrics` next to Dramatiq's own."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

SMS_NOTIFICATIONS = Counter(
    "duka_sms_notifications",
    "SMS send attempts by outcome: sent, retry (transient error, another attempt scheduled), failed.",
    ["status"],
)
SMS_SEND_SECONDS = Histogram(
    "duka_sms_send_seconds",
    "Time spent in one gateway call, whatever its outcome.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0),
)

WEBHOOK_DELIVERIES = Counter(
    "duka_webhook_deliveries",
    "Webhook delivery attempts by result: delivered, retry (another attempt scheduled), "
    "failed (given up: endpoint disabled by a 410 or 3 days of failures, or deleted).",
    ["result"],
)
WEBHOOK_DELIVERY_SECONDS = Histogram(
    "duka_webhook_delivery_seconds",
    "Time spent in one webhook POST, whatever its outcome.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0),
)
WEBHOOK_PENDING = Gauge(
    "duka_webhook_pending",
    "Webhook deliveries not yet delivered or given up, sampled by the dispatcher.",
    multiprocess_mode="mostrecent",
)

QUEUE_DEPTH = Gauge(
    "duka_queue_depth",
    "Messages waiting in the broker per queue (ready and delayed), sampled by the dispatcher.",
    ["queue"],
    # Each worker process samples the same Redis lists: the newest sample is the answer.
    multiprocess_mode="mostrecent",
)

# Export every series from the start, so rates and alerts work before the first failure.
for _status in ("sent", "retry", "failed"):
    SMS_NOTIFICATIONS.labels(status=_status)
for _result in ("delivered", "retry", "failed"):
    WEBHOOK_DELIVERIES.labels(result=_result)


class MessageDurationSeconds:
    """Stands in for Dramatiq's `dramatiq_message_duration_milliseconds` histogram: the same
    observations as `dramatiq_message_duration_seconds`, in Prometheus' base unit (promtool's
    lint rejects the milliseconds name). Dramatiq calls `.labels(queue, actor).observe(ms)`."""

    BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
    BUCKETS += (30.0, 60.0, 600.0, 900.0)

    def __init__(self, histogram: Histogram | None = None) -> None:
        self._histogram: Any = histogram or Histogram(
            "dramatiq_message_duration_seconds",
            "The time spent processing messages.",
            ["queue_name", "actor_name"],
            buckets=self.BUCKETS,
            # Like Dramatiq's own metrics: exported through the multiprocess files only.
            registry=CollectorRegistry(),
        )

    def labels(self, *values: str) -> MessageDurationSeconds:
        return MessageDurationSeconds(self._histogram.labels(*values))

    def observe(self, milliseconds: float) -> None:
        self._histogram.observe(milliseconds / 1000)
