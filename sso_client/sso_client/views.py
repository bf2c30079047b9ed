"""The app's views: start a sign-in, the IdP's callback, signing out."""

from __future__ import annotations

import logging

from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from sso_client.client import IdentityProviderUnavailable
from sso_client.conf import sso_settings
from sso_client.flow import SignInFailed, complete_sign_in, safe_next, start_sign_in
from sso_client.pages import idp_unavailable_page, problem_page

logger = logging.getLogger(__name__)


@never_cache
@require_GET
def login(request: HttpRequest) -> HttpResponse:
    try:
        return start_sign_in(request, safe_next(request.GET.get("next")))
    except IdentityProviderUnavailable as error:
        logger.warning("Identity provider unavailable: %s", error)
        return idp_unavailable_page(request)


@never_cache
@require_GET
def callback(request: HttpRequest) -> HttpResponse:
    """Where the IdP sends the browser back (the registered redirect URI).

    A bad callback ends on a 4xx page that offers to sign in again, and leaves alone whatever
    session the browser already had.
    """
    try:
        return HttpResponseRedirect(complete_sign_in(request))
    except SignInFailed as failure:
        logger.info("Sign-in callback refused: %s", failure.reason)
        return problem_page(request, status=failure.status, title="Sign-in did not complete", message=failure.reason)
    except (IdentityProviderUnavailable, OSError) as error:  # requests' errors are OSErrors
        logger.warning("Identity provider unavailable during sign-in: %s", type(error).__name__)
        return idp_unavailable_page(request)
    except ValueError as error:  # the IdP answered something that is not OAuth
        logger.warning("Identity provider answered unexpectedly: %s", type(error).__name__)
        return problem_page(
            request,
            status=502,
            title="Sign-in is unavailable",
            message="The sign-in service gave an answer that could not be understood. Please try again later.",
        )


@never_cache
@require_http_methods(["GET", "POST"])
def logout_view(request: HttpRequest) -> HttpResponse:
    """GET asks to confirm; POST (with its CSRF token) signs out of this site."""
    if request.method == "GET":
        return TemplateResponse(request, "sso_client/logout.html", {"base_template": sso_settings.BASE_TEMPLATE})
    logout(request)
    return HttpResponseRedirect(reverse("sso_client:signed-out"))


@never_cache
def signed_out(request: HttpRequest) -> HttpResponse:
    return TemplateResponse(request, "sso_client/signed_out.html", {"base_template": sso_settings.BASE_TEMPLATE})
