"""OpenID Connect access-token validation (a resource server's view of the issuer).

Keys come from the issuer's JWKS (found through discovery) and are cached per process. We do not
use `jwt.PyJWKClient`: it holds one lock across the network fetch, so a slow issuer stalls every
request, and it forgets its keys when a refresh fails. The cache here instead:

* serves known keys without waiting on anything, even while a refresh is in flight;
* refreshes for an unknown `kid` at most once per `refresh_cooldown` (30 s) per process, so a
  flood of tokens with made-up kids costs one JWKS fetch, yet a newly published key is usable
  within cooldown + fetch timeout (35 s) of its first use;
* keeps the last good keys when the issuer is unreachable (stale-if-error);
* raises `IssuerUnavailable` only when no key was ever fetched.

With the built-in issuer (`OIDC_ISSUER` unset) the keys are derived from its own signing key:
fetching our own JWKS over HTTP could deadlock a single sync worker.

Every failure a token can cause surfaces as `InvalidToken`; pyjwt raises TypeError/ValueError on
some malformed input, so decoding is wrapped broadly.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from django.conf import settings
from django.core.signals import setting_changed

logger = logging.getLogger(__name__)

LEEWAY_SECONDS = 30
REFRESH_COOLDOWN_SECONDS = 30.0
# Retrying a dead issuer when no key is cached: short, because every request is failing meanwhile.
UNAVAILABLE_BACKOFF_SECONDS = 5.0
FETCH_TIMEOUT_SECONDS = 5.0
# Known keys are re-fetched in the background after this long, so removed keys stop working.
KEYS_MAX_AGE_SECONDS = 600.0
MAX_TOKEN_LENGTH = 8192
MAX_DOCUMENT_BYTES = 512 * 1024

_EC_CURVES = {"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1"}


class OidcError(Exception):
    """Root of the errors this module raises."""


class InvalidToken(OidcError):
    """The token is not acceptable. `reason` is safe to show to the caller (no token data)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class IssuerUnavailable(OidcError):
    """No signing key was ever fetched and the issuer cannot be reached right now."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the token issuer is unreachable; retry in {retry_after} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Principal:
    """Who called: `request.auth` in the API. `str()` is the subject (ninja throttles hash it)."""

    subject: str
    client_id: str | None
    scopes: frozenset[str]

    def __str__(self) -> str:
        return self.subject


@dataclass(frozen=True)
class _Key:
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


def keys_from_jwks(document: Any) -> dict[str, _Key]:
    """Usable signing keys of a JWKS by kid; symmetric, encryption and kid-less keys are dropped."""
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWK Set")
    keys: dict[str, _Key] = {}
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
        keys[kid] = _Key(public_key=public_key, alg=alg if isinstance(alg, str) else None)
    if not keys:
        raise ValueError("the JWK Set has no usable signing key")
    return keys


class KeySource(Protocol):
    def get(self, kid: str) -> _Key | None:
        """The key for `kid`, or None. May raise IssuerUnavailable."""


class StaticKeys:
    """A fixed key set (the built-in issuer's own keys)."""

    def __init__(self, keys: Mapping[str, _Key]) -> None:
        self._keys = dict(keys)

    def get(self, kid: str) -> _Key | None:
        return self._keys.get(kid)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def _fetch_json(url: str, timeout: float) -> Any:
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"refusing to fetch non-http(s) URL {url!r}")
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    with _opener.open(request, timeout=timeout) as response:
        if response.status != 200:
            raise ValueError(f"HTTP {response.status} from {url}")
        body = response.read(MAX_DOCUMENT_BYTES + 1)
    if len(body) > MAX_DOCUMENT_BYTES:
        raise ValueError(f"document at {url} is too large")
    return json.loads(body)


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
        timeout: float = FETCH_TIMEOUT_SECONDS,
        refresh_cooldown: float = REFRESH_COOLDOWN_SECONDS,
        unavailable_backoff: float = UNAVAILABLE_BACKOFF_SECONDS,
        max_age: float = KEYS_MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = issuer
        self.timeout = timeout
        self.refresh_cooldown = refresh_cooldown
        self.unavailable_backoff = unavailable_backoff
        self.max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, _Key] | None = None
        self._fetched_at = -math.inf
        self._attempted_at = -math.inf
        self._inflight: threading.Event | None = None
        self._jwks_uri: str | None = None
        self.fetch_count = 0  # JWKS fetch attempts, for tests and debugging

    @property
    def discovery_url(self) -> str:
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"

    def get(self, kid: str) -> _Key | None:
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
                self.fetch_count += 1
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

    def _download(self) -> dict[str, _Key]:
        if self._jwks_uri is None:
            discovery = _fetch_json(self.discovery_url, self.timeout)
            if not isinstance(discovery, Mapping) or not isinstance(discovery.get("jwks_uri"), str):
                raise ValueError("discovery document has no jwks_uri")
            if discovery.get("issuer") != self.issuer:
                logger.error(
                    "OIDC_ISSUER %r differs from the discovery document's issuer %r: tokens "
                    "will be refused as issued by a different issuer",
                    self.issuer,
                    discovery.get("issuer"),
                )
            self._jwks_uri = discovery["jwks_uri"]
        try:
            return keys_from_jwks(_fetch_json(self._jwks_uri, self.timeout))
        except urllib.error.HTTPError:
            self._jwks_uri = None  # the issuer may have moved its JWKS; rediscover next time
            raise


def _string_items(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return ()


def scopes_from_claims(claims: Mapping[str, Any]) -> frozenset[str]:
    """`scope` (space-separated), `scp` (list or string; Okta, Azure) and `permissions` (Auth0)."""
    scopes: set[str] = set()
    for claim in ("scope", "scp", "permissions"):
        scopes.update(_string_items(claims.get(claim)))
    return frozenset(scopes)


def _client_id(claims: Mapping[str, Any]) -> str | None:
    # RFC 9068 `client_id`; Auth0, Keycloak and Azure v2 use `azp`; Azure v1 `appid`.
    for claim in ("client_id", "azp", "appid"):
        value = claims.get(claim)
        if isinstance(value, str) and value:
            return value
    return None


@dataclass(frozen=True)
class _Verified:
    principal: Principal
    kid: str
    key: _Key
    expires: float  # the token's `exp`


class TokenValidator:
    """Validates access tokens, remembering the ones it accepted.

    Clients reuse a token for many requests, and a full check (two JWT parses and an RSA
    signature verification) was the largest part of a cheap request's time. A token seen before
    is accepted again only while it has not reached its `exp` and the key that verified it is
    still the one the key source serves for its `kid`, so a key rotated out, or a refreshed key
    set, sends it through the full check again. Only accepted tokens are remembered, at most
    `VERIFIED_TOKENS` of them per process.
    """

    VERIFIED_TOKENS = 1024

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        algorithms: Iterable[str],
        keys: KeySource,
        leeway: int = LEEWAY_SECONDS,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.algorithms = frozenset(algorithms)
        self.keys = keys
        self.leeway = leeway
        self._verified: dict[str, _Verified] = {}
        if self.algorithms & {"none", "HS256", "HS384", "HS512"}:
            raise ValueError("symmetric or 'none' algorithms are never accepted")

    def validate(self, token: str) -> Principal:
        """The caller behind `token`. Raises InvalidToken or IssuerUnavailable, nothing else."""
        seen = self._verified.get(token) if isinstance(token, str) else None
        if seen is not None:
            if time.time() < seen.expires and self.keys.get(seen.kid) is seen.key:
                return seen.principal
            self._verified.pop(token, None)
        if not isinstance(token, str) or not token:
            raise InvalidToken("the bearer token is empty")
        if len(token) > MAX_TOKEN_LENGTH:
            raise InvalidToken("the bearer token is too long")
        if token.count(".") != 2:
            raise InvalidToken("the bearer token is not a signed JWT")
        try:
            header = jwt.get_unverified_header(token)
        except Exception:
            raise InvalidToken("the token header cannot be decoded") from None
        alg = header.get("alg")
        kid = header.get("kid")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise InvalidToken("the token's signing algorithm is not accepted")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("the token has no key id (kid)")
        key = self.keys.get(kid)
        if key is None:
            raise InvalidToken("the token is signed with an unknown key")
        if not key.accepts(alg):
            raise InvalidToken("the token's algorithm does not match its key")
        claims = self._decode(token, key.public_key, alg)
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject.strip():
            raise InvalidToken("the token has no subject (sub)")
        principal = Principal(
            subject=subject, client_id=_client_id(claims), scopes=scopes_from_claims(claims)
        )
        expires = claims["exp"]
        if isinstance(expires, int | float) and not isinstance(expires, bool):
            if len(self._verified) >= self.VERIFIED_TOKENS:
                self._verified.clear()  # rare (that many live tokens per process) and cheap
            self._verified[token] = _Verified(
                principal=principal, kid=kid, key=key, expires=float(expires)
            )
        return principal

    def _decode(self, token: str, key: Any, alg: str) -> dict[str, Any]:
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise InvalidToken("the token is not valid yet (nbf or iat in the future)") from None
        except jwt.InvalidAudienceError:
            raise InvalidToken("the token is not meant for this API (aud)") from None
        except jwt.InvalidIssuerError:
            raise InvalidToken("the token comes from another issuer (iss)") from None
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidToken(f"the token lacks the {exc.claim!r} claim") from None
        except jwt.InvalidSignatureError:
            raise InvalidToken("the token signature does not verify") from None
        except Exception:
            raise InvalidToken("the token is malformed") from None
        if not isinstance(claims, dict):
            raise InvalidToken("the token is malformed")
        return claims


def builtin_keys() -> dict[str, _Key]:
    """The built-in issuer's public keys, exactly as its JWKS endpoint publishes them."""
    from oauth2_provider.utils import jwk_from_pem  # DOT's own kid (RFC 7638 thumbprint)

    provider = settings.OAUTH2_PROVIDER
    pems = [provider["OIDC_RSA_PRIVATE_KEY"], *provider.get("OIDC_RSA_PRIVATE_KEYS_INACTIVE", [])]
    document = {"keys": []}
    for pem in pems:
        key = jwk_from_pem(pem)
        document["keys"].append(
            {
                "alg": "RS256",
                "use": "sig",
                "kid": key.thumbprint(),
                **json.loads(key.export_public()),
            }
        )
    return keys_from_jwks(document)


def build_validator() -> TokenValidator:
    """A validator for the configured issuer (settings.OIDC_ISSUER, or the built-in one)."""
    if settings.OIDC_ISSUER:
        issuer = settings.OIDC_ISSUER
        keys: KeySource = RemoteKeys(issuer)
    else:
        issuer = settings.OAUTH2_PROVIDER["OIDC_ISS_ENDPOINT"]
        keys = StaticKeys(builtin_keys())
    return TokenValidator(
        issuer=issuer,
        audience=settings.OIDC_AUDIENCE,
        algorithms=settings.OIDC_ALGORITHMS,
        keys=keys,
    )


_validator: TokenValidator | None = None
_validator_lock = threading.Lock()


def get_validator() -> TokenValidator:
    """The process-wide validator, built on first use (its key cache must be shared)."""
    global _validator
    validator = _validator
    if validator is None:
        with _validator_lock:
            if _validator is None:
                _validator = build_validator()
            validator = _validator
    return validator


def reset_validator() -> None:
    """Forget the process-wide validator (settings changed, or a test wants a cold cache)."""
    global _validator
    with _validator_lock:
        _validator = None


def validate(token: str) -> Principal:
    return get_validator().validate(token)


_SETTINGS_THAT_MATTER = {"OIDC_ISSUER", "OIDC_AUDIENCE", "OIDC_ALGORITHMS", "OAUTH2_PROVIDER"}


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in _SETTINGS_THAT_MATTER:
        reset_validator()


setting_changed.connect(_on_setting_changed)
