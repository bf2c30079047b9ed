"""The IdP's settings for its unit tests: everything real but the session store, kept in memory.

The end-to-end tests run the IdP with a real redis-server; these tests exercise code paths.
"""

import os
import tempfile

os.environ.setdefault("SSO_LOCAL_DIR", tempfile.mkdtemp(prefix="idp-unit-"))

from idp_server.settings import *  # noqa: F403

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# SQLite in memory, never DATABASE_URL's database: tests/idp/conftest.py moves the tests to
# PostgreSQL (TEST_DATABASE_URL, or a private server) when there is one.
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", "provider.hashers.ClientSecretHasher"]
ALLOWED_HOSTS = ["testserver", "127.0.0.1"]
SILENCED_SYSTEM_CHECKS = ["provider.E001"]  # no Redis in unit tests
STATIC_ROOT.mkdir(  # noqa: F405
    parents=True, exist_ok=True
)  # whitenoise warns about a missing folder
