"""Client site A without sso_client's middleware: the same pages, Redis, key prefix and cookies.

The bench serves it beside the real site A, so that one signed-in session cookie opens the same
page on both and the difference is the middleware's cost. Never used by the product.
"""

from site_a.settings import *  # noqa: F403
from site_a.settings import MIDDLEWARE as _MIDDLEWARE

MIDDLEWARE = [name for name in _MIDDLEWARE if name != "sso_client.middleware.SsoMiddleware"]
