"""Phone numbers in, E.164 out, with the `phonenumbers` library."""

from __future__ import annotations

import phonenumbers
from django.conf import settings


def normalize_phone_number(raw: str, *, region: str | None = None) -> str:
    """Parse any common notation and return E.164; raise ValueError with a readable reason."""
    try:
        parsed = phonenumbers.parse(raw, region or settings.SMS_DEFAULT_REGION)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"not a phone number: {exc}") from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError("not a valid phone number for its region")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
