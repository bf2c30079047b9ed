"""The IdP's Content-Security-Policy: django-csp's, with form-action open to the registered clients.

Every form at the IdP posts to the IdP itself, but the sign-in, consent and end-session forms end in
a redirect to a client (a redirect URI, or a post-logout redirect URI), and Chrome checks form-action
on each redirect that follows a form post. So an HTML page's form-action lists, next to 'self', the
origins of the applications registered now, read from the database: an application added in the
admin works at once, on every replica, with no restart.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from csp.middleware import CSPMiddleware, PolicyParts
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponseBase
from oauth2_provider.models import get_application_model

# scheme://host[:port] and nothing more, so that no stored URI can add anything else to the header.
ORIGIN = re.compile(r"https?://([a-z0-9.-]+|\[[0-9a-f:.]+\])(:[0-9]+)?")


def registered_client_origins() -> list[str]:
    """The origins of every registered redirect URI and post-logout redirect URI, sorted."""
    origins = set()
    for uris in get_application_model().objects.values_list("redirect_uris", "post_logout_redirect_uris"):
        for uri in " ".join(uris).split():
            parts = urlsplit(uri)
            origin = f"{parts.scheme}://{parts.netloc}".lower()
            if ORIGIN.fullmatch(origin):
                origins.add(origin)
    return sorted(origins)


class ClientFormActionCSPMiddleware(CSPMiddleware):
    """`csp.middleware.CSPMiddleware`, adding the registered clients' origins to form-action.

    Sits in MIDDLEWARE where django-csp's own would, right after SecurityMiddleware. Only HTML pages
    pay for the query (redirects and JSON carry no form); the report-only policy, if one is ever
    set, is left as configured.
    """

    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        if report_only or not is_page(response):
            return parts
        try:
            origins = registered_client_origins()
        except DatabaseError:
            return parts  # the database is down: this page is an error page, 'self' is enough
        update = dict(parts.update or {})
        update["form-action"] = [*update.get("form-action", []), *origins]
        parts.update = update
        return parts


def is_page(response: HttpResponseBase) -> bool:
    return response.get("Content-Type", "").startswith("text/html") and not 300 <= response.status_code < 400
