"""Talking to an OpenID provider over HTTP: bounded JSON fetches and its discovery document.

Redirects are not followed (a redirect to another host could swap the keys we trust), answers are
size-capped, and every call has a timeout.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

logger = logging.getLogger(__name__)

FETCH_TIMEOUT_SECONDS = 5.0
MAX_DOCUMENT_BYTES = 512 * 1024


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def _read_json(request: urllib.request.Request, timeout: float) -> Any:
    url = request.full_url
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"refusing to fetch non-http(s) URL {url!r}")
    with _opener.open(request, timeout=timeout) as response:
        if response.status != 200:
            raise ValueError(f"HTTP {response.status} from {url}")
        body = response.read(MAX_DOCUMENT_BYTES + 1)
    if len(body) > MAX_DOCUMENT_BYTES:
        raise ValueError(f"document at {url} is too large")
    return json.loads(body)


def fetch_json(url: str, timeout: float = FETCH_TIMEOUT_SECONDS) -> Any:
    """GET a JSON document. Raises on any failure (network, status other than 200, bad JSON)."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    return _read_json(request, timeout)


def post_form(
    url: str,
    fields: Mapping[str, str],
    *,
    basic_auth: tuple[str, str],
    timeout: float = FETCH_TIMEOUT_SECONDS,
) -> Any:
    """POST a form with HTTP Basic client authentication; the JSON answer.

    The id and secret are form-urlencoded before base64 (RFC 6749 section 2.3.1), which strict
    servers such as node-oidc-provider require when they contain reserved characters.
    """
    user, password = (urllib.parse.quote(part, safe="") for part in basic_auth)
    credentials = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    request = urllib.request.Request(  # noqa: S310
        url,
        data=urllib.parse.urlencode(fields).encode("ascii"),
        headers={
            "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded",
            "Authorization": f"Basic {credentials}",
        },
        method="POST",
    )
    return _read_json(request, timeout)


class Discovery:
    """An issuer's `/.well-known/openid-configuration`, fetched once and kept.

    `forget()` makes the next `document()` fetch again (the issuer may have moved an endpoint).
    """

    def __init__(self, issuer: str, *, timeout: float = FETCH_TIMEOUT_SECONDS) -> None:
        self.issuer = issuer
        self.timeout = timeout
        self._document: Mapping[str, Any] | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"

    def document(self) -> Mapping[str, Any]:
        """The discovery document. Raises on any failure to fetch it."""
        document = self._document
        if document is not None:
            return document
        fetched = fetch_json(self.url, self.timeout)
        if not isinstance(fetched, Mapping):
            raise ValueError("the discovery document is not a JSON object")
        if fetched.get("issuer") != self.issuer:
            logger.error(
                "OIDC_ISSUER %r differs from the discovery document's issuer %r: tokens "
                "will be refused as issued by a different issuer",
                self.issuer,
                fetched.get("issuer"),
            )
        with self._lock:
            self._document = fetched
        return fetched

    def endpoint(self, name: str) -> str | None:
        """A URL-valued entry of the document (`jwks_uri`, `introspection_endpoint`), or None."""
        value = self.document().get(name)
        return value if isinstance(value, str) and value else None

    def forget(self) -> None:
        with self._lock:
            self._document = None
