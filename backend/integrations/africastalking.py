"""Africa's Talking SMS behind a small port (`SmsGateway`), and AT's status vocabulary.

The official SDK (`africastalking.SMS.SMSService`) builds and validates the request; one adapter
subclass (`SdkSMSService`, the only user of the SDK's private hooks) adds what the SDK lacks: a
base-URL override, the HTTP status of a refused request, and a body we always parse ourselves
(the SDK returns a `str` unless the content type is exactly `application/json`). Every error
leaves this module as `TransientSmsError` (try again later) or `PermanentSmsError` (never
retry), so callers never see `requests` or SDK exceptions.

With no credentials configured, `get_gateway()` returns `ConsoleGateway`, which writes the message
to the log instead of sending it (the quick start needs no account).
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import os
import re
import socket
import threading
import uuid
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

import requests
import urllib3
from africastalking.Service import AfricasTalkingException
from africastalking.SMS import SMSService
from django.conf import settings
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from backend.integrations.deadline import WATCHDOG

logger = logging.getLogger(__name__)

_E164 = re.compile(r"^\+\d{1,3}\d{3,}$")  # what the SDK accepts (`Service.validate_phone`)
_MAX_ERROR_TEXT = 300


# --- Errors and results -----------------------------------------------------------------------


class SmsError(Exception):
    """A send that did not result in the gateway accepting the message. `reason` is a short,
    stable word for API consumers (`sms_error`), e.g. `InvalidPhoneNumber`, `Timeout`; the
    message is the detail for logs."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class TransientSmsError(SmsError):
    """Worth retrying: the gateway or the network may accept the same request later."""


class PermanentSmsError(SmsError):
    """Retrying cannot help (invalid number, blacklisted, rejected)."""


@dataclass(frozen=True, kw_only=True)
class SmsAccepted:
    """The gateway took the message; `message_id` is what delivery reports will quote."""

    message_id: str | None
    cost: str


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


# --- Delivery reports: AT's vocabulary -----------------------------------------------------------


class ReportOutcome(enum.Enum):
    DELIVERED = "delivered"
    FAILED = "failed"


# Final statuses move the message on; the rest (Sent, Submitted, Buffered, ...) are intermediate.
DELIVERED_REPORT_STATUSES = frozenset({"Success"})
FAILED_REPORT_STATUSES = frozenset({"Failed", "Rejected", "AbsentSubscriber", "Expired"})


def classify_report_status(status: str) -> ReportOutcome | None:
    """A delivery report's `status`: delivered, failed, or None for an intermediate one."""
    if status in DELIVERED_REPORT_STATUSES:
        return ReportOutcome.DELIVERED
    if status in FAILED_REPORT_STATUSES:
        return ReportOutcome.FAILED
    return None


# --- Gateways ----------------------------------------------------------------------------------


class GatewayHTTPError(AfricasTalkingException):
    """The SDK's error for a non-2xx answer, plus the status code the SDK drops."""

    def __init__(self, status_code: int, body: str) -> None:
        super().__init__(body)
        self.status_code = status_code
        self.body = body


class DeadlineExceeded(TransientSmsError):
    """The gateway call ran past its total deadline and its connection was cut."""


# --- Transport: a keep-alive connection per thread and a total deadline ------------------------
#
# Socket timeouts are per socket operation: a reply that trickles one byte every few seconds
# never times out. The worker's claim lease is sized from the longest attempt, so an attempt
# needs a real upper bound: a watchdog shuts down the sockets the call is using when its
# deadline passes, which ends any blocked read at once.

_attempt = threading.local()


def _track(conn: HTTPConnection) -> None:
    conns = getattr(_attempt, "conns", None)
    if conns is not None and conn not in conns:
        conns.append(conn)


class _Tracked(HTTPConnection):
    """Registers itself with the current attempt on connect and on every request (a reused
    keep-alive connection never connects again)."""

    def connect(self) -> None:
        _track(self)
        super().connect()

    def request(self, *args: Any, **kwargs: Any) -> None:
        _track(self)
        super().request(*args, **kwargs)


class _TrackedHTTPConnection(_Tracked):
    pass


class _TrackedHTTPSConnection(_Tracked, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _TrackedHTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _TrackedHTTPSConnection


def _tls(verify: bool | str) -> dict[str, Any]:
    """urllib3's arguments for what `requests` calls `verify` (certifi's bundle by default)."""
    if verify is False:
        return {"cert_reqs": "CERT_NONE"}
    if isinstance(verify, str):
        return {"ca_cert_dir": verify} if os.path.isdir(verify) else {"ca_certs": verify}
    return {"cert_reqs": "CERT_REQUIRED", "ca_certs": requests.certs.where()}


@dataclass(frozen=True)
class _Route:
    """How this thread reaches one URL: a connection pool and the request target to send."""

    pool: urllib3.PoolManager | HTTPConnectionPool
    target: str


def _route(url: str) -> _Route:
    """This thread's keep-alive connection to the gateway, through the environment's proxy.

    The SDK would use `requests`, which re-reads the environment (proxies, CA bundle) and
    rebuilds settings, hooks and cookies for every call: two thirds of an SMS's worker CPU.
    urllib3 (what `requests` sends with) does the same call; the environment is read once per
    URL, with `requests`' own rules (HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE, ...). Without a
    proxy the call goes straight to the host's pool: the manager would parse the URL and look
    the pool up again on every call."""
    routes: dict[str, _Route] | None = getattr(_attempt, "routes", None)
    if routes is None:
        routes = _attempt.routes = {}
    if url not in routes:
        with requests.Session() as probe:
            environment = probe.merge_environment_settings(url, {}, None, None, None)
        proxy = requests.utils.select_proxy(url, environment["proxies"])
        options: dict[str, Any] = {"num_pools": 2, "maxsize": 1, "retries": False}
        options.update(_tls(environment["verify"]))
        manager = (
            urllib3.ProxyManager(proxy, **options) if proxy else urllib3.PoolManager(**options)
        )
        manager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
        if proxy:
            routes[url] = _Route(manager, url)
        else:
            target = urllib3.util.parse_url(url).request_uri
            routes[url] = _Route(manager.connection_from_url(url), target)
    return routes[url]


def _cut(conns: list[HTTPConnection], expired: threading.Event) -> None:
    expired.set()
    for conn in list(conns):
        sock = getattr(conn, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@dataclass(frozen=True)
class GatewayReply:
    status: int
    text: str


def _charset(content_type: str) -> str:
    for part in content_type.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.lower() == "charset" and value.strip('"'):
            return value.strip('"')
    return "utf-8"


class TransportError(Exception):
    """The call failed before a complete answer: `timeout` tells a timeout from the rest."""

    def __init__(self, message: str, *, timeout: bool) -> None:
        super().__init__(message)
        self.timeout = timeout


def post_within(
    url: str,
    *,
    deadline: float,
    timeout: tuple[float, float] | None,
    headers: dict[str, str],
    data: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
) -> GatewayReply:
    """A form `POST` on this thread's keep-alive connection, cut off after `deadline` seconds
    in all. Raises DeadlineExceeded when the watchdog had to cut the connection (a reply that
    was complete before then is returned even if the watchdog fired just after), and
    TransportError when the call failed otherwise."""
    if params:
        url += ("&" if "?" in url else "?") + urlencode(params, doseq=True)
    connect, read = timeout or (
        float(settings.SMS_GATEWAY_CONNECT_TIMEOUT_SECONDS),
        float(settings.SMS_GATEWAY_READ_TIMEOUT_SECONDS),
    )
    conns: list[HTTPConnection] = []
    expired = threading.Event()
    _attempt.conns = conns
    watchdog = WATCHDOG.arm(deadline, lambda: _cut(conns, expired))
    try:
        route = _route(url)
        response = route.pool.urlopen(
            "POST",
            route.target,
            body=urlencode(data or {}, doseq=True),
            headers={"Content-Type": "application/x-www-form-urlencoded", **headers},
            timeout=urllib3.Timeout(connect=connect, read=read),
            redirect=False,
            retries=False,
        )  # the whole body is read here (preload_content), inside the deadline
        try:
            text = response.data.decode(
                _charset(response.headers.get("Content-Type", "")), "replace"
            )
        except LookupError:  # a charset Python does not know
            text = response.data.decode("utf-8", "replace")
        return GatewayReply(response.status, text)
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        if expired.is_set():
            raise DeadlineExceeded(
                f"gateway gave no complete answer within {deadline:g}s", reason="Timeout"
            ) from None
        # NewConnectionError subclasses ConnectTimeoutError in urllib3 2: a refusal is no timeout.
        timed_out = isinstance(
            exc, urllib3.exceptions.TimeoutError | TimeoutError
        ) and not isinstance(exc, urllib3.exceptions.NewConnectionError)
        raise TransportError(f"{type(exc).__name__}: {exc}", timeout=timed_out) from None
    finally:
        watchdog.disarm()
        _attempt.conns = None


class SdkSMSService(SMSService):
    """The one place that touches the SDK's private hooks (`_init_service`, `_baseUrl`,
    `_make_url`, `_make_request`): the SDK builds and validates the request (URL, headers, form
    fields), this sends it on our transport with a configurable base URL. The SDK has no public
    way to do either; tests/unit/test_africastalking_sdk_contract.py pins these hooks on the
    installed SDK, and pyproject bounds its version."""

    def __init__(
        self, username: str, api_key: str, *, base_url: str | None, deadline: float
    ) -> None:
        # Set before the SDK's constructor, which calls `_init_service`.
        self._base_url_override = base_url.rstrip("/") if base_url else None
        self._deadline = deadline
        super().__init__(username, api_key)

    @property
    def messaging_url(self) -> str:
        """Where `send` posts: `{base}/version1/messaging`."""
        return self._make_url("/messaging")

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
    ) -> str:
        """The SDK's request on our transport (keep-alive, total deadline); keeps the HTTP
        status on errors and returns the body text for the caller to parse whatever its content
        type. Only `send`, synchronously, comes through here."""
        if callback is not None or method.upper() != "POST":
            raise NotImplementedError("only synchronous sends go through this adapter")
        response = post_within(
            url, deadline=self._deadline, timeout=timeout, headers=headers, params=params, data=data
        )
        if not 200 <= response.status < 300:
            raise GatewayHTTPError(response.status, response.text)
        return response.text


def _word(text: str, fallback: str) -> str:
    """A gateway status such as `InvalidPhoneNumber` when `text` is one, else `fallback`."""
    return text if re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,47}", text or "") else fallback


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
        timeout: tuple[float, float] | None = None,
        deadline: float | None = None,
    ) -> None:
        self._timeout = timeout or (
            float(settings.SMS_GATEWAY_CONNECT_TIMEOUT_SECONDS),
            float(settings.SMS_GATEWAY_READ_TIMEOUT_SECONDS),
        )
        self._service = SdkSMSService(
            username,
            api_key,
            base_url=base_url,
            deadline=deadline or float(settings.SMS_GATEWAY_DEADLINE_SECONDS),
        )
        self._sender_id = sender_id

    @property
    def url(self) -> str:
        return self._service.messaging_url

    def send(self, *, to: str, message: str) -> SmsAccepted:
        try:
            raw = self._service.send(
                message, [to], sender_id=self._sender_id, timeout=self._timeout
            )
        except ValueError as exc:  # the SDK's phone validation, before any I/O
            raise PermanentSmsError(
                f"invalid recipient number: {exc}", reason="InvalidPhoneNumber"
            ) from None
        except DeadlineExceeded:
            raise
        except GatewayHTTPError as exc:
            outcome = classify_http_status(exc.status_code)
            permanent = outcome is Outcome.PERMANENT or self._refused_permanently(exc.body)
            error_class = PermanentSmsError if permanent else TransientSmsError
            raise error_class(
                f"gateway answered HTTP {exc.status_code}: {_clip(exc.body)}",
                reason=f"HTTP {exc.status_code}",
            ) from None
        except TransportError as exc:
            if exc.timeout:
                raise TransientSmsError(f"gateway timed out ({exc})", reason="Timeout") from None
            raise TransientSmsError(
                f"gateway unreachable ({_clip(exc)})", reason="GatewayUnreachable"
            ) from None
        except AfricasTalkingException as exc:
            raise TransientSmsError(f"gateway error: {_clip(exc)}", reason="GatewayError") from None
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
            raise TransientSmsError(
                f"unreadable gateway response: {_clip(raw)}", reason="UnreadableResponse"
            ) from None
        if not recipients:
            # AT answers e.g. {"Message": "InvalidSenderId", "Recipients": []} for a request it
            # refuses as a whole; resending the same request cannot succeed.
            message = _clip(data.get("Message", ""))
            raise PermanentSmsError(
                f"gateway accepted no recipient: {message}", reason=_word(message, "Rejected")
            )
        entry = next((r for r in recipients if r.get("number") == to), recipients[0])
        try:
            code = int(entry["statusCode"])
        except (KeyError, TypeError, ValueError):
            raise TransientSmsError(
                f"gateway response without statusCode: {_clip(entry)}",
                reason="UnreadableResponse",
            ) from None
        status = str(entry.get("status", ""))
        outcome = classify_status_code(code)
        if outcome is Outcome.PERMANENT:
            raise PermanentSmsError(
                f"gateway refused the recipient: {code} {status}", reason=_word(status, str(code))
            )
        if outcome is Outcome.TRANSIENT:
            raise TransientSmsError(
                f"gateway could not take the message now: {code} {status}",
                reason=_word(status, str(code)),
            )
        message_id = entry.get("messageId")
        return SmsAccepted(
            message_id=str(message_id) if message_id not in (None, "", "None") else None,
            cost=str(entry.get("cost", "")),
        )


class ConsoleGateway:
    """Development backend: logs the SMS instead of sending it (no credentials configured)."""

    def send(self, *, to: str, message: str) -> SmsAccepted:
        if not _E164.match(to):
            raise PermanentSmsError(f"invalid recipient number: {to}", reason="InvalidPhoneNumber")
        message_id = f"console-{uuid.uuid4().hex}"
        logger.info("SMS to %s (console backend, not sent; id %s): %s", to, message_id, message)
        return SmsAccepted(message_id=message_id, cost="")


def get_gateway() -> SmsGateway:
    """The gateway the settings ask for: Africa's Talking with credentials, else the console."""
    username = settings.AFRICAS_TALKING_USERNAME
    api_key = settings.AFRICAS_TALKING_API_KEY
    if not username or not api_key:
        return ConsoleGateway()
    return AfricasTalkingGateway(
        username=username,
        api_key=api_key,
        sender_id=settings.AFRICAS_TALKING_SENDER_ID,
        base_url=settings.AFRICAS_TALKING_API_URL,
    )
