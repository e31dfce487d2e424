"""Log records as one JSON object per line (or readable text for development).

Every line carries the current request id. Whatever ends up in a line (message, structured
fields, traceback) passes through `redact`: phone numbers are masked and bearer tokens, JWTs and
credential-looking query parameters are replaced, so a careless log call cannot leak them.
`backend.logs.MaskPhoneNumbersFilter` stays in the handler's chain as the first line of defence.
"""

from __future__ import annotations

import json
import logging
import re
import time
from datetime import UTC, datetime
from typing import Any

from backend.logs import MaskPhoneNumbersFilter, mask_phone_numbers
from backend.observability.context import current_request_id

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
# A record attribute naming the `extra=` fields whose values are already JSON scalars with
# nothing left to redact (the request line's route, view, status...): the formatter copies
# them as they are instead of walking them through `_clean`.
CLEAN_FIELDS = "_clean_fields"

# What json.dumps(payload, ensure_ascii=False, default=str) would build anew for every line.
_ENCODER = json.JSONEncoder(ensure_ascii=False, default=str)

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "request_id",
}


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


def _head(
    created: float, level: str, name: str, message: str, request_id: str | None
) -> dict[str, Any]:
    """The first keys of every JSON line, in their order."""
    payload: dict[str, Any] = {
        "ts": datetime.fromtimestamp(created, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "level": level.lower(),
        "logger": name,
        "message": message,
    }
    if request_id and request_id != NO_REQUEST_ID:
        payload["request_id"] = request_id
    return payload


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "message", "request_id", ...fields, "exception"}` per line.

    Structured fields come from `extra=` (e.g. `logger.info("...", extra={"status": 200})`)."""

    def format(self, record: logging.LogRecord) -> str:
        payload = _head(
            record.created,
            record.levelname,
            record.name,
            redact(record.getMessage()),
            getattr(record, "request_id", None) or current_request_id(),
        )
        clean = getattr(record, CLEAN_FIELDS, ())
        for name, value in vars(record).items():
            if name not in _RECORD_ATTRS and not name.startswith("_"):
                payload.setdefault(name, value if name in clean else _clean(value))
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


class LineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A StreamHandler that formats outside its lock and holds the lock only to write.

    `logging.Handler.handle` holds the handler's lock around `emit`, formatting included, so
    the web's threads queued behind each other's JSON encoding and redaction (seen under load
    as threads waiting on this lock). The write itself stays serialised: lines never interleave.
    """

    def handle(self, record: logging.LogRecord) -> bool:
        passed = self.filter(record)
        if not passed:
            return False
        if isinstance(passed, logging.LogRecord):  # Python 3.12+: a filter may replace it
            record = passed
        try:
            line = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return True
        self.write_line(line, record)
        return True

    def write_line(self, line: str, record: logging.LogRecord | None = None) -> None:
        with self.lock:  # type: ignore[union-attr]
            try:
                self.stream.write(line)
                self.stream.flush()
            except RecursionError:
                raise
            except Exception:
                self.handleError(record)  # type: ignore[arg-type]


# --- The request line without a LogRecord ---------------------------------------------------------
#
# Every API request writes one line; through `Logger.handle` that was a LogRecord (pid, thread and
# process names, file name parsing), two filters and the formatter each reading the message
# again, and a walk over the record's ~25 attributes: about a fifth of a one-row read's CPU.
# When the line can only end up in the one configured JSON handler, `json_line` writes what that
# handler would have written, byte for byte (tests/unit/test_request_log_line.py); otherwise
# (pytest's capture, Sentry's hook on `callHandlers`, another handler, text format, a record
# factory) the record takes the ordinary way.

_CALL_HANDLERS = logging.Logger.callHandlers


def sole_json_handler(logger: logging.Logger, level: int) -> LineHandler | None:
    """The handler a record of `logger` at `level` would reach, when it is the only one and does
    nothing but what `json_line` reproduces; else None."""
    if (
        logger.filters
        or logging.Logger.callHandlers is not _CALL_HANDLERS
        or logging.getLogRecordFactory() is not logging.LogRecord
    ):
        return None
    current: logging.Logger | None = logger
    while current is not None:
        if current.handlers:
            break
        if not current.propagate:
            return None
        current = current.parent
    if current is None or len(current.handlers) != 1:
        return None
    handler = current.handlers[0]
    if (
        type(handler) is not LineHandler
        or type(handler.formatter) is not JsonFormatter
        or handler.level > level
        or handler.terminator != "\n"
        or [type(f) for f in handler.filters] != [MaskPhoneNumbersFilter, RequestContextFilter]
    ):
        return None
    return handler


def json_line(
    logger: logging.Logger, level: int, message: str, fields: dict[str, Any], clean: tuple[str, ...]
) -> str:
    """`JsonFormatter.format` of the record `logger.makeRecord(..., message, extra=fields)` after
    the handler's two filters (phone mask, then redaction), with its terminator."""
    created = time.time()
    if _may_hold_secret(message):  # else the mask and both redactions leave it as it is
        message = redact(redact(mask_phone_numbers(message)))
    payload = _head(
        created, logging.getLevelName(level), logger.name, message, current_request_id()
    )
    for name, value in fields.items():
        payload.setdefault(name, value if name in clean else _clean(value))
    return _ENCODER.encode(payload) + "\n"
