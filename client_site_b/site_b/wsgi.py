"""WSGI entry point of client site B (gunicorn site_b.wsgi)."""

import os

from sso_client.health import wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "site_b.settings")
application = wsgi_application()
