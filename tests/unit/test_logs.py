import logging

import pytest

from backend.observability.logging import MaskPhoneNumbersFilter, mask_phone_numbers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SMS to +254712345678 sent", "SMS to *********678 sent"),
        ("call 0712 345 678 now", "call *******678 now"),
        ("order #1042 for KES 1500.00", "order #1042 for KES 1500.00"),
        ("2026-11-27T08:30:00Z id=123456", "2026-11-27T08:30:00Z id=123456"),
        ("Not Found: /api/v1/orders/1234567324/", "Not Found: /api/v1/orders/1234567324/"),
    ],
)
def test_masking(text, expected):
    assert mask_phone_numbers(text) == expected


def test_filter_rewrites_formatted_message():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "to %s", ("+254712345678",), None)
    assert MaskPhoneNumbersFilter().filter(record)
    assert record.getMessage() == "to *********678"
