"""Signing keys of an issuer: parsing a JWKS, and a per-process cache of a remote issuer's keys.

We do not use `jwt.PyJWKClient`: it holds one lock across the network fetch, so a slow issuer
stalls every request, and it forgets its keys when a refresh fails. `RemoteKeys` instead:

* serves known keys without waiting on anything, even while a refresh is in flight;
* refreshes for an unknown `kid` at most once per `refresh_cooldown` (30 s) per process, so a
  flood of tokens with made-up kids costs one JWKS fetch, yet a newly published key is usable
  within cooldown + fetch timeout (35 s) of its first use;
* keeps the last good keys when the issuer is unreachable (stale-if-error);
* raises `IssuerUnavailable` only when no key was ever fetched.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import urllib.error
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from backend.integrations.oidc_claims import IssuerUnavailable
from backend.integrations.oidc_http import FETCH_TIMEOUT_SECONDS, Discovery, fetch_json

logger = logging.getLogger(__name__)

REFRESH_COOLDOWN_SECONDS = 30.0
# Retrying a dead issuer when no key is cached: short, because every request is failing meanwhile.
UNAVAILABLE_BACKOFF_SECONDS = 5.0
# Known keys are re-fetched in the background after this long, so removed keys stop working.
KEYS_MAX_AGE_SECONDS = 600.0

_EC_CURVES = {"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1"}


@dataclass(frozen=True)
class VerificationKey:
    public_key: Any
    alg: str | None  # the JWK's declared "alg", when it has one

    def accepts(self, alg: str) -> bool:
        """Whether a token header `alg` fits this key (never trusting the token to pick it)."""
        if self.alg is not None and self.alg != alg:
            return False
        key = self.public_key
        if isinstance(key, rsa.RSAPublicKey):
            return alg[:2] in ("RS", "PS")
        if isinstance(key, ec.EllipticCurvePublicKey):
            return _EC_CURVES.get(alg) == key.curve.name
        if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            return alg == "EdDSA"
        return False


def keys_from_jwks(document: Any) -> dict[str, VerificationKey]:
    """Usable signing keys of a JWKS by kid; symmetric, encryption and kid-less keys are dropped."""
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWK Set")
    keys: dict[str, VerificationKey] = {}
    for entry in document["keys"]:
        if not isinstance(entry, Mapping):
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or not kid:
            continue
        if entry.get("kty") not in ("RSA", "EC", "OKP") or entry.get("use", "sig") != "sig":
            continue
        alg = entry.get("alg")
        try:
            public_key = jwt.PyJWK(dict(entry)).key
        except Exception:
            logger.warning("ignoring a JWKS key pyjwt cannot load (kid %r)", kid)
            continue
        if isinstance(public_key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            public_key = public_key.public_key()
        keys[kid] = VerificationKey(
            public_key=public_key, alg=alg if isinstance(alg, str) else None
        )
    if not keys:
        raise ValueError("the JWK Set has no usable signing key")
    return keys


class KeySource(Protocol):
    def get(self, kid: str) -> VerificationKey | None:
        """The key for `kid`, or None. May raise IssuerUnavailable."""


class StaticKeys:
    """A fixed key set (the built-in issuer's own keys, handed over as its JWKS document)."""

    def __init__(self, keys: Mapping[str, VerificationKey]) -> None:
        self._keys = dict(keys)

    def get(self, kid: str) -> VerificationKey | None:
        return self._keys.get(kid)


class RemoteKeys:
    """JWKS of a remote issuer, cached per process with a bounded refresh rate.

    Thread-safe. The lock only guards bookkeeping; the fetch itself runs outside it, in the one
    thread that started it. Threads that need the result (unknown kid, nothing cached) wait on
    an event for at most the fetch timeout; all others go on with the cached keys.
    """

    def __init__(
        self,
        issuer: str,
        *,
        discovery: Discovery | None = None,
        timeout: float = FETCH_TIMEOUT_SECONDS,
        refresh_cooldown: float = REFRESH_COOLDOWN_SECONDS,
        unavailable_backoff: float = UNAVAILABLE_BACKOFF_SECONDS,
        max_age: float = KEYS_MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = issuer
        self.discovery = discovery or Discovery(issuer, timeout=timeout)
        self.timeout = timeout
        self.refresh_cooldown = refresh_cooldown
        self.unavailable_backoff = unavailable_backoff
        self.max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, VerificationKey] | None = None
        self._fetched_at = -math.inf
        self._attempted_at = -math.inf
        self._inflight: threading.Event | None = None

    def get(self, kid: str) -> VerificationKey | None:
        keys = self._keys
        now = self._clock()
        if keys is not None and kid in keys:
            if now - self._fetched_at > self.max_age:
                self._refresh(wait=False)  # in the background; the cached key serves now
            return keys[kid]
        self._refresh(wait=True)
        keys = self._keys
        if keys is None:
            remaining = self._attempted_at + self.unavailable_backoff - self._clock()
            raise IssuerUnavailable(retry_after=max(1, math.ceil(remaining)))
        return keys.get(kid)

    def _refresh(self, *, wait: bool) -> None:
        now = self._clock()
        with self._lock:
            event = self._inflight
            starter = False
            if event is None:
                gap = self.refresh_cooldown if self._keys is not None else self.unavailable_backoff
                if now - self._attempted_at < gap:
                    return
                event = self._inflight = threading.Event()
                self._attempted_at = now
                starter = True
        if not starter:
            if wait:
                event.wait(2 * self.timeout + 1)
            return
        if wait:
            self._fetch(event)
        else:
            threading.Thread(target=self._fetch, args=(event,), daemon=True).start()

    def _fetch(self, event: threading.Event) -> None:
        try:
            keys = self._download()
        except Exception as exc:
            logger.warning(
                "could not refresh signing keys of %s (%s: %s); %s",
                self.issuer,
                type(exc).__name__,
                exc,
                "keeping the cached keys" if self._keys is not None else "no key cached yet",
            )
            keys = None
        with self._lock:
            if keys is not None:
                self._keys = keys
                self._fetched_at = self._clock()
            self._inflight = None
        event.set()

    def _download(self) -> dict[str, VerificationKey]:
        jwks_uri = self.discovery.endpoint("jwks_uri")
        if jwks_uri is None:
            self.discovery.forget()
            raise ValueError("discovery document has no jwks_uri")
        try:
            return keys_from_jwks(fetch_json(jwks_uri, self.timeout))
        except urllib.error.HTTPError:
            self.discovery.forget()  # the issuer may have moved its JWKS; rediscover next time
            raise
