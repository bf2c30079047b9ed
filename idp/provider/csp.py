"""The IdP's Content-Security-Policy: django-csp's, with form-action open to the registered clients.

Every form at the IdP posts to the IdP itself, but the sign-in, consent and end-session forms end in
a redirect to a client (a redirect URI, or a post-logout redirect URI), and Chrome checks form-action
on each redirect that follows a form post. So an HTML page's form-action lists, next to 'self', the
origins of the applications registered, kept per process and checked against a version
number in the shared cache (Redis): saving or deleting an application, in the admin or with
`register_app`, in any process of any replica, gives the version a new value, and every process
reads the origins again on its next page. So an application added works at once, everywhere,
with no restart, and a page costs one Redis GET instead of a query over every application. A
change that sends no signal (a queryset update, SQL by hand) shows within CLIENT_ORIGINS_SECONDS.
"""

from __future__ import annotations

import re
import time
import uuid
from urllib.parse import urlsplit

from csp.middleware import PolicyParts
from django.core.cache import cache
from django.db import DatabaseError
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponseBase
from oauth2_provider.models import get_application_model

from sso_client.csp import CSPMiddleware

# scheme://host[:port] and nothing more, so that no stored URI can add anything else to the header.
ORIGIN = re.compile(r"https?://([a-z0-9.-]+|\[[0-9a-f:.]+\])(:[0-9]+)?")
#: How long a process keeps the origins it read when nothing tells it they changed.
CLIENT_ORIGINS_SECONDS = 300
#: The shared cache's key of the origins' version: a new value whenever an application changes.
VERSION_KEY = "provider.csp.client-origins-version"
#: (version, when read by time.monotonic(), the origins), or None: read on the next page.
_origins: tuple[str | None, float, list[str]] | None = None


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


def client_origins() -> list[str]:
    """`registered_client_origins()`, read again only when an application changed (or after
    CLIENT_ORIGINS_SECONDS): one GET of the version from the shared cache, no query."""
    global _origins
    try:
        version = cache.get(VERSION_KEY)
    except Exception:  # the cache is down: read the database, as before there was a copy
        return registered_client_origins()
    cached = _origins
    if cached is None or cached[0] != version or time.monotonic() - cached[1] > CLIENT_ORIGINS_SECONDS:
        cached = _origins = (version, time.monotonic(), registered_client_origins())
    return cached[2]


@receiver(post_save, sender=get_application_model(), dispatch_uid="provider.csp.application_saved")
@receiver(post_delete, sender=get_application_model(), dispatch_uid="provider.csp.application_deleted")
def client_origins_changed(**kwargs) -> None:
    """Every process, here and on the other replicas, reads the origins again on its next page."""
    client_origins_forget()
    cache.set(VERSION_KEY, uuid.uuid4().hex, timeout=None)


def client_origins_forget() -> None:
    """This process's copy is dropped (the tests, between them)."""
    global _origins
    _origins = None


class ClientFormActionCSPMiddleware(CSPMiddleware):
    """`sso_client.csp.CSPMiddleware` (django-csp's), adding the registered clients' origins to form-action.

    Sits in MIDDLEWARE where django-csp's own would, right after SecurityMiddleware. Only HTML pages
    need the origins (redirects and JSON carry no form); the report-only policy, if one is ever
    set, is left as configured.
    """

    def plain_policy_key(self, request: HttpRequest, response: HttpResponseBase) -> str | None:
        return None if is_page(response) else super().plain_policy_key(request, response)

    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        if report_only or not is_page(response):
            return parts
        try:
            origins = client_origins()
        except DatabaseError:
            return parts  # the database is down: this page is an error page, 'self' is enough
        update = dict(parts.update or {})
        update["form-action"] = [*update.get("form-action", []), *origins]
        parts.update = update
        return parts


def is_page(response: HttpResponseBase) -> bool:
    return response.get("Content-Type", "").startswith("text/html") and not 300 <= response.status_code < 400
