"""The app's views: start a sign-in, the IdP's callback, signing out, back-channel logout."""

from __future__ import annotations

import logging

from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from sso_client.backchannel import LogoutTokenInvalid, receive_logout_token
from sso_client.client import IdentityProviderUnavailable, identity_provider
from sso_client.conf import sso_settings
from sso_client.flow import SignInFailed, complete_sign_in, post_logout_redirect_uri, safe_next, start_sign_in
from sso_client.metrics import backchannel_logout_counted
from sso_client.pages import idp_unavailable_page, problem_page
from sso_client.tokens import session_sid

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
    """GET asks to confirm; POST (with its CSRF token) signs out here, then at the IdP.

    The IdP's end-session endpoint (OIDC RP-Initiated Logout) ends the IdP session, tells every
    other site of that session through back-channel logout, and sends the person back to
    POST_LOGOUT_REDIRECT_URI. The session keeps no ID token for an `id_token_hint`: the request
    names this client (`client_id`) and the IdP session signed out of (`logout_hint`, its `sid`);
    the IdP signs out without asking when that is the browser's current IdP session. Without a
    known sid (a session signed in without one) it goes without a hint, and the IdP asks.
    """
    if request.method == "GET":
        return TemplateResponse(request, "sso_client/logout.html", {"base_template": sso_settings.BASE_TEMPLATE})
    sid = session_sid(request.session)
    logout(request)
    try:
        end_session = identity_provider().create_logout_url(
            post_logout_redirect_uri=post_logout_redirect_uri(request),
            client_id=sso_settings.CLIENT_ID,
            **({"logout_hint": sid} if sid else {}),
        )
    except (IdentityProviderUnavailable, RuntimeError) as error:
        logger.warning("Signed out locally only; the IdP's end-session endpoint is unavailable: %s", error)
        return HttpResponseRedirect(reverse("sso_client:signed-out") + "?idp=unreachable")
    return HttpResponseRedirect(end_session["url"])


@never_cache
@csrf_exempt  # the IdP posts here from its own server: there is no browser, no CSRF token
@require_POST
def backchannel_logout(request: HttpRequest) -> HttpResponse:
    """OIDC Back-Channel Logout 1.0, section 2.8: 200 when done, 400 with an OAuth error if not."""
    try:
        ended = receive_logout_token(request.POST.get("logout_token", ""))
    except LogoutTokenInvalid as refusal:
        logger.info("Logout token refused: %s", refusal)
        backchannel_logout_counted("refused")
        response = JsonResponse({"error": "invalid_request", "error_description": str(refusal)}, status=400)
    except IdentityProviderUnavailable as error:
        logger.warning("Cannot check a logout token, the IdP's keys are unavailable: %s", error)
        backchannel_logout_counted("unavailable")
        response = JsonResponse({"error": "temporarily_unavailable"}, status=503)  # the IdP retries
    else:
        logger.info("Back-channel logout ended %d session(s)", ended)
        backchannel_logout_counted("accepted")
        response = HttpResponse(status=200)
    response["Cache-Control"] = "no-store"
    return response


@never_cache
def signed_out(request: HttpRequest) -> HttpResponse:
    context = {"base_template": sso_settings.BASE_TEMPLATE, "idp_unreachable": request.GET.get("idp") == "unreachable"}
    return TemplateResponse(request, "sso_client/signed_out.html", context)
