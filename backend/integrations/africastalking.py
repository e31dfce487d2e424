"""Africa's Talking SMS behind a small port (`SmsGateway`), plus the SMS encoding rules.

The official SDK (`africastalking.SMS.SMSService`) builds and validates the request; a subclass
adds what the SDK lacks: a base-URL override, the HTTP status of a refused request, and a body we
always parse ourselves (the SDK returns a `str` unless the content type is exactly
`application/json`). Every error leaves this module as `TransientSmsError` (try again later) or
`PermanentSmsError` (never retry), so callers never see `requests` or SDK exceptions.

With no credentials configured, `get_gateway()` returns `ConsoleGateway`, which writes the message
to the log instead of sending it (the quick start needs no account).
"""

from __future__ import annotations

import enum
import json
import logging
import re
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

import requests
from africastalking.Service import AfricasTalkingException
from africastalking.SMS import SMSService
from django.conf import settings

logger = logging.getLogger(__name__)

# Explicit (connect, read) timeouts: the SDK's own default is similar, but the worker's claim
# lease is sized from these, so they are ours to choose. Read timeout overridable for tests.
CONNECT_TIMEOUT_S = 3.05
READ_TIMEOUT_S = 10.0

_E164 = re.compile(r"^\+\d{1,3}\d{3,}$")  # what the SDK accepts (`Service.validate_phone`)
_MAX_ERROR_TEXT = 300


# --- Errors and results -----------------------------------------------------------------------


class SmsError(Exception):
    """A send that did not result in the gateway accepting the message."""


class TransientSmsError(SmsError):
    """Worth retrying: the gateway or the network may accept the same request later."""


class PermanentSmsError(SmsError):
    """Retrying cannot help (invalid number, blacklisted, rejected)."""


@dataclass(frozen=True, kw_only=True)
class SmsAccepted:
    """The gateway took the message; `message_id` is what delivery reports will quote."""

    message_id: str | None
    cost: str
    status_code: int
    status: str


class SmsGateway(Protocol):
    def send(self, *, to: str, message: str) -> SmsAccepted:
        """Send one SMS to one E.164 number. Raises TransientSmsError or PermanentSmsError."""
        ...


# --- Status codes ------------------------------------------------------------------------------


class Outcome(enum.Enum):
    ACCEPTED = "accepted"
    TRANSIENT = "transient"
    PERMANENT = "permanent"


# Per-recipient `statusCode` values from AT's "Send SMS" documentation.
ACCEPTED_STATUS_CODES = frozenset({100, 101, 102})  # Processed, Sent, Queued
TRANSIENT_STATUS_CODES = frozenset(
    {
        401,
        405,
        500,
        501,
        502,
    }  # RiskHold, InsufficientBalance, InternalServerError, GatewayError, RejectedByGateway
)
PERMANENT_STATUS_CODES = frozenset(
    {402, 403, 404, 406, 407, 409}  # InvalidSenderId, InvalidPhoneNumber, UnsupportedNumberType,
    # UserInBlacklist, CouldNotRoute, DoNotDisturbRejection
)

# HTTP statuses of a refused request that say "this request will never work". Everything else
# that is not 2xx (5xx, 408, 429, and 401/403/404 from a credential or URL mistake an operator can
# fix within the retry window) is retried.
PERMANENT_HTTP_STATUSES = frozenset({400, 409, 413, 414, 415, 422})


def classify_status_code(code: int) -> Outcome:
    """Map a per-recipient `statusCode`; unknown codes fall back on their hundred."""
    if code in ACCEPTED_STATUS_CODES:
        return Outcome.ACCEPTED
    if code in TRANSIENT_STATUS_CODES:
        return Outcome.TRANSIENT
    if code in PERMANENT_STATUS_CODES:
        return Outcome.PERMANENT
    if 100 <= code < 200:
        return Outcome.ACCEPTED
    if 400 <= code < 500:
        return Outcome.PERMANENT
    return Outcome.TRANSIENT


def classify_http_status(status: int) -> Outcome:
    if 200 <= status < 300:
        return Outcome.ACCEPTED
    if status in PERMANENT_HTTP_STATUSES:
        return Outcome.PERMANENT
    return Outcome.TRANSIENT


# --- SMS encoding: one segment is 160 GSM-7 septets or 70 UCS-2 code units ----------------------

GSM7_SEGMENT = 160
UCS2_SEGMENT = 70
# GSM 03.38 basic character set (without ESC) and the extension table (each costs two septets).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")


def is_gsm7(text: str) -> bool:
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def sms_units(text: str) -> tuple[int, int]:
    """(units used, units in one segment) for the encoding the text needs."""
    if is_gsm7(text):
        return sum(2 if ch in GSM7_EXTENSION else 1 for ch in text), GSM7_SEGMENT
    # UCS-2 on the air is UTF-16: characters outside the BMP (emoji) take two units.
    return len(text.encode("utf-16-le")) // 2, UCS2_SEGMENT


def fits_one_segment(text: str) -> bool:
    used, limit = sms_units(text)
    return used <= limit


# --- Gateways ----------------------------------------------------------------------------------


class GatewayHTTPError(AfricasTalkingException):
    """The SDK's error for a non-2xx answer, plus the status code the SDK drops."""

    def __init__(self, status_code: int, body: str) -> None:
        super().__init__(body)
        self.status_code = status_code
        self.body = body


class _SMSService(SMSService):
    """The SDK's SMS service with a configurable base URL and a status-preserving transport."""

    def __init__(self, username: str, api_key: str, *, base_url: str | None) -> None:
        # Set before the SDK's constructor, which calls `_init_service`.
        self._base_url_override = base_url.rstrip("/") if base_url else None
        super().__init__(username, api_key)

    def _init_service(self) -> None:
        super()._init_service()  # sandbox or live host, chosen by username
        if self._base_url_override:
            base = self._base_url_override.removesuffix("/version1")
            self._baseUrl = base + "/version1"
            self._contentUrl = self._baseUrl

    def _make_request(
        self,
        url: str,
        method: str,
        headers: dict[str, str],
        data: dict[str, Any] | None,
        params: dict[str, Any] | None,
        callback: Any = None,
        timeout: Any = None,
    ) -> Any:
        """Same request as the SDK's transport, synchronous only; keeps the HTTP status on errors
        and returns the body text for the caller to parse whatever its content type."""
        if callback is not None or method.upper() != "POST":
            return super()._make_request(url, method, headers, data, params, callback, timeout)
        response = requests.post(
            url=url, headers=headers, params=params, data=data, timeout=timeout
        )
        if not 200 <= response.status_code < 300:
            raise GatewayHTTPError(response.status_code, response.text)
        return response.text


def _clip(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= _MAX_ERROR_TEXT else text[: _MAX_ERROR_TEXT - 3] + "..."


class AfricasTalkingGateway:
    """Sends through AT's `POST {base}/version1/messaging` with the official SDK."""

    def __init__(
        self,
        *,
        username: str,
        api_key: str,
        sender_id: str | None = None,
        base_url: str | None = None,
        timeout: tuple[float, float] = (CONNECT_TIMEOUT_S, READ_TIMEOUT_S),
    ) -> None:
        self._service = _SMSService(username, api_key, base_url=base_url)
        self._sender_id = sender_id
        self._timeout = timeout

    @property
    def url(self) -> str:
        return self._service._make_url("/messaging")

    def send(self, *, to: str, message: str) -> SmsAccepted:
        try:
            raw = self._service.send(
                message, [to], sender_id=self._sender_id, timeout=self._timeout
            )
        except ValueError as exc:  # the SDK's phone validation, before any I/O
            raise PermanentSmsError(f"invalid recipient number: {exc}") from None
        except GatewayHTTPError as exc:
            outcome = classify_http_status(exc.status_code)
            permanent = outcome is Outcome.PERMANENT or self._refused_permanently(exc.body)
            error_class = PermanentSmsError if permanent else TransientSmsError
            raise error_class(
                f"gateway answered HTTP {exc.status_code}: {_clip(exc.body)}"
            ) from None
        except requests.Timeout as exc:
            raise TransientSmsError(f"gateway timed out ({type(exc).__name__})") from None
        except requests.RequestException as exc:
            raise TransientSmsError(
                f"gateway unreachable ({type(exc).__name__}: {_clip(exc)})"
            ) from None
        except AfricasTalkingException as exc:
            raise TransientSmsError(f"gateway error: {_clip(exc)}") from None
        return self._parse(raw, to)

    @staticmethod
    def _refused_permanently(body: str) -> bool:
        """A refusal whose JSON body carries a permanent per-recipient code (e.g. DND 409)."""
        try:
            recipients = json.loads(body)["SMSMessageData"]["Recipients"]
            codes = [int(r["statusCode"]) for r in recipients]
        except (ValueError, KeyError, TypeError):
            return False
        return bool(codes) and all(classify_status_code(c) is Outcome.PERMANENT for c in codes)

    @staticmethod
    def _parse(raw: Any, to: str) -> SmsAccepted:
        try:
            body = json.loads(raw) if isinstance(raw, str | bytes) else raw
            data = body["SMSMessageData"]
            recipients = data.get("Recipients") or []
        except (ValueError, KeyError, TypeError, AttributeError):
            # A 2xx we cannot read: the gateway may or may not have taken it (see docs/sms.md).
            raise TransientSmsError(f"unreadable gateway response: {_clip(raw)}") from None
        if not recipients:
            # AT answers e.g. {"Message": "InvalidSenderId", "Recipients": []} for a request it
            # refuses as a whole; resending the same request cannot succeed.
            raise PermanentSmsError(
                f"gateway accepted no recipient: {_clip(data.get('Message', ''))}"
            )
        entry = next((r for r in recipients if r.get("number") == to), recipients[0])
        try:
            code = int(entry["statusCode"])
        except (KeyError, TypeError, ValueError):
            raise TransientSmsError(
                f"gateway response without statusCode: {_clip(entry)}"
            ) from None
        status = str(entry.get("status", ""))
        outcome = classify_status_code(code)
        if outcome is Outcome.PERMANENT:
            raise PermanentSmsError(f"gateway refused the recipient: {code} {status}")
        if outcome is Outcome.TRANSIENT:
            raise TransientSmsError(f"gateway could not take the message now: {code} {status}")
        message_id = entry.get("messageId")
        return SmsAccepted(
            message_id=str(message_id) if message_id not in (None, "", "None") else None,
            cost=str(entry.get("cost", "")),
            status_code=code,
            status=status,
        )


class ConsoleGateway:
    """Development backend: logs the SMS instead of sending it (no credentials configured)."""

    def send(self, *, to: str, message: str) -> SmsAccepted:
        if not _E164.match(to):
            raise PermanentSmsError(f"invalid recipient number: {to}")
        message_id = f"console-{uuid.uuid4().hex}"
        logger.info("SMS to %s (console backend, not sent; id %s): %s", to, message_id, message)
        return SmsAccepted(message_id=message_id, cost="", status_code=101, status="Success")


def get_gateway() -> SmsGateway:
    """The gateway the settings ask for: Africa's Talking with credentials, else the console."""
    username = settings.AFRICAS_TALKING_USERNAME
    api_key = settings.AFRICAS_TALKING_API_KEY
    if not username or not api_key:
        return ConsoleGateway()
    read_timeout = float(getattr(settings, "SMS_GATEWAY_READ_TIMEOUT_SECONDS", READ_TIMEOUT_S))
    return AfricasTalkingGateway(
        username=username,
        api_key=api_key,
        sender_id=settings.AFRICAS_TALKING_SENDER_ID,
        base_url=settings.AFRICAS_TALKING_API_URL,
        timeout=(CONNECT_TIMEOUT_S, read_timeout),
    )
