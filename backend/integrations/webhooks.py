"""Outgoing webhook HTTP: the SSRF rules and one bounded POST (contract section 9).

* `check_url` is the create-time rule: `https`, and every address the host resolves to is a
  public one (not loopback, private, link-local, site-local, shared, reserved, multicast or a
  cloud metadata address, nor an IPv6 address embedding such an IPv4 one: IPv4-mapped,
  -compatible and -translated, NAT64, 6to4, Teredo). `WEBHOOKS_ALLOW_PRIVATE=1` allows `http`
  and any address (development and tests).
* Messages (the 422's text, an endpoint's `last_error`) name no resolved address and no
  operating-system error text: they would map internal names and let a caller probe ports
  through Duka. The details go to the log.
* `post` resolves the host again, applies the same rule to the addresses it is about to use,
  and connects to one of *those* addresses (TLS still verifies the certificate for the host
  name), so a name that re-resolves to 127.0.0.1 after the check (DNS rebinding) is refused.
  No redirect is followed (http.client never does), the response body read is bounded, and a
  watchdog shuts the socket down when the total deadline passes, so a receiver that trickles
  bytes cannot stretch an attempt.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import logging
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from django.conf import settings

from backend.integrations.deadline import WATCHDOG

# Metadata services that are not already outside the global address space.
_METADATA = {
    ipaddress.ip_address("169.254.169.254"),
    ipaddress.ip_address("fd00:ec2::254"),
    ipaddress.ip_address("100.100.100.200"),
    ipaddress.ip_address("192.0.0.192"),
}
USER_AGENT = "Duka-Webhooks/1"
# IPv6 forms that carry an IPv4 address in their last 32 bits (RFC 4291, 6052, 6145).
_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated IPv4-compatible
_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # SIIT IPv4-translated
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # the well-known NAT64 prefix
# RFC 8215 local-use NAT64: a site's own translator, whose embedding depends on its prefix length.
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_SITE_LOCAL = ipaddress.ip_network("fec0::/10")  # deprecated, still routed inside some sites

logger = logging.getLogger(__name__)


class UnsafeUrl(ValueError):
    """The URL is not one we may call (scheme, host, or an address it resolves to)."""


class DeliveryError(Exception):
    """The attempt did not get an HTTP answer (connection, TLS, timeout, deadline, refused)."""


@dataclass(frozen=True, kw_only=True)
class Answer:
    status: int
    body: bytes  # at most WEBHOOK_RESPONSE_MAX_BYTES


def allow_private() -> bool:
    return bool(settings.WEBHOOKS_ALLOW_PRIVATE)


def address_refusal(address: str) -> str | None:
    """Why `address` may not be called, or None when it is a public address. The reason never
    repeats the address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        return _ipv6_refusal(ip)
    return _refusal(ip)


def _ipv6_refusal(ip: ipaddress.IPv6Address) -> str | None:
    """IPv6 rules first, then those of an embedded IPv4 address: a NAT64 or 6to4 gateway, or a
    dual-stack socket, delivers to that IPv4 address."""
    if ip.is_loopback:
        return "a loopback address"
    if ip in _SITE_LOCAL:
        return "a site-local address"
    if ip in _NAT64_LOCAL:
        return "a local-use NAT64 address"
    if ip.teredo is not None:  # (server, client): both are reached through the tunnel
        for embedded in ip.teredo:
            why = _refusal(embedded)
            if why is not None:
                return why
        return "not a public address (Teredo)"
    embedded = ip.ipv4_mapped or ip.sixtofour
    if embedded is None and any(ip in net for net in (_COMPATIBLE, _TRANSLATED, _NAT64)):
        embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if embedded is not None:
        why = _refusal(embedded)
        if why is None and ip in _COMPATIBLE:
            return "a deprecated IPv4-compatible address"
        return why
    return _refusal(ip)


def _refusal(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if ip in _METADATA:
        return "a cloud metadata address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_private:
        return "a private address"
    if not ip.is_global or ip.is_multicast:
        return "not a public address"
    return None


def _parts(url: str, *, private_ok: bool) -> SplitResult:
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        raise UnsafeUrl("must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise UnsafeUrl("is not a valid URL (host or port)") from None
    allowed = ("https", "http") if private_ok else ("https",)
    if parts.scheme not in allowed:
        raise UnsafeUrl("must be an https URL")
    if not parts.hostname:
        raise UnsafeUrl("must name a host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl("must not carry credentials")
    if parts.fragment:
        raise UnsafeUrl("must not have a fragment")
    return parts


def _port(parts: SplitResult) -> int:
    return parts.port or (443 if parts.scheme == "https" else 80)


def resolve(parts: SplitResult, *, private_ok: bool) -> list[str]:
    """The addresses to connect to; raises UnsafeUrl when any of them is refused (a name with
    one private address among public ones is refused as a whole: we cannot choose for the OS)."""
    try:
        infos = socket.getaddrinfo(
            parts.hostname, _port(parts), type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except (OSError, UnicodeError) as exc:
        logger.info("webhook host %r does not resolve: %s", parts.hostname, exc)
        raise UnsafeUrl("host does not resolve") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not private_ok:
        for address in addresses:
            why = address_refusal(address)
            if why is not None:
                logger.info("webhook host %r refused: %s is %s", parts.hostname, address, why)
                raise UnsafeUrl(f"host resolves to {why}")
    return addresses


def check_url(url: str) -> None:
    """The create-time rule; raises UnsafeUrl with a reason fit for a 422."""
    private_ok = allow_private()
    parts = _parts(url, private_ok=private_ok)
    if not private_ok:
        resolve(parts, private_ok=False)


class _PinnedConnection(http.client.HTTPSConnection):
    """Connects to an address chosen (and checked) beforehand, never to a fresh resolution.
    Certificates are verified for the URL's host name (SNI and hostname check)."""

    def __init__(
        self, parts: SplitResult, address: str, timeout: float, context: ssl.SSLContext | None
    ) -> None:
        super().__init__(parts.hostname or "", _port(parts), timeout=timeout, context=context)
        self._address = address
        self._tls = parts.scheme == "https"

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), timeout=self.timeout)
        if self._tls:
            self.sock = self._context.wrap_socket(raw, server_hostname=self.host)
        else:
            self.sock = raw


def post(url: str, *, body: bytes, headers: dict[str, str]) -> Answer:
    """One POST within WEBHOOK_DEADLINE_SECONDS in total. Raises UnsafeUrl (the address is
    refused now) or DeliveryError (no answer)."""
    deadline = float(settings.WEBHOOK_DEADLINE_SECONDS)
    started = time.monotonic()
    private_ok = allow_private()
    parts = _parts(url, private_ok=private_ok)
    addresses = resolve(parts, private_ok=private_ok)
    context = ssl.create_default_context() if parts.scheme == "https" else None
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    last: Exception | None = None
    for address in addresses:
        left = deadline - (time.monotonic() - started)
        if left <= 0:
            break
        conn = _PinnedConnection(
            parts,
            address,
            timeout=min(float(settings.WEBHOOK_CONNECT_TIMEOUT_SECONDS), left),
            context=context,
        )
        try:
            conn.connect()
        except OSError as exc:
            last = exc
            conn.close()
            continue
        return _exchange(conn, path, body, headers, deadline - (time.monotonic() - started))
    if last is not None:
        logger.info("webhook to host %r: cannot connect (%s)", parts.hostname, last)
        # A TLS failure is the receiver's to fix and says nothing about other hosts or ports.
        raise DeliveryError(
            _generic(last) if isinstance(last, ssl.SSLError) else "cannot connect to the receiver"
        )
    raise DeliveryError("deadline passed")


def _exchange(
    conn: _PinnedConnection, path: str, body: bytes, headers: dict[str, str], left: float
) -> Answer:
    expired = threading.Event()

    def cut_off() -> None:
        expired.set()
        sock = conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    watchdog = WATCHDOG.arm(left, cut_off)
    try:
        if conn.sock is not None:
            conn.sock.settimeout(max(left, 0.001))
        conn.request(
            "POST",
            path,
            body=body,
            headers={**headers, "User-Agent": USER_AGENT, "Connection": "close"},
        )
        response = conn.getresponse()
        data = b""
        if not 200 <= response.status < 300:
            # Only for the error message; a 2xx is a success whatever its body does.
            with contextlib.suppress(OSError, http.client.HTTPException):
                data = response.read(int(settings.WEBHOOK_RESPONSE_MAX_BYTES))
        return Answer(status=response.status, body=data)
    except (OSError, http.client.HTTPException) as exc:
        if expired.is_set():
            raise DeliveryError(
                f"no complete answer within {settings.WEBHOOK_DEADLINE_SECONDS:g} s"
            ) from None
        logger.info("webhook to host %r failed: %s: %s", conn.host, type(exc).__name__, exc)
        raise DeliveryError(_generic(exc)) from None
    finally:
        watchdog.disarm()
        conn.close()


def _generic(exc: BaseException) -> str:
    """What went wrong, in words that carry no address and no operating-system text."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "the receiver's TLS certificate does not verify"
    if isinstance(exc, ssl.SSLError):
        return "the TLS handshake with the receiver failed"
    if isinstance(exc, TimeoutError):
        return "the receiver did not answer in time"
    if isinstance(exc, http.client.HTTPException):
        return "the receiver's answer is not valid HTTP"
    return "the connection to the receiver failed"
