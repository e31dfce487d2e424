"""RFC 7662 introspection of opaque access tokens at the issuer's `introspection_endpoint`.

Okta's org servers, ORY Hydra and many Keycloak setups hand out tokens we cannot verify alone.
The issuer is asked, authenticating as OIDC_CLIENT_ID/OIDC_CLIENT_SECRET (HTTP Basic), and its
answer goes through the same rules as a JWT's claims: `iss` (when given) is ours, `aud` (when
given) names us, `exp` is present and holds, no ID-token claims, and scopes come from the same
claims. An answer without `sub` (usual for client-credentials tokens) takes `client_id`.

Answers are kept per process, keyed by the token's SHA-256 (the token itself is not stored):
active ones until `exp` but at most `ACTIVE_TTL_SECONDS`, so a revocation is seen within that
time; inactive ones for `INACTIVE_TTL_SECONDS`, so a client retrying a bad token does not turn
into a flood at the issuer. While the endpoint is down, cached tokens keep their answer and the
others get `IssuerUnavailable` (503 with Retry-After); the endpoint is then retried at most once
per `UNAVAILABLE_BACKOFF_SECONDS`. Only 5xx, 429, timeouts and connection errors mean "down": a 4xx
is the issuer's verdict on the one request (a malformed token, or our client refused), so that
token is invalid and the next one is asked about as usual.

Tokens not in the cache ("misses") are asked about within two token buckets per process: one per
caller address (`caller`), one for everyone. A flood of made-up tokens from one address spends
only its own budget and is answered `IntrospectionLimited` (429), so other callers' new tokens are
still asked about and the issuer never sees the flood; a flood spread over many addresses is
capped overall, and tokens already in the cache keep working whatever happens.

`aud` must name our audience: an answer without it is refused, since a token the issuer minted
for another API of the same issuer must not be good here (ask the issuer to put the audience in
its tokens, e.g. a resource indicator).
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
import urllib.error
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from backend.integrations.oidc_claims import (
    DEFAULT_SCOPE_CLAIMS,
    LEEWAY_SECONDS,
    IntrospectionLimited,
    InvalidToken,
    IssuerUnavailable,
    Principal,
    client_id_from,
    refuse_id_token,
    scopes_from_claims,
)
from backend.integrations.oidc_http import FETCH_TIMEOUT_SECONDS, Discovery, post_form

logger = logging.getLogger(__name__)

ACTIVE_TTL_SECONDS = 60.0
INACTIVE_TTL_SECONDS = 5.0
UNAVAILABLE_BACKOFF_SECONDS = 5.0
MAX_CACHED_ANSWERS = 4096

_NOT_ACCESS_TOKENS = {"refresh_token", "refresh", "id_token", "id"}
MAX_TRACKED_CALLERS = 4096


@dataclass(frozen=True)
class MissBudget:
    """A token bucket's shape: `burst` introspection calls at once, refilled at `per_second`."""

    per_second: float
    burst: float


CALLER_MISS_BUDGET = MissBudget(per_second=2.0, burst=20.0)
OVERALL_MISS_BUDGET = MissBudget(per_second=20.0, burst=100.0)


class _Bucket:
    def __init__(self, budget: MissBudget, now: float) -> None:
        self.budget = budget
        self.level = budget.burst
        self.at = now

    def refill(self, now: float) -> None:
        self.level = min(self.budget.burst, self.level + (now - self.at) * self.budget.per_second)
        self.at = now

    def wait(self) -> float:
        """Seconds until one call is available (0 when one is now)."""
        return 0.0 if self.level >= 1 else (1 - self.level) / self.budget.per_second


@dataclass(frozen=True)
class _Answer:
    until: float  # monotonic time the answer may be reused until
    principal: Principal | None  # None: refused, for `reason`
    reason: str = ""


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


class Introspector:
    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        client_id: str,
        client_secret: str,
        discovery: Discovery,
        scope_claims: Sequence[str] = DEFAULT_SCOPE_CLAIMS,
        timeout: float = FETCH_TIMEOUT_SECONDS,
        leeway: int = LEEWAY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        caller_budget: MissBudget | None = None,
        overall_budget: MissBudget | None = None,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.client_id = client_id
        self.client_secret = client_secret
        self.discovery = discovery
        self.scope_claims = tuple(scope_claims)
        self.timeout = timeout
        self.leeway = leeway
        self._clock = clock
        self._wall_clock = wall_clock
        self._answers: dict[str, _Answer] = {}
        self._down_until = -math.inf
        self._lock = threading.Lock()
        # Looked up here, not bound as defaults, so a test can shape the process-wide validator's.
        self._caller_budget = caller_budget or CALLER_MISS_BUDGET
        self._overall = _Bucket(overall_budget or OVERALL_MISS_BUDGET, clock())
        self._callers: dict[str, _Bucket] = {}
        self.calls = 0  # introspection requests sent, for tests and debugging

    def introspect(self, token: str, *, caller: str | None = None) -> Principal:
        """The principal behind an opaque `token` presented by `caller` (its address, when
        known). Raises InvalidToken, IssuerUnavailable or IntrospectionLimited."""
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
        now = self._clock()
        cached = self._answers.get(digest)
        if cached is not None and now < cached.until:
            if cached.principal is None:
                raise InvalidToken(cached.reason)
            return cached.principal
        if now < self._down_until:
            raise IssuerUnavailable(retry_after=max(1, math.ceil(self._down_until - now)))
        self._spend_miss(caller or "", now)
        try:
            principal, expires = self._judge(self._ask(token))
        except InvalidToken as exc:
            self._remember(digest, _Answer(now + INACTIVE_TTL_SECONDS, None, exc.reason))
            raise
        ttl = min(ACTIVE_TTL_SECONDS, expires - self._wall_clock())
        if ttl > 0:
            self._remember(digest, _Answer(now + ttl, principal))
        return principal

    def _spend_miss(self, caller: str, now: float) -> None:
        """Take one call from the caller's bucket and the overall one, or raise
        IntrospectionLimited without taking any."""
        with self._lock:
            bucket = self._callers.get(caller)
            if bucket is None:
                if len(self._callers) >= MAX_TRACKED_CALLERS:
                    # Full buckets carry no state worth keeping; if none is full, start over.
                    for key, old in list(self._callers.items()):
                        old.refill(now)
                        if old.level >= old.budget.burst:
                            del self._callers[key]
                    if len(self._callers) >= MAX_TRACKED_CALLERS:
                        self._callers.clear()
                bucket = self._callers[caller] = _Bucket(self._caller_budget, now)
            bucket.refill(now)
            self._overall.refill(now)
            wait = max(bucket.wait(), self._overall.wait())
            if wait > 0:
                raise IntrospectionLimited(retry_after=max(1, math.ceil(wait)))
            bucket.level -= 1
            self._overall.level -= 1

    def _ask(self, token: str) -> Mapping[str, Any]:
        try:
            endpoint = self.discovery.endpoint("introspection_endpoint")
        except Exception as exc:
            raise self._unavailable("fetching the discovery document", exc) from None
        if endpoint is None:
            raise InvalidToken(
                "the bearer token is not a signed JWT and the issuer offers no introspection"
            )
        with self._lock:
            self.calls += 1
        try:
            answer = post_form(
                endpoint,
                {"token": token, "token_type_hint": "access_token"},
                basic_auth=(self.client_id, self.client_secret),
                timeout=self.timeout,
            )
        except urllib.error.HTTPError as exc:
            if exc.code == 429 or exc.code >= 500:
                raise self._unavailable("calling the introspection endpoint", exc) from None
            # Any other answer is about this request: the token is not accepted, and the issuer
            # is not down (a token that draws a 400 must not make the next valid one a 503).
            if exc.code in (401, 403):
                logger.error(
                    "the introspection endpoint refused our client (HTTP %s): check "
                    "OIDC_CLIENT_ID and OIDC_CLIENT_SECRET",
                    exc.code,
                )
            elif exc.code == 404:
                self.discovery.forget()  # the endpoint may have moved
            raise InvalidToken(
                f"the issuer refused to introspect the token (HTTP {exc.code})"
            ) from None
        except Exception as exc:
            raise self._unavailable("calling the introspection endpoint", exc) from None
        if not isinstance(answer, Mapping):
            raise self._unavailable("reading the introspection answer", ValueError("not an object"))
        return answer

    def _unavailable(self, doing: str, exc: BaseException) -> IssuerUnavailable:
        logger.warning("token introspection failed %s (%s: %s)", doing, type(exc).__name__, exc)
        self._down_until = self._clock() + UNAVAILABLE_BACKOFF_SECONDS
        return IssuerUnavailable(retry_after=math.ceil(UNAVAILABLE_BACKOFF_SECONDS))

    def _judge(self, answer: Mapping[str, Any]) -> tuple[Principal, float]:
        """The principal and the token's `exp`, or InvalidToken (RFC 7662 section 2.2 answer)."""
        if answer.get("active") is not True:
            raise InvalidToken("the token is not active (expired, revoked or unknown)")
        issuer = answer.get("iss")
        if issuer is not None and issuer != self.issuer:
            raise InvalidToken("the token comes from another issuer (iss)")
        audience = answer.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self.audience not in audiences:
            raise InvalidToken("the token is not meant for this API (aud missing or another)")
        now = self._wall_clock()
        expires = _number(answer.get("exp"))
        if expires is None:
            raise InvalidToken("the token lacks the 'exp' claim")
        if expires + self.leeway <= now:
            raise InvalidToken("the token has expired")
        for claim in ("nbf", "iat"):
            moment = _number(answer.get(claim))
            if moment is not None and moment > now + self.leeway:
                raise InvalidToken("the token is not valid yet (nbf or iat in the future)")
        refuse_id_token(answer)
        for claim in ("token_use", "token_type", "typ"):
            kind = answer.get(claim)
            if isinstance(kind, str) and kind.lower() in _NOT_ACCESS_TOKENS:
                raise InvalidToken("the token is not an access token")
        subject = answer.get("sub")
        if not isinstance(subject, str) or not subject.strip():
            subject = answer.get("client_id")
        if not isinstance(subject, str) or not subject.strip():
            raise InvalidToken("the token has no subject (sub or client_id)")
        principal = Principal(
            subject=subject,
            client_id=client_id_from(answer),
            scopes=scopes_from_claims(answer, self.scope_claims),
        )
        return principal, expires

    def _remember(self, digest: str, answer: _Answer) -> None:
        with self._lock:
            if len(self._answers) >= MAX_CACHED_ANSWERS:
                now = self._clock()
                for key in [k for k, v in self._answers.items() if v.until <= now]:
                    del self._answers[key]
                if len(self._answers) >= MAX_CACHED_ANSWERS:
                    self._answers.clear()
            self._answers[digest] = answer
