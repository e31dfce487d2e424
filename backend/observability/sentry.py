"""Error reporting to Sentry, on only when SENTRY_DSN is set.

`init_sentry()` runs once per process from the app's `ready()`: web, worker and management
commands alike. In the worker that is before the broker exists, which Sentry's Dramatiq
integration needs (it patches `Broker.__init__`). Nothing personal leaves: no default PII, no
request bodies (names and phone numbers), no local variables, and `scrub_event` removes
credentials (Authorization, apiKey, cookies, tokens, our own secrets) and masks phone numbers
in whatever is left.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from typing import Any

from django.conf import settings

from backend.observability.logging import REDACTED, redact

logger = logging.getLogger(__name__)

# Compared after lower-casing and dropping "-", "_" and ".", so `X-Api-Key`, `api_key` and
# `apiKey` are one entry.
SENSITIVE_KEYS = frozenset(
    {
        "authorization",
        "proxyauthorization",
        "apikey",
        "xapikey",
        "cookie",
        "cookies",
        "setcookie",
        "token",
        "accesstoken",
        "refreshtoken",
        "idtoken",
        "callbacktoken",
        "clientsecret",
        "secret",
        "password",
        "csrftoken",
        "sessionid",
        "privatekey",
        "phone",
        "phonenumber",
        "recipient",
        "msisdn",
        "to",
    }
)
_NORMALISE = re.compile(r"[-_.]")

_lock = threading.Lock()
_initialised = False


def _sensitive(key: object) -> bool:
    return isinstance(key, str) and _NORMALISE.sub("", key).lower() in SENSITIVE_KEYS


def _secret_values() -> list[str]:
    """Our own credentials, removed verbatim wherever they appear (long enough to be unique)."""
    names = (
        "AFRICAS_TALKING_API_KEY",
        "SMS_CALLBACK_TOKEN",
        "SECRET_KEY",
        "OIDC_CLIENT_SECRET",
    )
    values = [getattr(settings, name, None) for name in names]
    return sorted((v for v in values if isinstance(v, str) and len(v) >= 8), key=len, reverse=True)


def _scrub(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, REDACTED)
        return redact(value)
    if isinstance(value, dict):
        return {
            k: (REDACTED if _sensitive(k) and v not in (None, "") else _scrub(v, secrets))
            for k, v in value.items()
        }
    if isinstance(value, list):
        # Header and cookie lists come as [name, value] pairs.
        if len(value) == 2 and _sensitive(value[0]):
            return [value[0], REDACTED]
        return [_scrub(v, secrets) for v in value]
    return value


def scrub_event(event: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
    """Sentry's `before_send`: the event, already serialised to plain data, minus credentials
    and phone numbers. Query strings are reduced to their parameter names."""
    request = event.get("request")
    if isinstance(request, dict) and isinstance(request.get("query_string"), str):
        names = [part.split("=", 1)[0] for part in request["query_string"].split("&") if part]
        request["query_string"] = "&".join(f"{name}={REDACTED}" for name in names)
    return _scrub(event, _secret_values())


def sentry_options(dsn: str) -> dict[str, Any]:
    from sentry_sdk.integrations.django import DjangoIntegration
    from sentry_sdk.integrations.dramatiq import DramatiqIntegration
    from sentry_sdk.scrubber import DEFAULT_DENYLIST, EventScrubber

    return {
        "dsn": dsn,
        "environment": os.environ.get("SENTRY_ENVIRONMENT") or None,
        "release": os.environ.get("SENTRY_RELEASE") or None,
        "integrations": [DjangoIntegration(), DramatiqIntegration()],
        "send_default_pii": False,
        "include_local_variables": False,
        "max_request_body_size": "never",
        "event_scrubber": EventScrubber(
            denylist=[*DEFAULT_DENYLIST, "phone", "phone_number", "recipient", "msisdn"],
            recursive=True,
        ),
        "before_send": scrub_event,
        # Errors only: performance tracing is not set up.
        "traces_sample_rate": 0.0,
    }


def init_sentry() -> bool:
    """Start Sentry in this process if SENTRY_DSN is set; True when this call started it."""
    global _initialised
    dsn = settings.SENTRY_DSN
    if not dsn:
        return False
    with _lock:
        if _initialised:
            return False
        import sentry_sdk

        sentry_sdk.init(**sentry_options(dsn))
        _initialised = True
    logger.info(
        "Sentry error reporting is on (environment %s)",
        os.environ.get("SENTRY_ENVIRONMENT") or "production",
    )
    return True
