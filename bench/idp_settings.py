"""The IdP's own settings, plus two bench-only views (bench.idp_urls). Never used by the product.

The bench's IdP gunicorn runs with DJANGO_SETTINGS_MODULE=bench.idp_settings and PYTHONPATH
holding the repository root and idp/.
"""

from idp_server.settings import *  # noqa: F403

ROOT_URLCONF = "bench.idp_urls"
