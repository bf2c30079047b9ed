"""Settings of client site B: every environment variable is read here and nowhere else."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from sso_client.database import database_config
from sso_client.env import env_flag, local_default
from sso_client.production import shared_settings
from sso_client.redis_deployment import RedisDeployment

BASE_DIR = Path(__file__).resolve().parent.parent
LOCAL_DIR = Path(os.environ.get("SSO_LOCAL_DIR", BASE_DIR.parent / ".local"))

DEBUG = env_flag("DJANGO_DEBUG", True)
SECRET_KEY = local_default("DJANGO_SECRET_KEY", "local-only-site_b-secret-key", debug=DEBUG)

SITE_TITLE = "Site B"
SITE_URL = os.environ.get("SITE_B_URL", "http://127.0.0.1:8002").rstrip("/")
OTHER_SITE = {"title": "Site A", "url": os.environ.get("SITE_A_URL", "http://127.0.0.1:8001").rstrip("/")}
IDP_URL = os.environ.get("IDP_URL", "http://127.0.0.1:8000").rstrip("/")
_site = urlsplit(SITE_URL)
USES_HTTPS = _site.scheme == "https"

ALLOWED_HOSTS = [_site.hostname or "127.0.0.1"] + [
    host.strip() for host in os.environ.get("DJANGO_ALLOWED_HOSTS", "").split(",") if host.strip()
]
CSRF_TRUSTED_ORIGINS = [f"{_site.scheme}://{_site.netloc}"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "csp",
    "sso_client",
    "django_prometheus",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",  # first: times the whole stack
    "sso_client.request_log.RequestLogMiddleware",  # one log line per request, with its X-Request-ID
    "django.middleware.security.SecurityMiddleware",
    "sso_client.csp.CSPMiddleware",  # django-csp's, a plain response's policy built once
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "sso_client.middleware.SsoMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "sso_client.prometheus.PrometheusAfterMiddleware",  # django-prometheus's, last
]

ROOT_URLCONF = "site_b.urls"
WSGI_APPLICATION = "site_b.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "site_b.views.site_context",
            ],
        },
    },
]

# The site's own users (created from the IdP's claims); people have no password here. PostgreSQL
# in production (psycopg's pool, sized for gunicorn's threads), SQLite as `make run`'s default.
DATABASES = {
    "default": database_config(
        os.environ.get("SITE_B_DATABASE_URL") or f"sqlite:///{LOCAL_DIR / 'site_b.sqlite3'}",
        variable="SITE_B_DATABASE_URL",
        threads=os.environ.get("GUNICORN_THREADS", ""),
    )
}
SSO_DATABASE_URL_VARIABLE = "SITE_B_DATABASE_URL"  # what start-up errors about the database name
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Sessions in Redis only, under this site's own key prefix, with cookie names of its own: browsers
# do not separate cookies by port, so sites on one host must not share cookie names.
# One Redis server, or a Sentinel deployment (REDIS_SENTINELS): see sso_client.redis_deployment.
CACHES = {"default": RedisDeployment.from_environ().cache(key_prefix="site_b")}
SESSION_ENGINE = "sso_client.sessions"  # Django's cache sessions, kept ended after a logout
SESSION_COOKIE_NAME = "site_b_sessionid"
CSRF_COOKIE_NAME = "site_b_csrftoken"
SESSION_COOKIE_AGE = int(os.environ.get("SITE_SESSION_SECONDS", 10 * 3600))
SESSION_COOKIE_SAMESITE = "Lax"  # the IdP's redirect back is a top-level GET: Lax cookies go with it

SSO_CLIENT = {
    "ISSUER": f"{IDP_URL}/o",
    "CLIENT_ID": os.environ.get("SITE_B_CLIENT_ID", "site-b"),
    "CLIENT_SECRET": local_default("SITE_B_CLIENT_SECRET", "local-only-site-b-client-secret", debug=DEBUG),
    "REDIRECT_URI": f"{SITE_URL}/sso/callback/",
    "POST_LOGOUT_REDIRECT_URI": f"{SITE_URL}/sso/signed-out/",
    "PUBLIC_PATHS": ["/about/", "/-/health/", "/-/metrics"],
    "REFRESH_MARGIN_SECONDS": int(os.environ.get("SSO_REFRESH_MARGIN_SECONDS", 60)),
    # How long the IdP's discovery document and JWKS are kept (a retired signing key stops
    # verifying here within this time; a new key is fetched at once).
    "METADATA_CACHE_SECONDS": int(os.environ.get("SSO_METADATA_CACHE_SECONDS", 3600)),
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", LOCAL_DIR / "static" / "site_b"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# HTTPS hardening, headers, Content-Security-Policy, /-/metrics and JSON logs: as every process of
# the product has them (sso_client.production). A form here may end at the IdP: signing out posts
# here, then redirects to the IdP's end-session endpoint. Authlib logs the PKCE verifier at DEBUG.
_idp = urlsplit(IDP_URL)
globals().update(
    shared_settings(
        debug=DEBUG, uses_https=USES_HTTPS, form_action=[f"{_idp.scheme}://{_idp.netloc}"], quiet_loggers=["authlib"]
    )
)
