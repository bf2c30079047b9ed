"""The identity provider as Authlib's Django client sees it, with discovery and JWKS cached.

Authlib keeps the discovery document in process memory forever once fetched. Here both the
document and the JWKS live in the Django cache (Redis) for METADATA_CACHE_SECONDS: every
process shares one copy, a key rotation at the IdP is picked up without a restart, and an ID
token signed with a key not yet seen triggers one fresh JWKS fetch (Authlib's `force=True`).
Such forced fetches are bounded: at most one per JWKS_REFETCH_SECONDS for all the site's
processes together, since anyone can post a token naming a made-up key (back-channel logout).
"""

from __future__ import annotations

from functools import lru_cache

import requests
from authlib.integrations.django_client import DjangoOAuth2App, OAuth
from django.core.cache import caches

from sso_client import idp_breaker
from sso_client.conf import sso_settings
from sso_client.logs import request_id_headers, send_request_id
from sso_client.sign_in_states import PendingSignIns

#: At most one forced JWKS fetch (for a key id the cached JWKS lacks) per this many seconds.
JWKS_REFETCH_SECONDS = 5


class IdentityProviderUnavailable(Exception):
    """The IdP did not answer, or answered with something other than what was asked for."""


def fetch_json(url: str) -> dict:
    try:
        with idp_breaker.watching():
            response = requests.get(url, timeout=sso_settings.HTTP_TIMEOUT_SECONDS, headers=request_id_headers())
        response.raise_for_status()
        return response.json()
    except (OSError, ValueError) as error:  # requests' errors are OSErrors
        raise IdentityProviderUnavailable(f"{url}: {type(error).__name__}") from error


class IdentityProviderApp(DjangoOAuth2App):
    @property
    def cache(self):
        return caches[sso_settings.CACHE_ALIAS]

    def _cached_json(self, key: str, url: str, *, force: bool = False) -> dict:
        try:
            document = None if force else self.cache.get(key)
        except ValueError:  # not JSON (a pickle left by an older version): fetch it again
            document = None
        if document is None:
            document = fetch_json(url)
            self.cache.set(key, document, sso_settings.METADATA_CACHE_SECONDS)
        return document

    def fetch_access_token(self, *args, **kwargs) -> dict:
        """Every call to the token endpoint (code exchange, refresh): one that times out or cannot
        connect opens the breaker (sso_client.idp_breaker), an answer closes it."""
        with idp_breaker.watching():
            return super().fetch_access_token(*args, **kwargs)

    def load_server_metadata(self) -> dict:
        return self._cached_json(f"sso_client:metadata:{self._server_metadata_url}", self._server_metadata_url)

    def fetch_jwk_set(self, force: bool = False) -> dict:
        """The IdP's JWKS, from the cache. `force` (a token names a key the cached JWKS lacks) fetches
        it again, unless some process of this site did so in the last JWKS_REFETCH_SECONDS: then the
        cached JWKS is as fresh as it gets, and a flood of tokens with made-up keys costs the IdP one
        JWKS request per interval, not one per token. A key the IdP really added is found by the
        first token naming it after the interval: a refused back-channel logout is retried by the
        IdP, a refused sign-in offers to sign in again."""
        jwks_uri = self.load_server_metadata()["jwks_uri"]
        if force:
            force = self.cache.add(f"sso_client:jwks-refetch:{jwks_uri}", 1, timeout=JWKS_REFETCH_SECONDS)
        return self._cached_json(f"sso_client:jwks:{jwks_uri}", jwks_uri, force=force)


class SsoOAuth(OAuth):
    oauth2_client_cls = IdentityProviderApp
    framework_integration_cls = PendingSignIns  # each started sign-in under a key of its own


@lru_cache(maxsize=1)
def identity_provider() -> IdentityProviderApp:
    """The registered Authlib client, built once per process from SSO_CLIENT."""
    oauth = SsoOAuth()
    app = oauth.register(
        name="idp",
        client_id=sso_settings.CLIENT_ID,
        client_secret=sso_settings.CLIENT_SECRET,
        server_metadata_url=sso_settings.metadata_url,
        compliance_fix=send_request_id,  # each token call carries the request's X-Request-ID
        client_kwargs={
            "scope": sso_settings.SCOPE,
            "code_challenge_method": "S256",
            "token_endpoint_auth_method": "client_secret_basic",
            "default_timeout": sso_settings.HTTP_TIMEOUT_SECONDS,
        },
    )
    # How long each pending sign-in stays valid (Authlib's default: an hour).
    app.framework.expires_in = sso_settings.SIGN_IN_STATE_SECONDS
    return app
