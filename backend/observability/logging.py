"""Log records as one JSON object per line (or readable text for development).

Every line carries the current request id. Whatever ends up in a line (message, structured
fields, traceback) passes through `redact`: phone numbers are masked and bearer tokens, JWTs and
credential-looking query parameters are replaced, so a careless log call cannot leak them.
`MaskPhoneNumbersFilter` stays in the handler's chain as the first line of defence.

Settings' LOGGING puts these on a standard `logging.StreamHandler`; nothing here goes around
`Logger.handle` or its handlers (Sentry's logging integration hooks into that path).
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

from backend.observability.context import current_request_id

# E.164 (+...) and local notations (0...), not bare ids; keeps the last 3 digits for support.
_PHONE = re.compile(r"(?<![\w.])((?:\+\d|0\d)[\d \-]{5,15})(\d{3})(?!\d)")

_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{12,}")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
# `token=...` in a query string or form body; `apiKey: ...` as Africa's Talking's header.
_CREDENTIAL_PARAM = re.compile(r"(?i)\b(\w*(?:token|api_?key|secret|password))(=)([^\s&,;'\"]+)")
_API_KEY_HEADER = re.compile(r"(?i)\b(api_?key)(['\"]?\s*:\s*['\"]?)([^\s,;'\"}]+)")
# Necessary conditions of every pattern above and of `mask_phone_numbers`: one of these words
# (any case), or a `+` or `0` then a digit after no word character or dot (a phone number's
# start). Substring tests cost a fraction of the five substitutions, and most text (every
# request's log line) meets none of them.
_SECRET_WORDS = ("bearer", "basic", "eyj", "token", "api_key", "apikey", "secret", "password")
_PHONE_START = re.compile(r"(?<![\w.])[+0]\d")
REDACTED = "[redacted]"
NO_REQUEST_ID = "-"

# What json.dumps(payload, ensure_ascii=False, default=str) would build anew for every line.
_ENCODER = json.JSONEncoder(ensure_ascii=False, default=str)

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "request_id",
}


def mask_phone_numbers(text: str) -> str:
    """Every phone number in `text` with all but its last 3 digits replaced by `*`."""
    return _PHONE.sub(lambda m: "*" * len(re.sub(r"\D", "", m.group(1))) + m.group(2), text)


def _may_hold_secret(text: str) -> bool:
    """False only when no pattern of `redact` can match `text`."""
    if not text.isascii():
        # Case-insensitive matching also folds some non-ASCII letters (a long s is an s)
        # that `str.lower` leaves alone: such text takes the full path.
        return True
    lowered = text.lower()
    for word in _SECRET_WORDS:
        if word in lowered:
            return True
    return ("+" in text or "0" in text) and _PHONE_START.search(text) is not None


def redact(text: str) -> str:
    return _redact_all(text) if _may_hold_secret(text) else text


def _redact_all(text: str) -> str:
    text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    text = _JWT.sub(REDACTED, text)
    for pattern in (_CREDENTIAL_PARAM, _API_KEY_HEADER):
        text = pattern.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    return mask_phone_numbers(text)


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact(str(value))


class MaskPhoneNumbersFilter(logging.Filter):
    """Masks phone numbers in the message of every record the handler sees."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_phone_numbers(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


class RequestContextFilter(logging.Filter):
    """Stamps `request_id` on every record (for the text format) and redacts its message."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = current_request_id()
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "message", "request_id", ...fields, "exception"}` per line.

    Structured fields come from `extra=` (e.g. `logger.info("...", extra={"status": 200})`)."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        request_id = getattr(record, "request_id", None) or current_request_id()
        if request_id and request_id != NO_REQUEST_ID:
            payload["request_id"] = request_id
        for name, value in vars(record).items():
            if name not in _RECORD_ATTRS and not name.startswith("_"):
                payload.setdefault(name, _clean(value))
        if record.exc_info:
            payload["error_type"] = getattr(record.exc_info[0], "__name__", None)
            payload["exception"] = redact(self.formatException(record.exc_info))
        if record.stack_info:
            payload["stack"] = redact(self.formatStack(record.stack_info))
        return _ENCODER.encode(payload)


class TextFormatter(logging.Formatter):
    """Readable lines for development (`LOG_FORMAT=text`), redacted like the JSON ones."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if not getattr(record, "request_id", None):
            record.request_id = current_request_id() or NO_REQUEST_ID
        return redact(super().format(record))
