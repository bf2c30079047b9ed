"""WSGI entry point of the identity provider (gunicorn idp_server.wsgi)."""

import os
import sys

from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "idp_server.settings")

# Refusing to start is one line on stderr and exit code 3 (which gunicorn also reads as "cannot
# boot"); with gunicorn's preload_app this runs once, in the master, before any worker starts.
try:
    application = get_wsgi_application()
except ImproperlyConfigured as error:
    print(f"error: {error}", file=sys.stderr, flush=True)
    sys.exit(3)

from idp_server.database import database_problem
from provider.redis_health import redis_problem

if problem := redis_problem() or database_problem("DATABASE_URL"):
    print(f"error: {problem}", file=sys.stderr, flush=True)
    sys.exit(3)
