"""Django settings: every value comes from the environment (and a `.env` file when present).

Misconfiguration raises ``ImproperlyConfigured`` with one line naming the variable, so that every
process type (release, web, worker) refuses to start instead of failing later.
"""

from __future__ import annotations

import re
from pathlib import Path

import dj_database_url
import phonenumbers
from django.core.exceptions import ImproperlyConfigured
from dotenv import load_dotenv

from backend.issuer.conf import check_issuer_url, oauth2_provider_settings
from backend.settings.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent
# The real environment wins over `.env`, so an operator can always override a file on disk.
load_dotenv(BASE_DIR / ".env", override=False)

DEBUG = env_bool("DJANGO_DEBUG", False)

SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if SECRET_KEY is None:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off (set DJANGO_DEBUG=1 for development)"
        )
    SECRET_KEY = "dev-only-insecure-secret-key-do-not-use-in-production"  # noqa: S105

ALLOWED_HOSTS = env_list(
    "DJANGO_ALLOWED_HOSTS",
    ["localhost", "127.0.0.1", "[::1]", "testserver"]
    if DEBUG
    else ["localhost", "127.0.0.1", "[::1]"],
)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "oauth2_provider",
    "ninja",
    "corsheaders",
    "django_prometheus",
    "backend.observability",  # first of ours: Sentry starts before anything builds a broker
    "backend.commands",
    "backend.queries",
    "backend.issuer",
    "backend.jobs",
    # Last: its admin.py replaces the screens other apps registered (oauth2_provider's).
    "backend.backoffice",
]

MIDDLEWARE = [
    # django-prometheus' two middlewares (first and last); the last one's `view` label tells
    # Ninja operations on one path apart (backend.observability.metrics).
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "backend.observability.middleware.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "backend.api.middleware.ContentSecurityPolicyMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "backend.api.middleware.ProblemDetailsMiddleware",
    # Drops the idle database connections a database restart or failover closed.
    "backend.api.middleware.StaleConnectionMiddleware",
    # Sessions, users and messages for the back-office (/admin/). All three are lazy: a request
    # that never touches request.session / request.user (every API request) costs no query.
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # The API is bearer-token only (Ninja views are CSRF-exempt); this guards any cookie-based view.
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Knows the caller for read-replica routing; records the WAL position after its writes.
    "backend.replicas.middleware.ReadYourWritesMiddleware",
    "backend.observability.metrics.PrometheusAfterMiddleware",
]

# The back-office's one-time messages ride in its session: the default (a signed cookie first)
# builds a cookie signer on every request, API requests included (about 7 us of CPU each).
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

ROOT_URLCONF = "backend.urls"
WSGI_APPLICATION = "backend.wsgi.application"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # Overrides Ninja's Swagger page to pre-fill the Authorize dialog (OIDC_CLIENT_ID).
        "DIRS": [BASE_DIR / "backend" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                # The back-office's templates: the signed-in user and the one-time messages.
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

# --- Back-office (/admin/, docs/backoffice.md) -------------------------------------------------

# Off: /admin/ is not routed (a 404 like any unknown path); the apps stay installed.
ADMIN_ENABLED = env_bool("ADMIN_ENABLED", True)

# --- HTTP security ----------------------------------------------------------------------------

X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Sent only on HTTPS requests, so plain-HTTP development and probes are unaffected.
SECURE_HSTS_SECONDS = env_int(
    "DJANGO_SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000, maximum=10**9
)
# Domain-wide commitments, so the operator opts in.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", False)
# Behind a TLS-terminating proxy: trust its X-Forwarded-Proto, and optionally redirect http to https.
if env_bool("DJANGO_SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", False)
# Reverse proxies in front of the service that each append to X-Forwarded-For (an ingress, a load
# balancer): per-address limits count the entry this many places from the right (backend/addresses.py).
# 0 (the default) trusts no such header and counts the socket's peer.
TRUSTED_PROXY_COUNT: int = env_int("DJANGO_TRUSTED_PROXY_COUNT", 0, minimum=0, maximum=10)
# Probes and scrapers talk plain HTTP inside the cluster.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG

# CORS is off unless origins are listed (browser apps calling the API from another origin).
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS")
# Compiled once: corsheaders matches it against every request's path.
CORS_URLS_REGEX = re.compile(r"^/(api|o)/.*$")
CORS_ALLOW_HEADERS = ["authorization", "content-type", "idempotency-key", "accept"]
CORS_EXPOSE_HEADERS = ["location", "retry-after", "idempotent-replayed"]
# Conditional requests (ETag / If-Match / If-None-Match) from browser apps too.
CORS_ALLOW_HEADERS += ["if-match", "if-none-match"]
CORS_EXPOSE_HEADERS += ["etag"]
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

# --- Back-office sign-in and session security (docs/operate.md, "Back-office") ---------------

# Sign-in at /admin/: OpenID Connect against OIDC_ISSUER with OIDC_CLIENT_ID/SECRET when set
# (backend/backoffice/signin), always a password form (`manage.py createsuperuser`).
# The claim (ID token, else userinfo; dotted paths reach into objects) whose values grant the
# read-only and the operator role, and the values that do.
ADMIN_ROLES_CLAIM = env_str("ADMIN_ROLES_CLAIM", "groups") or "groups"
if any(not part for part in ADMIN_ROLES_CLAIM.split(".")):
    raise ImproperlyConfigured(
        f"ADMIN_ROLES_CLAIM is {ADMIN_ROLES_CLAIM!r}; name a claim like groups or realm_access.roles"
    )
ADMIN_VIEWER_ROLES: list[str] = env_list("ADMIN_VIEWER_ROLES", ["duka-viewer"])
ADMIN_OPERATOR_ROLES: list[str] = env_list("ADMIN_OPERATOR_ROLES", ["duka-operator"])
# Scopes asked at sign-in (add the one your provider needs for groups, e.g. `groups` at Okta).
ADMIN_OIDC_SCOPES: list[str] = env_list("ADMIN_OIDC_SCOPES", ["openid", "profile", "email"])
if "openid" not in ADMIN_OIDC_SCOPES:
    raise ImproperlyConfigured("ADMIN_OIDC_SCOPES must contain openid")
# The OpenID button's "Sign in with ..." (default: the issuer's host). The button is there when
# OIDC_ISSUER, OIDC_CLIENT_ID and OIDC_CLIENT_SECRET are all set.
ADMIN_OIDC_NAME = env_str("ADMIN_OIDC_NAME")
# A session ends this long after sign-in, however busy (an absolute expiry, passwords.py).
ADMIN_SESSION_SECONDS: int = env_int(
    "ADMIN_SESSION_SECONDS", 8 * 3600, minimum=300, maximum=7 * 86_400
)
SESSION_COOKIE_AGE = ADMIN_SESSION_SECONDS
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
# Only the back-office uses cookies; the API never receives them.
SESSION_COOKIE_PATH = "/admin/"
CSRF_COOKIE_PATH = "/admin/"
AUTHENTICATION_BACKENDS = ["backend.backoffice.signin.passwords.LimitedModelBackend"]
# Failed sign-ins (password or OpenID callback) within a fixed window, per address and per
# username (OpenID: subject), before further attempts from there / for that name are refused.
ADMIN_SIGNIN_FAILURES_PER_ADDRESS: int = env_int(
    "ADMIN_SIGNIN_FAILURES_PER_ADDRESS", 20, minimum=1, maximum=10**6
)
ADMIN_SIGNIN_FAILURES_PER_USERNAME: int = env_int(
    "ADMIN_SIGNIN_FAILURES_PER_USERNAME", 5, minimum=1, maximum=10**6
)
ADMIN_SIGNIN_FAILURE_WINDOW_S: int = env_int(
    "ADMIN_SIGNIN_FAILURE_WINDOW_S", 900, minimum=1, maximum=86_400
)

# --- Database ---------------------------------------------------------------------------------

# Every statement counted and timed: django-prometheus' engine (its django_db_* series).
POSTGRESQL_ENGINE = "django_prometheus.db.backends.postgresql"


def _database(url: str, variable: str = "DATABASE_URL") -> dict:
    try:
        # Persistent connections without Django's per-request health check (a `SELECT 1` round
        # trip before the first query of every request). A connection the server closed
        # (restart, failover) is found without a round trip and replaced before a request
        # uses it (backend.dbconnections); one that dies mid-request is a 503 and is replaced.
        config = dj_database_url.parse(url, conn_max_age=600, conn_health_checks=False)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{variable} is not a usable database URL: {exc}") from None
    if config.get("ENGINE") != "django.db.backends.postgresql":
        raise ImproperlyConfigured(f"{variable} must be a postgres:// URL")
    config["ENGINE"] = POSTGRESQL_ENGINE
    options = config.setdefault("OPTIONS", {})
    options.setdefault("connect_timeout", 5)
    # Every statement and lock wait is bounded, so no request (or worker step) can hang for
    # minutes on a lock; long operator work (migrate, seed, rebuild) lifts it for itself. Sent
    # as the connection's startup `options`; a bound of 0 is not sent, so the role's own
    # default (`ALTER ROLE ... SET`) applies: the way behind pgbouncer, which refuses `options`
    # (or, told to ignore it, drops it) and hands every server connection the role's defaults.
    timeouts = " ".join(
        f"-c {name}={ms}"
        for name, ms in (
            ("lock_timeout", DATABASE_LOCK_TIMEOUT_MS),
            ("statement_timeout", DATABASE_STATEMENT_TIMEOUT_MS),
        )
        if ms
    )
    if timeouts:
        options.setdefault("options", timeouts)
    if DATABASE_PREPARED_STATEMENTS:
        # Parameters travel apart from the SQL text (server-side binding), and psycopg
        # prepares a statement once this connection has run it `prepare_threshold` times
        # (its cache keeps at most 100 per connection): PostgreSQL then skips parsing and
        # planning. Django leaves both off because a transaction-pooling pgbouncer (before
        # 1.21's max_prepared_statements) hands the next transaction another server
        # connection, where the named statement does not exist.
        options.setdefault("server_side_binding", True)
        # psycopg's own default (Django passes None, "never"): a statement run fewer times
        # on a connection (migrations, operator commands) is not worth the extra round trip
        # that prepares it. Not 0: a text of several statements must run once unprepared
        # for psycopg to see it is one (PostgreSQL cannot prepare it).
        options.setdefault("prepare_threshold", 5)
    return config


# Milliseconds, well under IDEMPOTENCY_STALE_CLAIM_SECONDS; 0 sends none (the role's default
# applies, PostgreSQL's own is no bound): behind pgbouncer, set them on the role instead
# (docs/operate.md).
DATABASE_LOCK_TIMEOUT_MS = env_int("DATABASE_LOCK_TIMEOUT_MS", 5_000, maximum=3_600_000)
DATABASE_STATEMENT_TIMEOUT_MS = env_int("DATABASE_STATEMENT_TIMEOUT_MS", 15_000, maximum=3_600_000)
# Server-side binding and prepared statements (above); 0 behind a transaction-pooling pgbouncer.
DATABASE_PREPARED_STATEMENTS = env_bool("DATABASE_PREPARED_STATEMENTS", True)
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL is None:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DATABASE_URL must be set when DJANGO_DEBUG is off (the embedded PostgreSQL is for "
            "development only)"
        )
    from backend.settings.embedded import embedded_postgres_url

    DATABASE_URL = embedded_postgres_url(BASE_DIR / ".pgdata")
DATABASES = {"default": _database(DATABASE_URL)}

# A streaming replica for the reads of backend/queries/ (backend/replicas/routing.py); writes and
# everything inside a command's transaction use DATABASE_URL.
DATABASE_READ_URL = env_str("DATABASE_READ_URL")
DATABASE_READ_MAX_LAG_S: int = env_int("DATABASE_READ_MAX_LAG_S", 5, maximum=86_400)
if DATABASE_READ_URL is not None:
    DATABASES["read"] = _database(DATABASE_READ_URL, "DATABASE_READ_URL")
    DATABASES["read"]["OPTIONS"]["connect_timeout"] = 2  # a dead replica must not stall reads
    DATABASES["read"]["TEST"] = {"MIRROR": "default"}  # tests never create a database there
# A direct (unpooled) connection for the outbox dispatcher's LISTEN: a transaction-pooling
# pgbouncer cannot hold a LISTEN, so behind one the dispatcher would only poll.
DATABASE_LISTEN_URL = env_str("DATABASE_LISTEN_URL")
if DATABASE_LISTEN_URL is not None:
    _database(DATABASE_LISTEN_URL, "DATABASE_LISTEN_URL")  # the same checks, one clear line
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Time, static files -----------------------------------------------------------------------

USE_TZ = True
TIME_ZONE = "UTC"
USE_I18N = False
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "backend" / "static"]
# The image sets DJANGO_STATIC_ROOT and runs `collectstatic` into it (the admin's, the docs page's
# and our own files, with compressed copies); WhiteNoise serves them from there. Unset
# (development, tests) the same files are served straight from the apps (finders).
STATIC_ROOT = env_str("DJANGO_STATIC_ROOT")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = DEBUG or STATIC_ROOT is None
WHITENOISE_AUTOREFRESH = DEBUG

# Bodies over 1 MiB are refused with 413 before they are read (see ProblemDetailsMiddleware).
MAX_REQUEST_BODY_BYTES = 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_BYTES

# --- Broker -----------------------------------------------------------------------------------

REDIS_URL = env_str("REDIS_URL")
if REDIS_URL is not None and not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured("REDIS_URL must start with redis://, rediss:// or unix://")

# The cache holds rate-limit counters: shared through Redis when there is one.
if REDIS_URL is not None:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "duka",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- OpenID Connect ---------------------------------------------------------------------------

OIDC_ISSUER = env_str("OIDC_ISSUER")
# Kept verbatim: `iss` must match it exactly, trailing slash included.
if OIDC_ISSUER is not None and not OIDC_ISSUER.startswith(("https://", "http://")):
    raise ImproperlyConfigured("OIDC_ISSUER must be an http(s) URL")
OIDC_CLIENT_ID = env_str("OIDC_CLIENT_ID")
OIDC_CLIENT_SECRET = env_str("OIDC_CLIENT_SECRET")
OIDC_AUDIENCE = env_str("OIDC_AUDIENCE") or OIDC_CLIENT_ID
if OIDC_AUDIENCE is None:
    if OIDC_ISSUER is not None:
        raise ImproperlyConfigured(
            "OIDC_AUDIENCE (or OIDC_CLIENT_ID) must be set when OIDC_ISSUER points at an external issuer"
        )
    OIDC_AUDIENCE = "duka"

_ALLOWED_ALGORITHMS = {
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
}
OIDC_ALGORITHMS = env_list("OIDC_ALGORITHMS", ["RS256", "ES256"])
for _alg in OIDC_ALGORITHMS:
    if _alg not in _ALLOWED_ALGORITHMS:
        raise ImproperlyConfigured(
            f"OIDC_ALGORITHMS contains {_alg!r}; only asymmetric algorithms are accepted "
            f"({', '.join(sorted(_ALLOWED_ALGORITHMS))})"
        )
if not OIDC_ALGORITHMS:
    raise ImproperlyConfigured("OIDC_ALGORITHMS must name at least one algorithm")

# Claims that carry scopes; dotted paths reach into objects (Keycloak's `realm_access.roles`).
OIDC_SCOPE_CLAIMS: list[str] = env_list("OIDC_SCOPE_CLAIMS", ["scope", "scp", "permissions"])
for _claim in OIDC_SCOPE_CLAIMS:
    if any(not part for part in _claim.split(".")):
        raise ImproperlyConfigured(
            f"OIDC_SCOPE_CLAIMS contains {_claim!r}; name claims like scope or realm_access.roles"
        )
if not OIDC_SCOPE_CLAIMS:
    raise ImproperlyConfigured("OIDC_SCOPE_CLAIMS must name at least one claim")

# RFC 9068: a JWT access token must carry the header `typ: at+jwt`, so a signed JWT of another
# kind from the same issuer (an ID token, a logout token) is never taken for one. Unset: on with the
# built-in issuer (whose tokens carry it), off with an external one (many IdPs omit it).
OIDC_REQUIRE_TYP: bool | None = (
    env_bool("OIDC_REQUIRE_TYP") if env_str("OIDC_REQUIRE_TYP") is not None else None
)

# Built-in issuer (django-oauth-toolkit at /o/), used when OIDC_ISSUER is unset. Its issuer URL
# is pinned to DUKA_PUBLIC_URL + "/o" (the URL clients reach this service at).
DUKA_PUBLIC_URL = (
    env_str("DUKA_PUBLIC_URL") or f"http://localhost:{env_str('PORT', '8000')}"
).rstrip("/")
if not DUKA_PUBLIC_URL.startswith(("https://", "http://")):
    raise ImproperlyConfigured(
        "DUKA_PUBLIC_URL must be an http(s) URL such as https://duka.example.com"
    )
if OIDC_ISSUER is not None:
    check_issuer_url(OIDC_ISSUER, name="OIDC_ISSUER")
# Failed client authentications at the built-in issuer's /o/token/ (per client id, per address)
# within a fixed window, before that endpoint answers 429 with Retry-After.
ISSUER_AUTH_FAILURES_PER_CLIENT: int = env_int("ISSUER_AUTH_FAILURES_PER_CLIENT", 10, minimum=1)
ISSUER_AUTH_FAILURES_PER_ADDRESS: int = env_int(
    "ISSUER_AUTH_FAILURES_PER_ADDRESS", 50, minimum=1, maximum=10**6
)
ISSUER_AUTH_FAILURE_WINDOW_S: int = env_int(
    "ISSUER_AUTH_FAILURE_WINDOW_S", 300, minimum=1, maximum=86_400
)
# Django's default hashers for passwords, then the built-in issuer's for client secrets (listed so
# `check_password` can identify it; it is never the default).
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
    "backend.issuer.hashers.ClientSecretHasher",
]
OAUTH2_PROVIDER = oauth2_provider_settings(
    public_url=DUKA_PUBLIC_URL,
    private_key_pem=env_str("OIDC_RSA_PRIVATE_KEY"),
    debug=DEBUG,
    dev_key_path=BASE_DIR / ".oidc_dev_key.pem",
    external_issuer=OIDC_ISSUER,
)

# --- SMS --------------------------------------------------------------------------------------

AFRICAS_TALKING_USERNAME = env_str("AFRICAS_TALKING_USERNAME")
AFRICAS_TALKING_API_KEY = env_str("AFRICAS_TALKING_API_KEY")
AFRICAS_TALKING_SENDER_ID = env_str("AFRICAS_TALKING_SENDER_ID")
AFRICAS_TALKING_API_URL = env_str("AFRICAS_TALKING_API_URL")
if (AFRICAS_TALKING_USERNAME is None) != (AFRICAS_TALKING_API_KEY is None):
    raise ImproperlyConfigured(
        "AFRICAS_TALKING_USERNAME and AFRICAS_TALKING_API_KEY must be set together"
    )
SMS_DEFAULT_REGION = (env_str("SMS_DEFAULT_REGION") or "KE").upper()
if SMS_DEFAULT_REGION not in phonenumbers.SUPPORTED_REGIONS:
    raise ImproperlyConfigured(
        f"SMS_DEFAULT_REGION must be an ISO 3166 region code such as KE, got {SMS_DEFAULT_REGION!r}"
    )
SMS_CALLBACK_TOKEN = env_str("SMS_CALLBACK_TOKEN")
# The token travels in a URL anyone can post to: short enough and it could be guessed.
SMS_CALLBACK_TOKEN_MIN_LENGTH = 32
if SMS_CALLBACK_TOKEN is not None and len(SMS_CALLBACK_TOKEN) < SMS_CALLBACK_TOKEN_MIN_LENGTH:
    raise ImproperlyConfigured(
        f"SMS_CALLBACK_TOKEN must be at least {SMS_CALLBACK_TOKEN_MIN_LENGTH} characters "
        f"(got {len(SMS_CALLBACK_TOKEN)}); generate one with `openssl rand -hex 32`"
    )
# Callbacks with a missing or wrong token per address in a fixed window before further ones are
# answered 429 (the right token is always served: Africa's Talking must never be locked out).
SMS_CALLBACK_FAILURES_PER_ADDRESS: int = 20
SMS_CALLBACK_FAILURE_WINDOW_S: int = 300

# --- Outbox, dispatcher and SMS delivery (docs/sms.md) -------------------------------------------
# Fixed by the contract's timings (section 7); plain settings so tests can shorten them.

# Retry budget: first retry within 5 s, backoff capped at 5 min, at most 10 attempts within 1 h.
SMS_MAX_ATTEMPTS: int = 10
SMS_RETRY_WINDOW_SECONDS: float = 3600.0
SMS_RETRY_BASE_SECONDS: float = 2.0
SMS_RETRY_CAP_SECONDS: float = 300.0
# Tolerated clock difference between the host that scheduled a retry and the one running it.
SMS_CLOCK_SKEW_SECONDS: float = 2.0
# One gateway call: per-socket timeouts, and a total deadline that a trickling reply cannot
# stretch (the watchdog closes the socket).
SMS_GATEWAY_CONNECT_TIMEOUT_SECONDS: float = 3.05
SMS_GATEWAY_READ_TIMEOUT_SECONDS: float = 10.0
SMS_GATEWAY_DEADLINE_SECONDS: float = 15.0
# Waits between attempts to record an outcome after a database error (losing a `sent` would
# mean a second SMS).
OUTBOX_RECORD_RETRY_DELAYS_SECONDS: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)
# Dramatiq interrupts an attempt after this; the claim lease must outlast it plus one blocking
# database statement, so no other worker can claim a row while its first attempt still runs.
SMS_ACTOR_TIME_LIMIT_SECONDS: float = 60.0
# Accepted sends are recorded together (every worker thread of a process), each at most this
# long after it was accepted: the crash window in which an accepted SMS could be sent twice.
SMS_RECORD_WINDOW_SECONDS: float = 0.1
SMS_CLAIM_LEASE_SECONDS: float = 75.0
# One message may carry several SMS (one claim statement and one broker round trip for all):
# the rows a dispatcher pass publishes are spread over SMS_BATCH_SPREAD messages (the worker
# threads that send at once: the Procfile runs 2 processes x 4 threads) before a message
# carries more than one, and a message never carries more than SMS_BATCH_MAX.
SMS_BATCH_SPREAD: int = 8
SMS_BATCH_MAX: int = 20
# The worker processes' nice value (0-19; 0 leaves it alone): on a shared host the web gets the
# CPU first and the SMS backlog goes out in larger batches when it idles (backend.jobs.priority).
WORKER_NICENESS = env_int("WORKER_NICENESS", 10, minimum=0, maximum=19)
# Dispatcher (the only publisher): woken by NOTIFY on commit, polling as the fallback.
OUTBOX_POLL_SECONDS: float = 1.0
# After a NOTIFY, gather the commits of this long into one pass (latency for throughput).
OUTBOX_COALESCE_SECONDS: float = 0.05
OUTBOX_BATCH_SIZE: int = 200
# A pass publishes at most this many batches per channel (and checks as many in its sweep):
# a backlog after a broker outage goes out over several passes, the dispatcher's liveness
# beat is refreshed after each batch, and the sweep runs between passes.
OUTBOX_PASS_MAX_BATCHES: int = 10
# A published row still pending after this long is checked against the broker: re-published
# only when its message is no longer there (lost), never because the queue is long.
OUTBOX_REDELIVERY_GRACE_SECONDS: float = 30.0
# Where the broker cannot be asked (the quick start's in-memory broker): republish after this.
OUTBOX_REDELIVERY_WINDOW_SECONDS: float = 600.0
# Longest pause between publish attempts while the broker fails (circuit open).
OUTBOX_BROKER_BACKOFF_MAX_SECONDS: float = 10.0
# Purge of expired idempotency records, issuer tokens and unclaimed early delivery reports.
# It runs in a thread of its own next to the dispatcher, deleting in batches of
# HOUSEKEEPING_BATCH_SIZE rows (each one short statement, far under the statement timeout), at
# most HOUSEKEEPING_MAX_BATCHES per kind of row and round (the rest goes in the next round).
HOUSEKEEPING_INTERVAL_SECONDS: float = 3600.0
HOUSEKEEPING_BATCH_SIZE: int = 1000
HOUSEKEEPING_MAX_BATCHES: int = 1000
EARLY_REPORT_RETENTION_SECONDS: float = 7 * 24 * 3600.0
# Worker liveness (`GET :$METRICS_PORT/healthz`): every heartbeat younger than this.
WORKER_HEARTBEAT_SECONDS: float = 5.0
WORKER_HEARTBEAT_MAX_AGE_SECONDS: float = 60.0

# Dramatiq: the Redis namespace, and how long a worker may be silent before it counts as dead.
# Its unacked messages are then lost to the dispatcher's sweep, which publishes their rows again
# once their claim lease has ended (Dramatiq's own requeue waits for its random maintenance).
# Shorter than the claim leases, so a killed worker's SMS goes out within about 100 s.
DRAMATIQ_NAMESPACE: str = "duka"
DRAMATIQ_HEARTBEAT_TIMEOUT_SECONDS: float = 60.0
DRAMATIQ_MAINTENANCE_CHANCE: int = 1000  # per million broker commands; Dramatiq's default

# Idempotency-Key: a claim without a result is taken over after this (its request died). Every
# request's statements are bounded well below it (DATABASE_*_TIMEOUT_MS), and claims are fenced,
# so a slow first request can never complete after a takeover.
IDEMPOTENCY_RETENTION_SECONDS: float = 24 * 3600.0
IDEMPOTENCY_STALE_CLAIM_SECONDS: float = 60.0

# --- Webhooks (docs/webhooks.md, contract section 9) ---------------------------------------------

# Development and tests only: allow `http` URLs and loopback/private/link-local addresses.
WEBHOOKS_ALLOW_PRIVATE = env_bool("WEBHOOKS_ALLOW_PRIVATE", False)
# Live (not deleted) endpoints one token subject may have: each is a row in every subscribed
# change's transaction and a signed POST to a URL the caller chose, retried for days.
WEBHOOKS_MAX_ENDPOINTS: int = env_int("WEBHOOKS_MAX_ENDPOINTS", 10, minimum=1, maximum=10_000)
# Keys that encrypt the endpoints' signing secrets at rest (Fernet; each entry is hashed into a
# key, so any long random string works). The first encrypts, every one decrypts: to rotate, put
# the new key first, run `manage.py reseal_webhook_secrets`, then drop the old one. Unset: one
# key derived from DJANGO_SECRET_KEY (so changing that key needs the old one listed here).
WEBHOOK_SECRET_KEYS: list[str] = env_list("WEBHOOK_SECRET_KEYS") or [SECRET_KEY]
# One attempt: connect timeout, and a total deadline (the contract's "2xx within 15 s") that a
# trickling receiver cannot stretch; at most this much of an error answer is read.
WEBHOOK_CONNECT_TIMEOUT_SECONDS: float = 5.0
WEBHOOK_DEADLINE_SECONDS: float = 15.0
WEBHOOK_RESPONSE_MAX_BYTES: int = 4096
# Backoff 5 s x 2^(attempt-1), +-20 %, capped at 1 h: the first retry comes within 10 s.
WEBHOOK_RETRY_BASE_SECONDS: float = 5.0
WEBHOOK_RETRY_CAP_SECONDS: float = 3600.0
# An endpoint whose attempts have all failed for this long is disabled; an event older than
# this is given up.
WEBHOOK_DISABLE_AFTER_SECONDS: float = 3 * 24 * 3600.0
# Dramatiq interrupts an attempt after this; the lease outlasts it plus one blocking statement.
WEBHOOK_ACTOR_TIME_LIMIT_SECONDS: float = 45.0
WEBHOOK_CLAIM_LEASE_SECONDS: float = 60.0
# Delivered and given-up rows are purged by the housekeeping after this.
WEBHOOK_RETENTION_SECONDS: float = 7 * 24 * 3600.0

# --- Operations -------------------------------------------------------------------------------

SENTRY_DSN = env_str("SENTRY_DSN")
METRICS_PORT = env_int("METRICS_PORT", 9191, minimum=1)
RATE_LIMIT_WRITES = env_str("RATE_LIMIT_WRITES")
if RATE_LIMIT_WRITES is not None and not re.fullmatch(r"[1-9]\d*/[smhd]", RATE_LIMIT_WRITES):
    raise ImproperlyConfigured(
        f"RATE_LIMIT_WRITES must look like 100/m (count per s, m, h or d), got {RATE_LIMIT_WRITES!r}"
    )

# One JSON object per line (docs/operate.md lists the fields); `text` reads better in a terminal.
LOG_FORMAT = (env_str("LOG_FORMAT") or ("text" if DEBUG else "json")).lower()
if LOG_FORMAT not in {"json", "text"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or text, got {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "mask_phones": {"()": "backend.observability.logging.MaskPhoneNumbersFilter"},
        "request_context": {"()": "backend.observability.logging.RequestContextFilter"},
    },
    "formatters": {
        "json": {"()": "backend.observability.logging.JsonFormatter"},
        "text": {"()": "backend.observability.logging.TextFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["mask_phones", "request_context"],
            "formatter": LOG_FORMAT,
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
