"""Settings of the identity provider: every environment variable is read here and nowhere else.

Local defaults make `make run` work with nothing set. They are for a developer's machine only:
with DJANGO_DEBUG off, a missing DJANGO_SECRET_KEY or signing key stops start-up with a message
naming the variable to set, and the demo seeding refuses to run without its passwords.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from idp_server.database import database_config
from idp_server.signing_key import load_signing_keys
from sso_client.production import shared_settings
from sso_client.redis_deployment import RedisDeployment

BASE_DIR = Path(__file__).resolve().parent.parent
REPO_ROOT = BASE_DIR.parent
# Local state of a developer's machine (SQLite file, signing key, Redis files); ignored by git.
LOCAL_DIR = Path(os.environ.get("SSO_LOCAL_DIR", REPO_ROOT / ".local"))


def env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def local_default(name: str, value: str, *, required: bool = True) -> str | None:
    """Read `name` from the environment; fall back to `value` only when DEBUG is on.

    With DEBUG off and nothing set, a required value stops start-up; an optional one is None and
    whatever needs it (the demo seeding, say) refuses to run, naming the variable.
    """
    from_env = os.environ.get(name)
    if from_env:
        return from_env
    if not DEBUG:
        if not required:
            return None
        raise ImproperlyConfigured(
            f"{name} must be set when DJANGO_DEBUG is off (the built-in default is for local runs only)."
        )
    return value


DEBUG = env_flag("DJANGO_DEBUG", True)
SECRET_KEY = local_default("DJANGO_SECRET_KEY", "local-only-idp-secret-key-never-use-in-production")

IDP_URL = os.environ.get("IDP_URL", "http://127.0.0.1:8000").rstrip("/")
SITE_A_URL = os.environ.get("SITE_A_URL", "http://127.0.0.1:8001").rstrip("/")
SITE_B_URL = os.environ.get("SITE_B_URL", "http://127.0.0.1:8002").rstrip("/")
OIDC_ISSUER = f"{IDP_URL}/o"
_idp = urlsplit(IDP_URL)
USES_HTTPS = _idp.scheme == "https"

ALLOWED_HOSTS = [_idp.hostname or "127.0.0.1"] + [
    host.strip() for host in os.environ.get("DJANGO_ALLOWED_HOSTS", "").split(",") if host.strip()
]
CSRF_TRUSTED_ORIGINS = [f"{_idp.scheme}://{_idp.netloc}"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "oauth2_provider",
    "csp",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",  # authenticator apps (TOTP)
    "django_otp.plugins.otp_static",  # recovery codes
    "provider",
    "accounts",
    "django_prometheus",
    "ops",  # metrics, structured logs (after axes: its receivers mark a sign-in locked out first)
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",  # first: times the whole stack
    "sso_client.request_log.RequestLogMiddleware",  # one log line per request, with its X-Request-ID
    "django.middleware.security.SecurityMiddleware",
    "provider.csp.ClientFormActionCSPMiddleware",  # django-csp's, form-action widened
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "sso_client.prometheus.PrometheusAfterMiddleware",  # django-prometheus's, last but axes: it sees axes' 429
    "axes.middleware.AxesMiddleware",  # last, as axes asks: turns a locked-out sign-in into its 429 page
]

ROOT_URLCONF = "idp_server.urls"
WSGI_APPLICATION = "idp_server.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # Project templates come first, so they also restyle the admin's and the toolkit's pages.
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# PostgreSQL in production (through psycopg's pool, sized for gunicorn's threads); SQLite when
# DATABASE_URL is unset, as `make run`'s zero-set-up default. See idp_server.database.
DATABASES = {
    "default": database_config(
        os.environ.get("DATABASE_URL") or f"sqlite:///{LOCAL_DIR / 'idp.sqlite3'}",
        variable="DATABASE_URL",
        threads=os.environ.get("GUNICORN_THREADS", ""),
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The toolkit refuses a refresh-token grace period with hashed token storage (oauth2_provider.E001):
# its grace path hands back the stored pair, which only exists as checksums here. This IdP's
# validator replaces that path (it revokes the unused pair and mints a new one), and its own check
# provider.E004 refuses the combination when another validator is configured.
SILENCED_SYSTEM_CHECKS = ["oauth2_provider.E001"]

# Sessions live in Redis only (no database copy), under a key prefix of the IdP's own. One Redis
# server, or a Sentinel deployment (REDIS_SENTINELS): see sso_client.redis_deployment.
_redis = RedisDeployment.from_environ()
REDIS_URL, REDIS_SENTINELS, REDIS_SENTINEL_PASSWORD = _redis.url, _redis.sentinels, _redis.sentinel_password
CACHES = {"default": _redis.cache(key_prefix="idp")}
SESSION_ENGINE = "sso_client.cache_sessions"  # Django's cache sessions; Redis down is a 503, not signed out
SESSION_CACHE_ALIAS = "default"
# Browsers do not separate cookies by port: every site on one host needs cookie names of its own.
SESSION_COOKIE_NAME = "idp_sessionid"
CSRF_COOKIE_NAME = "idp_csrftoken"
SESSION_COOKIE_AGE = int(os.environ.get("IDP_SESSION_SECONDS", 10 * 3600))
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_FAILURE_VIEW = "provider.views.csrf_failure"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_HASHERS = [
    "provider.hashers.PersonPasswordHasher",  # people's passwords: Argon2id, parameters in the class
    # Older hashes still verify, and are re-hashed with Argon2id at the person's next sign-in.
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "provider.hashers.ClientSecretHasher",  # generated client secrets only, never first: see the module
]
# The lock-out check comes first, so a locked-out sign-in is refused before a password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", LOCAL_DIR / "static" / "idp"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- OpenID Connect provider (django-oauth-toolkit) ----------------------------------------------
# The toolkit's own models, named because provider's models point at them (swappable models).
OAUTH2_PROVIDER_APPLICATION_MODEL = "oauth2_provider.Application"
OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL = "oauth2_provider.AccessToken"  # noqa: S105 - a model name
OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL = "oauth2_provider.RefreshToken"  # noqa: S105 - a model name
OAUTH2_PROVIDER_ID_TOKEN_MODEL = "oauth2_provider.IDToken"  # noqa: S105 - a model name
OAUTH2_PROVIDER_GRANT_MODEL = "oauth2_provider.Grant"
_signing_key, _inactive_keys = load_signing_keys(local_dir=LOCAL_DIR, debug=DEBUG)
OAUTH2_PROVIDER = {
    "OIDC_ENABLED": True,
    "OIDC_ISS_ENDPOINT": OIDC_ISSUER,
    "OIDC_RSA_PRIVATE_KEY": _signing_key,
    # Keys retired by a rotation: still published in the JWKS so tokens they signed verify.
    "OIDC_RSA_PRIVATE_KEYS_INACTIVE": _inactive_keys,
    "OIDC_RESPONSE_TYPES_SUPPORTED": ["code"],
    "OAUTH2_VALIDATOR_CLASS": "provider.oauth2_validators.OAuth2Validator",
    "APPLICATION_ADMIN_CLASS": "provider.admin.ApplicationAdmin",
    "SCOPES": {
        "openid": "Sign you in with your account",
        "profile": "See your name and username",
        "email": "See your email address",
    },
    "DEFAULT_SCOPES": ["openid"],
    "PKCE_REQUIRED": True,
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": 60,
    "ACCESS_TOKEN_EXPIRE_SECONDS": int(os.environ.get("ACCESS_TOKEN_SECONDS", 300)),
    "ID_TOKEN_EXPIRE_SECONDS": int(os.environ.get("ACCESS_TOKEN_SECONDS", 300)),
    "REFRESH_TOKEN_EXPIRE_SECONDS": SESSION_COOKIE_AGE,
    "ROTATE_REFRESH_TOKEN": True,
    # A rotated-out refresh token used again revokes the whole token family (RFC 9700 4.14.2),
    # except within REFRESH_TOKEN_GRACE_SECONDS of its rotation: then the answer the client may
    # never have received (a timeout, a crash, a lost connection) is given again, the same pair,
    # nothing new. Without it a slow IdP signs people out (docs/reliability.md).
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": int(os.environ.get("REFRESH_TOKEN_GRACE_SECONDS", 60)),
    # Client secrets are long random strings: a fast salted hash is as safe as a slow one there.
    "CLIENT_SECRET_HASHER": "client_secret_sha256",
    "OIDC_RP_INITIATED_LOGOUT_ENABLED": True,
    "OIDC_RP_INITIATED_LOGOUT_ALWAYS_PROMPT": False,
    "OIDC_RP_INITIATED_LOGOUT_STRICT_REDIRECT_URIS": True,
    # The toolkit would delete the tokens of every session of the person; signing out revokes
    # those of the ending login session only (provider.login_sessions), so a second browser stays.
    "OIDC_RP_INITIATED_LOGOUT_DELETE_TOKENS": False,
    "OAUTH2_BACKEND_CLASS": "provider.oauth2_backends.OAuthLibCore",
    # `manage.py housekeeping` (cleartokens): small batches with a pause, so sign-ins never wait long.
    "CLEAR_EXPIRED_TOKENS_BATCH_SIZE": 1000,
    "CLEAR_EXPIRED_TOKENS_BATCH_INTERVAL": 0.05,
    "REQUEST_APPROVAL_PROMPT": "auto",
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https"] if USES_HTTPS else ["http", "https"],
    # RFC 9700 (OAuth 2.0 Security Best Current Practice), all of it: no implicit or password
    # grant, PKCE with S256 only, no access token in a query string, `iss` in every authorization
    # response (RFC 9207), tokens stored hashed, and `check --deploy` failing on a weaker setup.
    **{
        f"COMPLIANT_BCP_RFC9700_{gate}": True
        for gate in [
            "IMPLICIT_GRANT",
            "PASSWORD_GRANT",
            "PKCE_METHOD",
            "ACCESS_TOKEN_TRANSPORT",
            "AUTHZ_RESPONSE_ISS",
            "TOKEN_STORAGE",
            "REFRESH_TOKEN",
            "REDIRECT_URI_MATCHING",
            "PKCE_REQUIRED",
        ]
    },
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_SCHEME": USES_HTTPS,
}

# Client ids of resource servers that may introspect every token (RFC 7662); any other client
# learns about its own tokens only.
INTROSPECTION_RESOURCE_SERVERS = [
    client_id.strip()
    for client_id in os.environ.get("INTROSPECTION_RESOURCE_SERVERS", "").split(",")
    if client_id.strip()
]

# Demo data, seeded by `manage.py seed_demo`; not needed to serve.
DEMO_PASSWORD = local_default("DEMO_PASSWORD", "alice-demo-password", required=False)
ADMIN_PASSWORD = local_default("ADMIN_PASSWORD", "admin-demo-password", required=False)
DEMO_CLIENTS = [
    {
        "client_id": "site-a",
        "name": "Client site A",
        "url": SITE_A_URL,
        "secret_variable": "SITE_A_CLIENT_SECRET",
        "secret": local_default("SITE_A_CLIENT_SECRET", "local-only-site-a-client-secret", required=False),
    },
    {
        "client_id": "site-b",
        "name": "Client site B",
        "url": SITE_B_URL,
        "secret_variable": "SITE_B_CLIENT_SECRET",
        "secret": local_default("SITE_B_CLIENT_SECRET", "local-only-site-b-client-secret", required=False),
    },
]

# Back-channel logout: how long a sign-out waits for the clients in all, each request's timeout,
# and the worker's retry backoff (seconds) for the deliveries that failed.
BACKCHANNEL_LOGOUT = {
    "WAIT_SECONDS": float(os.environ.get("BACKCHANNEL_LOGOUT_WAIT_SECONDS", 2)),
    "REQUEST_TIMEOUT_SECONDS": float(os.environ.get("BACKCHANNEL_LOGOUT_TIMEOUT_SECONDS", 2)),
    "RETRY_INTERVALS": [
        int(seconds)
        for seconds in os.environ.get("BACKCHANNEL_LOGOUT_RETRY_INTERVALS", "5,15,30,60,120,300,600").split(",")
    ],
}

# --- Brute-force lock-out of sign-ins (django-axes; the glue is provider.lockout) -----------------
# Failed sign-ins are counted in the shared Redis (the cache "default") for every replica: per
# account (the username typed, known or not) and per client address. At either limit, sign-ins
# for that account or from that address are refused with a 429 page, even with the right
# password, until LOGIN_LOCKOUT_SECONDS after the last counted failure; a counter is forgotten
# that long after its last failure too. A successful sign-in clears the account's counter.
LOGIN_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", 5))
LOGIN_ADDRESS_FAILURE_LIMIT = int(os.environ.get("LOGIN_ADDRESS_FAILURE_LIMIT", 50))
LOGIN_LOCKOUT_SECONDS = int(os.environ.get("LOGIN_LOCKOUT_SECONDS", 15 * 60))
# Behind the TLS proxy every connection comes from the proxy: the client's address is the one
# the proxy appended to X-Forwarded-For (CLIENT_ADDRESS_FROM_PROXY, from sso_client.production).
AXES_HANDLER = "provider.lockout.LockoutHandler"  # axes' cache handler, with a limit per counter
AXES_CACHE = "default"
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # two counters, not one for the pair
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT  # the handler applies LOGIN_ADDRESS_FAILURE_LIMIT to addresses
AXES_COOLOFF_TIME = "provider.lockout.cool_off"  # LOGIN_LOCKOUT_SECONDS (a bare number means hours)
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False  # refused attempts do not prolong a lock-out
AXES_RESET_ON_SUCCESS = False  # the handler clears the account's counter only, not the address's
AXES_CLIENT_IP_CALLABLE = "provider.lockout.client_address"
AXES_CLIENT_STR_CALLABLE = "provider.lockout.client_description"  # username and address, quoted
AXES_LOCKOUT_CALLABLE = "provider.lockout.locked_out_response"
AXES_ENABLE_ADMIN = False  # axes' admin lists database records, and the cache handler keeps none

# --- Two-factor sign-in (django-otp; the glue is the accounts app) --------------------------------
# Off until a person enrols an authenticator app at /accounts/two-factor/. MFA_REQUIRED makes it
# compulsory: "staff" (staff and superusers) or "all"; such a person without a device enrols
# right after the password, before they are signed in.
MFA_REQUIRED = (os.environ.get("MFA_REQUIRED") or "none").strip().lower()
if MFA_REQUIRED not in {"none", "staff", "all"}:
    raise ImproperlyConfigured(f"MFA_REQUIRED must be none, staff or all, not {MFA_REQUIRED!r}.")
OTP_TOTP_ISSUER = _idp.hostname or "Identity provider"  # the account's label in authenticator apps
OTP_TOTP_THROTTLE_FACTOR = 1  # after n wrong codes in a row, the next is refused for 2^(n-1) seconds
OTP_STATIC_THROTTLE_FACTOR = 1
OTP_ADMIN_HIDE_SENSITIVE_DATA = True  # the admin lists and deletes devices, never shows a secret

# --- HTTPS hardening, headers, Content-Security-Policy, /-/metrics, JSON logs --------------------
# As every process of the product has them (sso_client.production). The IdP's form-action is
# 'self' here; on each page provider.csp adds the registered clients' origins, as the sign-in and
# consent forms end there. oauthlib and the toolkit log request bodies at DEBUG: kept quiet.
globals().update(shared_settings(debug=DEBUG, uses_https=USES_HTTPS, quiet_loggers=["oauthlib", "oauth2_provider"]))
