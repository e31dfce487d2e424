"""Worker metrics, exported on the worker's `:$METRICS_PORT/metrics` next to Dramatiq's own."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

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

# Export every series from the start, so rates and alerts work before the first failure.
for _status in ("sent", "retry", "failed"):
    SMS_NOTIFICATIONS.labels(status=_status)
