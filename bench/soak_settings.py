"""Settings of the processes bench/soak.py runs: production settings, their timings scaled.

SOAK_TIME_SCALE (default 1: production timings, as the long form runs) multiplies the delivery
timings below, so the short form (0.2) shows a worker's death, a lost broker or a receiver's
outage and their recovery within its three minutes; each keeps a floor so a loaded 2-core
machine does not turn scaled timeouts into faults of their own. Only the clock changes: the
order between the timings (claim lease > time limit > gateway deadline) stays.
"""

import os

from backend.settings.base import *  # noqa: F403

SCALE = float(os.environ.get("SOAK_TIME_SCALE", "1"))
_SCALED = {  # name: floor in seconds
    "SMS_RETRY_BASE_SECONDS": 0.2,
    "SMS_RETRY_CAP_SECONDS": 5.0,
    "SMS_GATEWAY_CONNECT_TIMEOUT_SECONDS": 1.0,
    "SMS_GATEWAY_READ_TIMEOUT_SECONDS": 2.0,
    "SMS_GATEWAY_DEADLINE_SECONDS": 3.0,
    "SMS_ACTOR_TIME_LIMIT_SECONDS": 12.0,
    "SMS_CLAIM_LEASE_SECONDS": 15.0,
    "OUTBOX_POLL_SECONDS": 0.2,
    "OUTBOX_REDELIVERY_GRACE_SECONDS": 3.0,
    "OUTBOX_BROKER_BACKOFF_MAX_SECONDS": 1.0,
    "DRAMATIQ_HEARTBEAT_TIMEOUT_SECONDS": 12.0,
    "IDEMPOTENCY_STALE_CLAIM_SECONDS": 12.0,
    "WEBHOOK_CONNECT_TIMEOUT_SECONDS": 1.0,
    "WEBHOOK_DEADLINE_SECONDS": 3.0,
    "WEBHOOK_RETRY_BASE_SECONDS": 0.5,
    "WEBHOOK_RETRY_CAP_SECONDS": 10.0,
    "WEBHOOK_ACTOR_TIME_LIMIT_SECONDS": 9.0,
    "WEBHOOK_CLAIM_LEASE_SECONDS": 12.0,
}
if SCALE != 1:
    for _name, _floor in _SCALED.items():
        globals()[_name] = max(_floor, globals()[_name] * SCALE)
