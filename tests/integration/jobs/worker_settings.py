"""Settings for worker subprocesses started by tests: the test settings with short timings.

Not a fixture module: `tests/fixtures/broker.py` passes it as DJANGO_SETTINGS_MODULE.
"""

import os

from backend.settings.test import *  # noqa: F403

DRAMATIQ_NAMESPACE = os.environ["DUKA_TEST_DRAMATIQ_NAMESPACE"]
SMS_CLAIM_LEASE_SECONDS = float(os.environ.get("DUKA_TEST_CLAIM_LEASE_SECONDS", "3"))
SMS_ACTOR_TIME_LIMIT_SECONDS = 60.0
OUTBOX_POLL_SECONDS = 0.2
OUTBOX_REDELIVERY_GRACE_SECONDS = float(os.environ.get("DUKA_TEST_REDELIVERY_GRACE_SECONDS", "1"))
OUTBOX_BROKER_BACKOFF_MAX_SECONDS = 1.0
SMS_RETRY_BASE_SECONDS = 0.1
SMS_GATEWAY_READ_TIMEOUT_SECONDS = float(os.environ.get("DUKA_TEST_GATEWAY_READ_TIMEOUT", "5"))
WORKER_HEARTBEAT_SECONDS = 0.5
WORKER_HEARTBEAT_MAX_AGE_SECONDS = float(
    os.environ.get("DUKA_TEST_HEARTBEAT_MAX_AGE_SECONDS", "60")
)
HOUSEKEEPING_INTERVAL_SECONDS = float(os.environ.get("DUKA_TEST_HOUSEKEEPING_SECONDS", "3600"))
# Dramatiq's own redelivery of a dead worker's messages, shortened to test time.
DRAMATIQ_HEARTBEAT_TIMEOUT_SECONDS = float(os.environ.get("DUKA_TEST_HEARTBEAT_SECONDS", "2"))
DRAMATIQ_MAINTENANCE_CHANCE = int(os.environ.get("DUKA_TEST_MAINTENANCE_CHANCE", "1000000"))
# Webhooks: receivers are loopback servers; short lease and backoff for the kill tests.
WEBHOOKS_ALLOW_PRIVATE = True
WEBHOOK_CLAIM_LEASE_SECONDS = float(os.environ.get("DUKA_TEST_CLAIM_LEASE_SECONDS", "3"))
WEBHOOK_RETRY_BASE_SECONDS = 0.1
WEBHOOK_DEADLINE_SECONDS = float(os.environ.get("DUKA_TEST_WEBHOOK_DEADLINE_SECONDS", "15"))
