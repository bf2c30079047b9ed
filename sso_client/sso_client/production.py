"""The settings every Django process of the product shares: HTTPS hardening, headers, CSP, metrics, logs.

In a settings module, after DEBUG and the site's URL are known:

    globals().update(shared_settings(debug=DEBUG, uses_https=USES_HTTPS, form_action=[IDP_ORIGIN]))

Everything is read from the environment here (DJANGO_SECURE_SSL_REDIRECT, DJANGO_HSTS_SECONDS,
DJANGO_BEHIND_TLS_PROXY, METRICS_ALLOWED_IPS, METRICS_TOKEN, LOG_FORMAT), so the IdP and every
site harden, report and log alike; what differs per site is only what it passes in.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from csp.constants import NONE, SELF

from sso_client.env import env_flag
from sso_client.logs import logging_settings
from sso_client.redis_deployment import JSON_SERIALIZER  # noqa: F401  (the checks name it)

PICKLE_SERIALIZER = "django_redis.serializers.pickle.PickleSerializer"  # django-redis's default


def pickling_caches(caches: dict[str, dict]) -> list[str]:
    """The aliases of the django-redis caches in `caches` (the CACHES setting) that would pickle.

    A value anyone writes to a pickling cache's Redis runs as code in every process reading it:
    the IdP's and the sites' system checks refuse them.
    """
    return [
        alias
        for alias, cache in caches.items()
        if cache.get("BACKEND") == "django_redis.cache.RedisCache"
        and cache.get("OPTIONS", {}).get("SERIALIZER", PICKLE_SERIALIZER) == PICKLE_SERIALIZER
    ]


def shared_settings(
    *, debug: bool, uses_https: bool, form_action: Sequence[str] = (), quiet_loggers: Sequence[str] = ()
) -> dict[str, object]:
    """Django settings by name; `form_action` adds origins a form here may end at (after a redirect),
    `quiet_loggers` names libraries that log secrets at DEBUG (kept at WARNING)."""
    behind_proxy = env_flag("DJANGO_BEHIND_TLS_PROXY", False)
    log_format = (os.environ.get("LOG_FORMAT") or ("console" if debug else "json")).strip().lower()
    shared: dict[str, object] = {
        # --- on whenever the site is served over HTTPS ---
        "SESSION_COOKIE_SECURE": uses_https,
        "CSRF_COOKIE_SECURE": uses_https,
        "SECURE_SSL_REDIRECT": uses_https and env_flag("DJANGO_SECURE_SSL_REDIRECT", True),
        "SECURE_HSTS_SECONDS": int(os.environ.get("DJANGO_HSTS_SECONDS", 31536000 if uses_https else 0)),
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": uses_https,
        "SECURE_HSTS_PRELOAD": uses_https,
        "X_FRAME_OPTIONS": "DENY",
        # Authorization codes travel in URLs (redirects, the callback): no Referer leaves the origin.
        "SECURE_REFERRER_POLICY": "same-origin",
        "SECURE_CONTENT_TYPE_NOSNIFF": True,
        "SECURE_CROSS_ORIGIN_OPENER_POLICY": "same-origin",
        "CSRF_COOKIE_HTTPONLY": True,  # no script reads it: every form carries its token in the page
        "CSRF_COOKIE_SAMESITE": "Lax",
        # Content-Security-Policy (django-csp): nothing inline, no plugin, no framing. Chrome checks
        # form-action on every redirect that follows a form post, hence the origins passed in.
        "CONTENT_SECURITY_POLICY": {
            "DIRECTIVES": {
                "default-src": [SELF],
                "object-src": [NONE],
                "base-uri": [SELF],
                "form-action": [SELF, *form_action],
                "frame-ancestors": [NONE],
            }
        },
        # /-/metrics (sso_client.prometheus): loopback, these addresses and networks, and
        # `Authorization: Bearer METRICS_TOKEN`. Behind the TLS proxy, the client is the last
        # X-Forwarded-For entry (also for the IdP's sign-in lock-out and every log line).
        "METRICS_ALLOWED_IPS": [
            entry.strip() for entry in os.environ.get("METRICS_ALLOWED_IPS", "").split(",") if entry.strip()
        ],
        "METRICS_TOKEN": os.environ.get("METRICS_TOKEN") or None,
        "CLIENT_ADDRESS_FROM_PROXY": behind_proxy,
        # One JSON line per record (and per request); readable lines for a developer with DEBUG on.
        "LOG_FORMAT": log_format,
        "LOGGING": logging_settings(log_format, quiet=list(quiet_loggers)),
    }
    if behind_proxy:
        shared["SECURE_PROXY_SSL_HEADER"] = ("HTTP_X_FORWARDED_PROTO", "https")
    return shared
