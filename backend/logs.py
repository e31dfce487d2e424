"""Logging helpers: phone numbers never reach a log line in full."""

from __future__ import annotations

import logging
import re

# E.164 (+...) and local notations (0...), not bare ids; keeps the last 3 digits for support.
_PHONE = re.compile(r"(?<![\w.])((?:\+\d|0\d)[\d \-]{5,15})(\d{3})(?!\d)")


def mask_phone_numbers(text: str) -> str:
    return _PHONE.sub(lambda m: "*" * len(re.sub(r"\D", "", m.group(1))) + m.group(2), text)


class MaskPhoneNumbersFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_phone_numbers(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True
