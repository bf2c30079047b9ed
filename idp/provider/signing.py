"""The signing keys, parsed once per process: the PEM → JWK step costs milliseconds of RSA work.

The toolkit parses OIDC_RSA_PRIVATE_KEY on every use (`Application.jwk_key`: each ID token it
signs, each JWKS request). Here each PEM is parsed once and kept, keyed by the PEM itself, so a
changed setting (a key rotation needs a restart anyway; tests override settings) gets its own
entry rather than a stale key. The JWKS document is built once per set of keys, too: the signing
key and the keys of OIDC_RSA_INACTIVE_KEY_FILES (a new key not signing yet, an old one retired),
each once, every token's header naming its signing key's `kid`.
"""

from __future__ import annotations

import json
from functools import lru_cache

from jwcrypto import jwk
from oauth2_provider.settings import oauth2_settings


@lru_cache(maxsize=8)
def jwk_of(pem: str) -> jwk.JWK:
    """The JWK of one PEM private key (kept for the life of the process)."""
    return jwk.JWK.from_pem(pem.encode())


@lru_cache(maxsize=8)
def key_id(pem: str) -> str:
    """The `kid` of the key: its RFC 7638 thumbprint, as the toolkit publishes it."""
    return jwk_of(pem).thumbprint()


def signing_pem() -> str:
    return oauth2_settings.OIDC_RSA_PRIVATE_KEY


def signing_key() -> jwk.JWK:
    """The key every ID token and logout token is signed with (RS256)."""
    return jwk_of(signing_pem())


def verification_keys() -> tuple[jwk.JWK, ...]:
    """The current key and the retired ones still published: what an ID token may be signed with."""
    return tuple(jwk_of(pem) for pem in _published_pems() if pem)


def _published_pems() -> tuple[str, ...]:
    if not oauth2_settings.OIDC_RSA_PRIVATE_KEY:
        return ()
    return _distinct(oauth2_settings.OIDC_RSA_PRIVATE_KEY, tuple(oauth2_settings.OIDC_RSA_PRIVATE_KEYS_INACTIVE))


@lru_cache(maxsize=4)
def _distinct(active: str, inactive: tuple[str, ...]) -> tuple[str, ...]:
    """The signing key first, then each other published key once, by `kid`.

    During a rotation a key can be both the signing key and listed in OIDC_RSA_INACTIVE_KEY_FILES
    (the new key made to sign while still listed there), even in another PEM encoding: the JWKS
    still names each key once.
    """
    pems: list[str] = []
    kids: set[str] = set()
    for pem in (active, *inactive):
        if pem and (kid := key_id(pem)) not in kids:
            kids.add(kid)
            pems.append(pem)
    return tuple(pems)


@lru_cache(maxsize=4)
def _jwks_body(pems: tuple[str, ...]) -> bytes:
    keys = []
    for pem in pems:
        data = {"alg": "RS256", "use": "sig", "kid": key_id(pem)}
        data.update(json.loads(jwk_of(pem).export_public()))
        keys.append(data)
    return json.dumps({"keys": keys}).encode()


def jwks_body() -> bytes:
    """The JWKS document (the public halves only), as the toolkit's view would write it."""
    return _jwks_body(_published_pems())
