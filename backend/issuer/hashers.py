"""How the built-in issuer stores client secrets: a salted SHA-256, not a key-stretching hash.

Key stretching (Django's PBKDF2, 0.25-0.45 s of CPU) protects guessable passwords. A client
secret is 128 random characters (about 760 bits) from `createclient`, which no stretching makes
any harder to find from its hash. With PBKDF2 every failed token request cost that CPU, and the
token endpoint checks every secret it is sent (a right one must always pass), so a flood of
failures for a known client id could saturate the web processes. SHA-256 makes a check cost
microseconds.

The hasher is registered in PASSWORD_HASHERS after Django's own, so user passwords (if any)
keep the default; DOT uses it through `CLIENT_SECRET_HASHER`.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.contrib.auth.hashers import BasePasswordHasher, mask_hash
from django.utils.crypto import constant_time_compare

ALGORITHM = "duka_secret_sha256"


class ClientSecretHasher(BasePasswordHasher):
    algorithm = ALGORITHM

    def encode(self, password: str, salt: str) -> str:
        self._check_encode_args(password, salt)
        digest = hashlib.sha256(f"{salt}${password}".encode()).hexdigest()
        return f"{self.algorithm}${salt}${digest}"

    def decode(self, encoded: str) -> dict[str, Any]:
        algorithm, salt, digest = encoded.split("$", 2)
        if algorithm != self.algorithm:
            raise ValueError("not a client-secret hash")
        return {"algorithm": algorithm, "salt": salt, "hash": digest}

    def verify(self, password: str, encoded: str) -> bool:
        decoded = self.decode(encoded)
        return constant_time_compare(encoded, self.encode(password, decoded["salt"]))

    def safe_summary(self, encoded: str) -> dict[str, str]:
        decoded = self.decode(encoded)
        return {"algorithm": decoded["algorithm"], "salt": mask_hash(decoded["salt"], show=2)}

    def harden_runtime(self, password: str, encoded: str) -> None:
        pass  # nothing to even out: one SHA-256 is the whole cost
