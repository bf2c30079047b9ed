"""WSGI entry point of client site A (gunicorn site_a.wsgi)."""

import os

from sso_client.health import wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "site_a.settings")
application = wsgi_application()
