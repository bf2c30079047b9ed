"""Fixtures for sso_client's unit tests: a fake IdP's metadata and signing key, in the cache."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from sso_client.client import identity_provider
from sso_client.conf import sso_settings
from tests.log_capture import log_lines  # noqa: F401  (a fixture of the logging tests)
from tests.sso_client.urls import WHILE_WRITING

ISSUER = "https://idp.example/o"
METADATA = {
    "issuer": ISSUER,
    "authorization_endpoint": f"{ISSUER}/authorize/",
    "token_endpoint": f"{ISSUER}/token/",
    "userinfo_endpoint": f"{ISSUER}/userinfo/",
    "jwks_uri": f"{ISSUER}/.well-known/jwks.json",
    "end_session_endpoint": f"{ISSUER}/logout/",
    "id_token_signing_alg_values_supported": ["RS256"],
}


@pytest.fixture(scope="session")
def signing_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "test-key", "use": "sig", "alg": "RS256"})


@pytest.fixture
def idp_in_cache(signing_key, settings):
    """The IdP's discovery document and JWKS as if fetched before: no HTTP in these tests."""
    from django.core.cache import cache

    cache.clear()
    identity_provider.cache_clear()
    cache.set(f"sso_client:metadata:{sso_settings.metadata_url}", METADATA)
    cache.set(f"sso_client:jwks:{METADATA['jwks_uri']}", {"keys": [signing_key.as_dict(private=False)]})
    yield METADATA
    cache.clear()


def make_id_token(key: RSAKey, *, nonce: str, **overrides) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": "site-x",
        "sub": str(uuid.uuid4()),
        "iat": now,
        "exp": now + 300,
        "nonce": nonce,
        "preferred_username": "alice",
        "email": "alice@example.com",
        "given_name": "Alice",
        "family_name": "Liddell",
        **overrides,
    }
    claims = {name: value for name, value in claims.items() if value is not None}
    return jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)


@pytest.fixture
def held_while_writing():
    """Hold the session-writing page (tests.sso_client.urls) after it read the session: returns
    (read, go): `read` is set once a request is held, `go` lets it write and finish."""
    read, go = threading.Event(), threading.Event()

    def hold() -> None:
        read.set()
        assert go.wait(timeout=10)

    WHILE_WRITING.append(hold)
    yield read, go
    go.set()
    WHILE_WRITING.clear()
