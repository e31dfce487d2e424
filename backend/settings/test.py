"""Test settings: the real PostgreSQL unless TEST_DATABASE_URL says otherwise.

`tests/conftest.py` makes sure a server answers (starting an embedded one from a wheel if needed)
before Django connects, and exports its URL as DATABASE_URL.
"""

import os

os.environ.setdefault("DJANGO_DEBUG", "0")
os.environ.setdefault("DJANGO_SECRET_KEY", "test-secret-key-not-for-production")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/duka")
if "OIDC_RSA_PRIVATE_KEY" not in os.environ:
    # A throwaway signing key per test process for the built-in issuer (tests mint with it).
    from backend.issuer.conf import generate_private_key_pem

    os.environ["OIDC_RSA_PRIVATE_KEY"] = generate_private_key_pem()

from backend.settings.base import *  # noqa: E402, F403

ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
