"""The app's own pages: problems with signing in, signed out (in the site's layout), Redis or the
database unreachable."""

from __future__ import annotations

import sys

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views import defaults

from sso_client.conf import sso_settings
from sso_client.database import is_database_outage
from sso_client.redis_deployment import is_redis_outage


def problem_page(
    request: HttpRequest, *, status: int, title: str, message: str, offer_sign_in: bool = True
) -> HttpResponse:
    response = TemplateResponse(
        request,
        "sso_client/problem.html",
        {
            "base_template": sso_settings.BASE_TEMPLATE,
            "title": title,
            "message": message,
            "sign_in_url": reverse("sso_client:login") if offer_sign_in else None,
        },
        status=status,
    )
    if status == 503:
        response["Retry-After"] = "10"
    return response.render()


def idp_unavailable_page(request: HttpRequest) -> HttpResponse:
    return problem_page(
        request,
        status=503,
        title="Sign-in is unavailable",
        message="The sign-in service cannot be reached right now. Please try again in a moment.",
    )


#: Seconds a browser or client is told to wait before trying again while Redis is unreachable.
REDIS_OUTAGE_RETRY_AFTER_SECONDS = 5
#: The same while the database is unreachable: a restart of PostgreSQL takes a few seconds, and
#: the connection pool reconnects within a few more (sso_client.database.POOL_RECONNECT_SECONDS).
DATABASE_OUTAGE_RETRY_AFTER_SECONDS = 5


def server_error(
    request: HttpRequest, template_name: str = "sso_client/unavailable.html", *, as_json: bool = False
) -> HttpResponse:
    """handler500 of a site: Redis or the database unreachable (or failing over) is 503, not 500.

    In the site's root urls.py: `handler500 = "sso_client.pages.server_error"`. The page says
    which store cannot be reached (`store` in its context: "session store" or "database") and is
    rendered without the request: its context processors would reach for the broken session or
    database. With `as_json` (an endpoint that answers programs) the answer is an OAuth 2.0 error
    object instead. Any other error stays Django's 500 page.
    """
    error = sys.exc_info()[1]
    if is_redis_outage(error):
        store, retry_after = "session store", REDIS_OUTAGE_RETRY_AFTER_SECONDS
    elif is_database_outage(error):
        store, retry_after = "database", DATABASE_OUTAGE_RETRY_AFTER_SECONDS
    else:
        return defaults.server_error(request)
    if as_json:
        response = JsonResponse(
            {
                "error": "temporarily_unavailable",
                "error_description": f"The service cannot reach its {store} right now. Try again in a moment.",
            },
            status=503,
        )
        response["Cache-Control"] = "no-store"
    else:
        response = HttpResponse(render_to_string(template_name, {"store": store}), status=503)
    response["Retry-After"] = str(retry_after)
    return response
