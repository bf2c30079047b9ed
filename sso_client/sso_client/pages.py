"""The app's own pages: problems with signing in, signed out (in the site's layout), Redis unreachable."""

from __future__ import annotations

import sys

from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views import defaults

from sso_client.conf import sso_settings
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


def server_error(request: HttpRequest, template_name: str = "sso_client/unavailable.html") -> HttpResponse:
    """handler500 of a site: Redis unreachable (or failing over) is 503 with a readable page, not 500.

    In the site's root urls.py: `handler500 = "sso_client.pages.server_error"`. The page is
    rendered without the request: its context processors would reach for the broken session.
    """
    if is_redis_outage(sys.exc_info()[1]):
        response = HttpResponse(render_to_string(template_name), status=503)
        response["Retry-After"] = str(REDIS_OUTAGE_RETRY_AFTER_SECONDS)
        return response
    return defaults.server_error(request)
