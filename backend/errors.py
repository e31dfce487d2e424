"""Domain errors: each class declares its HTTP status and problem type; one API layer renders them."""

from __future__ import annotations

from collections.abc import Mapping


class DomainError(Exception):
    status: int = 400
    code: str = "bad-request"
    title: str = "Bad request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    @property
    def headers(self) -> Mapping[str, str]:
        """HTTP headers the rendered problem carries (e.g. `Retry-After`)."""
        return {}


class BadRequest(DomainError):
    status = 400
    code = "bad-request"
    title = "Bad request"


class NotFound(DomainError):
    status = 404
    code = "not-found"
    title = "Not found"


class Conflict(DomainError):
    status = 409
    code = "conflict"
    title = "Conflict"


class DuplicateCode(Conflict):
    """Another live customer has this code (ignoring case). Never succeeds as sent."""

    code = "duplicate-code"
    title = "Duplicate customer code"


class CustomerHasOrders(Conflict):
    """A customer with orders cannot be deleted. Never succeeds while the orders exist."""

    code = "customer-has-orders"
    title = "Customer has orders"


class SmsNotFailed(Conflict):
    """Only a failed SMS notification can be sent again (a pending or sent one is on its way)."""

    code = "sms-not-failed"
    title = "SMS notification has not failed"


class IdempotencyKeyReused(Conflict):
    """The key was used with another body. Never succeeds: send a new key."""

    code = "idempotency-key-reused"
    title = "Idempotency-Key reused with another body"


class IdempotencyInProgress(Conflict):
    """The first request with this key is still running: retry after `retry_after` seconds."""

    code = "idempotency-in-progress"
    title = "Request with this Idempotency-Key in progress"
    retry_after = 1

    @property
    def headers(self) -> Mapping[str, str]:
        return {"Retry-After": str(self.retry_after)}


class PreconditionFailed(DomainError):
    """`If-Match` names none of the resource's current ETags: nothing was changed."""

    status = 412
    code = "precondition-failed"
    title = "Precondition failed"


class TooManyWebhookEndpoints(DomainError):
    """The subject has WEBHOOKS_MAX_ENDPOINTS endpoints already: delete one first."""

    status = 422
    code = "too-many-webhook-endpoints"
    title = "Too many webhook endpoints"


class InvalidField(DomainError):
    """A field that is well-formed but not acceptable (unknown reference, invalid phone number)."""

    status = 422
    code = "validation-error"
    title = "Validation failed"

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(detail)
        self.field = field


def is_stale_plan(exc: BaseException) -> bool:
    """PostgreSQL refused a prepared statement whose result columns a migration applied since
    changed type ("cached plan must not change result type", SQLSTATE 0A000). Nothing ran, and
    once psycopg has dropped the statement (it does on the failure, and on any rollback) the
    same SQL succeeds when sent again."""
    return getattr(exc.__cause__, "sqlstate", None) == "0A000" and "cached plan" in str(exc)
