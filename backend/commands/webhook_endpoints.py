"""Webhook endpoints on the write side: create, delete, enable again, ping (docs/webhooks.md). The events and
their deliveries are the outbox's webhook channel (`backend.commands.outbox.webhook_deliveries`).

An endpoint belongs to the token subject (`sub`) that created it: every command here takes that
`owner` and treats another subject's endpoint as missing. Signing secrets are stored encrypted
with WEBHOOK_SECRET_KEYS (`seal_secret` / `open_secret`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import connection
from django.utils import timezone

from backend.commands.models import WebhookEndpoint
from backend.commands.outbox import webhook_deliveries
from backend.commands.transactions import handler
from backend.errors import InvalidField, NotFound, TooManyWebhookEndpoints
from backend.integrations.webhooks import UnsafeUrl, check_url
from backend.notifications import events

# Existing rows get this owner in migration 0008: no token has an empty `sub` (the validator
# refuses it), so they are visible to nobody until an operator reassigns them.
NO_OWNER = ""
PLAINTEXT_PREFIX = "whsec_"


class UnreadableSecret(Exception):
    """No key of WEBHOOK_SECRET_KEYS decrypts a stored secret (a key was dropped too early)."""


# --- Secrets at rest -----------------------------------------------------------------------------


def _fernet(entry: str) -> Fernet:
    """One configured key: any string, hashed into Fernet's 32 bytes (HMAC-SHA256 with a fixed
    label, so the default derived from DJANGO_SECRET_KEY is not the Django key itself)."""
    digest = hmac.new(entry.encode("utf-8"), b"duka webhook secrets v1", hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def _keys() -> MultiFernet:
    return MultiFernet([_fernet(entry) for entry in settings.WEBHOOK_SECRET_KEYS])


def seal_secret(secret: str) -> str:
    """The stored form of a signing secret: a Fernet token under the first key."""
    return _keys().encrypt(secret.encode("utf-8")).decode("ascii")


def open_secret(stored: str) -> str:
    """The signing secret from its stored form; any listed key decrypts (rotation). A plaintext
    `whsec_` value (written by a process older than migration 0009 during a rolling deploy) is
    returned as it is; `reseal_webhook_secrets` encrypts such rows. Raises `UnreadableSecret`."""
    if stored.startswith(PLAINTEXT_PREFIX):
        return stored
    try:
        return _keys().decrypt(stored.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError):
        raise UnreadableSecret("no key of WEBHOOK_SECRET_KEYS decrypts the secret") from None


def reseal(stored: str) -> str:
    """`stored` encrypted under the first key (plaintext encrypted, other keys' tokens
    re-encrypted); the same value when it already is, so callers can skip the write."""
    if not stored.startswith(PLAINTEXT_PREFIX):
        try:
            _fernet(settings.WEBHOOK_SECRET_KEYS[0]).decrypt(stored.encode("ascii"))
        except InvalidToken:
            pass
        else:
            return stored
    return seal_secret(open_secret(stored))


@handler
def reseal_secrets() -> int:
    """Re-encrypt every endpoint's secret under the first key of WEBHOOK_SECRET_KEYS (after a
    key was put first; then the older keys can be dropped). Deleted endpoints too: their rows
    still hold a secret. Returns how many rows changed. Raises `UnreadableSecret` (and changes
    nothing) when a secret cannot be decrypted with any listed key."""
    changed = 0
    for endpoint in WebhookEndpoint.objects.select_for_update().only("pk", "secret").order_by("pk"):
        sealed = reseal(endpoint.secret)
        if sealed != endpoint.secret:
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(secret=sealed)
            changed += 1
    return changed


# --- Commands ------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CreateWebhookEndpoint:
    owner: str  # the token's `sub`: only this subject sees and manages the endpoint
    url: str
    events: list[str]
    description: str = ""


def new_secret() -> str:
    """`whsec_` + base64 of 32 random bytes (Standard Webhooks' secret format)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def _lock_owner(owner: str) -> None:
    """Serialise creates of one subject until commit, so two concurrent ones cannot both pass
    the cap (a row lock cannot lock rows that do not exist yet)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtext('webhook_endpoints'), hashtext(%s))", [owner]
        )


@handler
def create_webhook_endpoint(cmd: CreateWebhookEndpoint) -> int:
    """Precondition: `events` are known types and the caller holds their read scopes (the API
    checks both). The URL is checked against the SSRF rules here, and again before every
    connection. At most WEBHOOKS_MAX_ENDPOINTS live endpoints per owner."""
    try:
        check_url(cmd.url)
    except UnsafeUrl as exc:
        raise InvalidField("url", f"The URL {exc}.") from None
    _lock_owner(cmd.owner)
    limit = settings.WEBHOOKS_MAX_ENDPOINTS
    if WebhookEndpoint.objects.filter(owner=cmd.owner, deleted_at__isnull=True).count() >= limit:
        raise TooManyWebhookEndpoints(
            f"A token subject may have at most {limit} webhook endpoints "
            "(WEBHOOKS_MAX_ENDPOINTS); delete one before creating another."
        )
    endpoint = WebhookEndpoint.objects.create(
        owner=cmd.owner,
        url=cmd.url,
        events=list(dict.fromkeys(cmd.events)),
        description=cmd.description,
        secret=seal_secret(new_secret()),
        created_at=timezone.now(),
    )
    return endpoint.pk


def _live(endpoint_id: int, owner: str) -> WebhookEndpoint:
    """The owner's endpoint, locked; another subject's endpoint is as missing as a deleted one."""
    endpoint = (
        WebhookEndpoint.objects.select_for_update()
        .filter(pk=endpoint_id, owner=owner, deleted_at__isnull=True)
        .first()
    )
    if endpoint is None:
        raise NotFound(f"Webhook endpoint {endpoint_id} does not exist.")
    return endpoint


@handler
def delete_webhook_endpoint(endpoint_id: int, *, owner: str) -> None:
    """Marks it deleted; its pending events are dropped when the worker reaches them."""
    endpoint = _live(endpoint_id, owner)
    endpoint.deleted_at = timezone.now()
    endpoint.enabled = False
    endpoint.save(update_fields=["deleted_at", "enabled"])


@handler
def enable_webhook_endpoint(endpoint_id: int, *, owner: str) -> bool:
    """Enable an endpoint again after it was disabled (410 Gone, or days of failed attempts):
    events written from now on reach it. Its run of failures starts afresh, so the next failure
    does not disable it again at once; events given up while it was disabled stay failed.
    Returns False (and changes nothing) when it is enabled already."""
    endpoint = _live(endpoint_id, owner)
    if endpoint.enabled:
        return False
    endpoint.enabled = True
    endpoint.disabled_reason = ""
    endpoint.failing_since = None
    endpoint.save(update_fields=["enabled", "disabled_reason", "failing_since"])
    return True


def get_secret(endpoint_id: int) -> str:
    """The signing secret, decrypted, for the create response only (it is never shown again)."""
    return open_secret(WebhookEndpoint.objects.values_list("secret", flat=True).get(pk=endpoint_id))


@handler
def ping_webhook_endpoint(endpoint_id: int, *, owner: str) -> str:
    """Queue a `webhook.ping` event to this endpoint (enabled or not: a ping after fixing the
    receiver shows whether it works). Returns the event id."""
    endpoint = _live(endpoint_id, owner)
    now = timezone.now()
    event_id = events.new_event_id()
    body = events.event_body(
        event_type=events.PING,
        occurred_at=now,
        data={"endpoint_id": endpoint.pk, "url": endpoint.url},
    )
    webhook_deliveries.add_deliveries(
        [endpoint.pk],
        event_id=event_id,
        event_type=events.PING,
        subject=f"endpoint:{endpoint.pk}",
        body=body,
        now=now,
    )
    return event_id
