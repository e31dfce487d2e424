"""Write tables: the source of truth. Reads never touch them (see `backend.queries.models`)."""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models.functions import Lower

AMOUNT_MAX_DIGITS = 12  # 10 before the point, 2 after: largest 9999999999.99
AMOUNT_DECIMAL_PLACES = 2
NAME_MAX_LENGTH = 200
CODE_MAX_LENGTH = 32
ITEM_MAX_LENGTH = 200


class Customer(models.Model):
    name = models.CharField(max_length=NAME_MAX_LENGTH)
    code = models.CharField(max_length=CODE_MAX_LENGTH)
    phone_number = models.CharField(max_length=16, help_text="E.164")
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        db_table = "customers"
        constraints = [
            # Case-insensitive uniqueness is enforced by the database, not by a racy pre-check.
            models.UniqueConstraint(Lower("code"), name="customers_code_ci_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.code} ({self.name})"


class Order(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="orders")
    item = models.CharField(max_length=ITEM_MAX_LENGTH)
    amount = models.DecimalField(max_digits=AMOUNT_MAX_DIGITS, decimal_places=AMOUNT_DECIMAL_PLACES)
    note = models.CharField(max_length=500, null=True)  # noqa: DJ001 - null is the API's null
    time = models.DateTimeField()

    class Meta:
        db_table = "orders"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount__gt=Decimal("0")), name="orders_amount_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.item}"


class SmsStatus(models.TextChoices):
    PENDING = "pending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"


class SmsNotification(models.Model):
    """Transactional outbox row: written with its order, sent by the worker after commit."""

    order = models.OneToOneField(Order, on_delete=models.PROTECT, related_name="sms")
    recipient = models.CharField(max_length=16)
    text = models.CharField(max_length=160)
    status = models.CharField(max_length=16, choices=SmsStatus.choices, default=SmsStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # Unique through Meta.constraints, not `unique=True`: that also builds a `varchar_pattern_ops`
    # index for LIKE, which nothing runs and every write of the row maintained.
    gateway_message_id = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001 - NULLs never collide under the constraint, empty strings would
    cost = models.CharField(max_length=32, blank=True, default="")
    last_error = models.TextField(blank=True, default="")
    # What API consumers see as `sms_error`: a short reason such as `InvalidPhoneNumber` while the
    # last attempt or the delivery report failed; empty otherwise.
    error_reason = models.CharField(max_length=64, blank=True, default="")
    # Delivery bookkeeping (see docs/sms.md): the claim lease fences concurrent senders, and
    # `next_attempt_at` is the not-before time of the next try (null: due since `created_at`).
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    claim_token = models.UUIDField(null=True, blank=True)
    first_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # Publishing (only the dispatcher sets these): when the row's current message was handed to
    # the broker, or last seen still queued there, and that message's id in the broker. Null
    # `enqueued_at`: the row needs a message once it is due.
    enqueued_at = models.DateTimeField(null=True, blank=True)
    broker_message_id = models.CharField(max_length=64, blank=True, default="")
    # The id of the request that placed the order, so the SMS job logs under it.
    request_id = models.CharField(max_length=128, blank=True, default="")
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        db_table = "sms_notifications"
        indexes = [
            models.Index(
                fields=["created_at"],
                name="sms_pending_idx",
                condition=models.Q(status="pending"),
            ),
            # What the dispatcher looks for on every wake-up: rows that need a message.
            models.Index(
                fields=["id"],
                name="sms_unpublished_idx",
                condition=models.Q(status="pending", enqueued_at__isnull=True),
            ),
        ]
        constraints = [
            # The name `unique=True` gave it: the constraint and its index stay as they were.
            models.UniqueConstraint(
                fields=["gateway_message_id"], name="sms_notifications_gateway_message_id_key"
            ),
        ]

    def __str__(self) -> str:
        return f"SMS for order {self.order_id}: {self.status}"


class EarlyDeliveryReport(models.Model):
    """A final delivery report that arrived before its send was recorded (the gateway can report
    `Rejected` before it answers the send). Applied, and deleted, when the send is recorded."""

    gateway_message_id = models.CharField(max_length=100, unique=True)
    status = models.CharField(max_length=16, choices=SmsStatus.choices)
    reason = models.CharField(max_length=300, blank=True, default="")
    error_reason = models.CharField(max_length=64, blank=True, default="")
    received_at = models.DateTimeField()

    class Meta:
        db_table = "sms_early_reports"

    def __str__(self) -> str:
        return f"{self.gateway_message_id}: {self.status}"


class IdempotencyRecord(models.Model):
    """One `Idempotency-Key` per (subject, endpoint); completed in the same transaction as its write."""

    subject = models.CharField(max_length=255)
    endpoint = models.CharField(max_length=64)
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="sha256 of the canonical request body")
    resource_id = models.BigIntegerField(null=True)
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.TextField(null=True, help_text="first response body, replayed verbatim")  # noqa: DJ001 - NULL means not stored yet
    # Fences the claim: only the request holding the current token may complete or release it,
    # so a slow request whose claim was taken over cannot also create the resource.
    claim_token = models.UUIDField(null=True)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "idempotency_records"
        constraints = [
            models.UniqueConstraint(
                fields=["subject", "endpoint", "key"], name="idempotency_unique_key"
            ),
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created_idx")]

    def __str__(self) -> str:
        return f"{self.endpoint} {self.key}"


# --- Webhooks (docs/webhooks.md) ----------------------------------------------------------------


class WebhookEndpoint(models.Model):
    """A receiver of signed events. Deleting one only marks it (`deleted_at`): event rows written
    by a transaction that raced the delete still reference it, and are then dropped unsent."""

    # The token `sub` that created it: only that subject sees and manages it. "" (rows from
    # before ownership, and inserts by processes older than the column) matches no token.
    owner = models.TextField(db_default="")
    url = models.CharField(max_length=2000)
    events = models.JSONField(help_text="event types this endpoint subscribes to")
    description = models.CharField(max_length=500, blank=True, default="")
    secret = models.TextField(
        help_text="whsec_<base64>, shown once at creation; stored as a Fernet token "
        "(WEBHOOK_SECRET_KEYS, backend.commands.webhook_endpoints.seal_secret)"
    )
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField()
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    # Start of the current run of failed attempts (cleared by a success): 3 days of it disables.
    failing_since = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "webhook_endpoints"
        indexes = [
            # The API's reads and the cap's count: one subject's live endpoints.
            models.Index(
                fields=["owner", "id"],
                name="webhook_endpoint_owner_idx",
                condition=models.Q(deleted_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"webhook {self.pk} -> {self.url}"


class WebhookDeliveryStatus(models.TextChoices):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class WebhookDelivery(models.Model):
    """Transactional outbox row for one event to one endpoint, written in the transaction of the
    change. Published by the dispatcher, attempted by the webhook actor (claim, lease, backoff:
    the same life as an `SmsNotification`)."""

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="+")
    # The Standard Webhooks `webhook-id`: one per event, the same on every retry and endpoint.
    event_id = models.CharField(max_length=64)
    event_type = models.CharField(max_length=64)
    # The resource the event is about (`order:42`): events of one subject reach an endpoint in
    # the order they were written.
    subject = models.CharField(max_length=64)
    body = models.TextField(help_text="the JSON body exactly as signed and sent")
    status = models.CharField(
        max_length=16,
        choices=WebhookDeliveryStatus.choices,
        default=WebhookDeliveryStatus.PENDING,
    )
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    claim_token = models.UUIDField(null=True, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    broker_message_id = models.CharField(max_length=64, blank=True, default="")
    request_id = models.CharField(max_length=128, blank=True, default="")
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        db_table = "webhook_deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "event_id"], name="webhook_delivery_event_unique"
            ),
        ]
        indexes = [
            models.Index(
                fields=["id"],
                name="webhook_unpublished_idx",
                condition=models.Q(status="pending", enqueued_at__isnull=True),
            ),
            models.Index(
                fields=["endpoint", "subject", "id"],
                name="webhook_pending_subject_idx",
                condition=models.Q(status="pending"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} -> endpoint {self.endpoint_id}: {self.status}"
