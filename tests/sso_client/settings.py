"""A minimal site for sso_client's unit tests: in-memory cache and database, a configured client."""

SECRET_KEY = "unit-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["testserver"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "sso_client",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "sso_client.middleware.SsoMiddleware",
]
ROOT_URLCONF = "tests.sso_client.urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
SESSION_ENGINE = "sso_client.sessions"  # Django's cache sessions, kept ended after a logout
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [__import__("pathlib").Path(__file__).parent / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]
USE_TZ = True
STATIC_URL = "static/"
SSO_CLIENT = {
    "ISSUER": "https://idp.example/o",
    "CLIENT_ID": "site-x",
    "CLIENT_SECRET": "site-x-secret",
    "PUBLIC_PATHS": ["/public/"],
    "REFRESH_MARGIN_SECONDS": 60,
    "REFRESH_WAIT_SECONDS": 1,
}
