"""The transactional outbox: rows written in the transaction of a change, sent by the worker
after it commits. `core` is what both channels share (publishing, claim lease, backoff, failure
budget); `sms_notifications` and `webhook_deliveries` each add their own policy.

The order commands use the SMS channel's writes through this package: `outbox.add_sms`,
`outbox.order_sms_text` and `outbox.resend`.
"""

from backend.commands.outbox.sms_notifications import add_sms, order_sms_text, resend

__all__ = ["add_sms", "order_sms_text", "resend"]
