"""The app's own pages: problems with signing in, and signed out. They use the site's layout."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse

from sso_client.conf import sso_settings


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
