"""Password hashers: Argon2id for people's passwords, a fast one for generated client secrets.

django-oauth-toolkit hashes client secrets with a password hasher, by default the first of
PASSWORD_HASHERS: a full slow hash on every token request. That slowness protects guessable
human passwords; a generated client secret holds far more entropy than any attack can search, so
one salted SHA-256 protects it as well and costs microseconds. ClientSecretHasher is only ever
chosen through OAUTH2_PROVIDER["CLIENT_SECRET_HASHER"]: it must never be first in PASSWORD_HASHERS.
"""

from __future__ import annotations

import hashlib

from django.contrib.auth.hashers import Argon2PasswordHasher, BasePasswordHasher, mask_hash
from django.utils.crypto import constant_time_compare
from django.utils.translation import gettext_noop as _


class PersonPasswordHasher(Argon2PasswordHasher):
    """Argon2id with parameters of our own choosing, for people's passwords (first in PASSWORD_HASHERS).

    19 MiB of memory, 2 passes, 1 lane: OWASP's minimum for Argon2id (Password Storage Cheat
    Sheet: m=19456 KiB, t=2, p=1), which its authors rate as strong as their higher-memory
    settings. Why not more: the hash is the largest cost of a password sign-in (about half of
    the whole flow's CPU, docs/performance.md), and the product aims at 30 sign-ins a second on
    one core. One hash takes about 27 ms on one core of the 2-core CI machine (the previous
    64 MiB and 3 passes took about 150 ms), and each sign-in being hashed holds 19 MiB: 152 MiB
    at worst for gunicorn's default 2 workers times 4 threads. One lane, not four: lanes only
    spread a single hash over several cores, and a server already hashes several sign-ins at
    once on its few cores; an attacker's cost is the same.

    Stored as `argon2$argon2id$v=19$m=19456,t=2,p=1$...`. A password stored with other
    parameters (the previous `m=65536,t=3,p=1` included) or with PBKDF2 is re-hashed with these
    at the person's next sign-in: Django's `check_password` asks `must_update`, which compares
    the stored parameters with these, so changing them needs no migration.
    """

    # Django's Argon2PasswordHasher already uses Argon2id; its own defaults (100 MiB, 8 lanes)
    # would change with a Django upgrade, these only with a commit.
    time_cost = 2
    memory_cost = 19 * 1024  # KiB: 19456
    parallelism = 1


class ClientSecretHasher(BasePasswordHasher):
    algorithm = "client_secret_sha256"

    def encode(self, password: str, salt: str) -> str:
        self._check_encode_args(password, salt)
        digest = hashlib.sha256(f"{salt}${password}".encode()).hexdigest()
        return f"{self.algorithm}${salt}${digest}"

    def decode(self, encoded: str) -> dict:
        algorithm, salt, digest = encoded.split("$", 2)
        assert algorithm == self.algorithm
        return {"algorithm": algorithm, "hash": digest, "salt": salt}

    def verify(self, password: str, encoded: str) -> bool:
        decoded = self.decode(encoded)
        return constant_time_compare(encoded, self.encode(password, decoded["salt"]))

    def safe_summary(self, encoded: str) -> dict:
        decoded = self.decode(encoded)
        return {
            _("algorithm"): decoded["algorithm"],
            _("salt"): mask_hash(decoded["salt"], show=2),
            _("hash"): mask_hash(decoded["hash"]),
        }

    def harden_runtime(self, password: str, encoded: str) -> None:
        pass
