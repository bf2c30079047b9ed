"""The app's settings: one namespaced dict, SSO_CLIENT, read through `sso_settings`.

    SSO_CLIENT = {
        "ISSUER": "https://sso.example.com/o",   # discovery at {ISSUER}/.well-known/openid-configuration
        "CLIENT_ID": "site-a",
        "CLIENT_SECRET": os.environ["SITE_A_CLIENT_SECRET"],
    }

Every other key has a default (DEFAULTS below). Changes made by tests with override_settings
are picked up through the `setting_changed` signal.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

SETTING_NAME = "SSO_CLIENT"

DEFAULTS: dict[str, Any] = {
    "ISSUER": None,
    "CLIENT_ID": None,
    "CLIENT_SECRET": None,
    "SCOPE": "openid profile email",
    # Where the IdP sends people back; by default built from the request and this app's URLs.
    "REDIRECT_URI": None,
    # Path prefixes anyone may see without signing in (this app's own URLs and STATIC_URL always are).
    "PUBLIC_PATHS": [],
    # Refresh the access token when it has fewer seconds than this left.
    "REFRESH_MARGIN_SECONDS": 60,
    # How long a request waits for another request of the same session to finish refreshing.
    "REFRESH_WAIT_SECONDS": 10,
    # How long the IdP's discovery document and JWKS stay in the Django cache.
    "METADATA_CACHE_SECONDS": 3600,
    # Timeout of every call to the IdP (connect and read).
    "HTTP_TIMEOUT_SECONDS": 5,
    # Timeout of a refresh made ahead of expiry, while the access token still works: a page does
    # not wait long for it (a token already expired waits HTTP_TIMEOUT_SECONDS).
    "REFRESH_AHEAD_TIMEOUT_SECONDS": 2,
    # After a call to the IdP timed out or could not connect, for this long no process of the site
    # calls it (sso_client.idp_breaker): a token still valid is used without a refresh, an expired
    # one and a sign-in get the "unavailable" page at once, instead of each waiting for the timeout.
    "IDP_UNREACHABLE_SECONDS": 10,
    # How long a started sign-in (its state, nonce and PKCE verifier) stays valid. A session
    # that holds nothing else expires with it, so anonymous visits cost Redis minutes, not hours.
    "SIGN_IN_STATE_SECONDS": 600,
    # Tolerance for clock differences when checking `exp` and `iat`.
    "CLOCK_SKEW_SECONDS": 60,
    "CACHE_ALIAS": "default",
    # The site's page layout the app's pages extend; it must define a "content" block.
    "BASE_TEMPLATE": "base.html",
    # Where to go after signing in when no page was asked for.
    "LOGIN_REDIRECT_URL": "/",
    # Where the IdP sends people after signing out; must be registered at the IdP as a
    # post-logout redirect URI. By default this app's signed-out page, built from the request.
    "POST_LOGOUT_REDIRECT_URI": None,
    # Back-channel logout tokens older than this (by their `iat`) are refused.
    "LOGOUT_TOKEN_MAX_AGE_SECONDS": 300,
}
MANDATORY = ("ISSUER", "CLIENT_ID", "CLIENT_SECRET")


class SsoSettings:
    def __init__(self) -> None:
        self._cached: dict[str, Any] | None = None

    @property
    def user_settings(self) -> dict[str, Any]:
        return getattr(settings, SETTING_NAME, {}) or {}

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"Invalid {SETTING_NAME} setting: {name!r}")
        if self._cached is None:
            self._cached = {**DEFAULTS, **self.user_settings}
        return self._cached[name]

    @property
    def metadata_url(self) -> str:
        return f"{self.ISSUER.rstrip('/')}/.well-known/openid-configuration"

    def reload(self) -> None:
        self._cached = None


sso_settings = SsoSettings()


@receiver(setting_changed)
def _reload(*, setting: str, **kwargs) -> None:
    if setting == SETTING_NAME:
        sso_settings.reload()
        from sso_client.client import identity_provider

        identity_provider.cache_clear()
