"""WSGI entry point of the identity provider (gunicorn idp_server.wsgi)."""

import os
import sys

from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "idp_server.settings")

# Exit code 3 tells gunicorn the worker cannot boot, so it stops instead of retrying forever.
try:
    application = get_wsgi_application()
except ImproperlyConfigured as error:
    print(f"error: {error}", file=sys.stderr, flush=True)
    sys.exit(3)

from provider.redis_health import redis_problem

if problem := redis_problem():
    print(f"error: {problem}", file=sys.stderr, flush=True)
    sys.exit(3)
