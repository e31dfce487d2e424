"""The delivery-report form as Africa's Talking posts it (documented only: the view reads it)."""

from __future__ import annotations

from typing import Any

_NOT_BLANK = "^[^\\u0000]*\\S[^\\u0000]*$"

DELIVERY_REPORT_FORM: dict[str, Any] = {
    "title": "DeliveryReportForm",
    "type": "object",
    "required": ["id", "status"],
    "properties": {
        "id": {
            "type": "string",
            "minLength": 1,
            "pattern": _NOT_BLANK,
            "description": "messageId from the send response",
        },
        "status": {
            "type": "string",
            "minLength": 1,
            "pattern": _NOT_BLANK,
            "description": "Success, Failed, Rejected, Sent, Submitted, Buffered, ...",
        },
        "phoneNumber": {"type": "string"},
        "networkCode": {"type": "string"},
        "failureReason": {"type": "string"},
        "retryCount": {"type": "string"},
    },
}
