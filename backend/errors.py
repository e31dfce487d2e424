"""Domain errors: each class declares its HTTP status and problem type; one API layer renders them."""

from __future__ import annotations


class DomainError(Exception):
    status: int = 400
    code: str = "bad-request"
    title: str = "Bad request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


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


class InvalidField(DomainError):
    """A field that is well-formed but not acceptable (unknown reference, invalid phone number)."""

    status = 422
    code = "validation-error"
    title = "Validation failed"

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(detail)
        self.field = field
