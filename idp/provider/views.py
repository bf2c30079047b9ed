"""The IdP's own pages: landing page, sign-in and sign-out, health, and readable error pages."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from oauth2_provider.models import get_access_token_model

from accounts.login import TwoFactorLoginMixin
from provider.redis_health import redis_problem
from provider.selectors import account_for
from sso_client import pages
from sso_client.health import database_unreachable


class LoginView(TwoFactorLoginMixin, auth_views.LoginView):
    """Django's login view; a refused sign-in answers 400 so clients and logs can tell.

    After the right password, a person with two-factor sign-in goes on to the code step
    (accounts.login.TwoFactorLoginMixin) and is signed in only there.
    """

    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def form_invalid(self, form):
        return self.render_to_response(self.get_context_data(form=form), status=400)


class LogoutView(auth_views.LogoutView):
    template_name = "registration/logged_out.html"


@login_required
def home(request: HttpRequest) -> HttpResponse:
    AccessToken = get_access_token_model()
    applications = (
        AccessToken.objects.filter(user=request.user, application__isnull=False)
        .values_list("application__name", flat=True)
        .distinct()
        .order_by("application__name")
    )
    return render(
        request,
        "provider/home.html",
        {"account": account_for(request.user), "applications": list(applications)},
    )


@never_cache
def health_live(request: HttpRequest) -> JsonResponse:
    """The process answers: nothing else is asked."""
    return JsonResponse({"status": "ok"})


@never_cache
def health_ready(request: HttpRequest) -> JsonResponse:
    """Ready to serve: the database and the session store both answer."""
    problems = {}
    if problem := redis_problem():
        problems["redis"] = problem
    if problem := database_unreachable():
        problems["database"] = problem
    if problems:
        return JsonResponse({"status": "unavailable", "problems": problems}, status=503)
    return JsonResponse({"status": "ok"})


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    return render(request, "provider/csrf_failure.html", status=403)


#: The endpoints that answer programs, in JSON (token, introspection, revocation, device, userinfo,
#: discovery and the JWKS): an outage there is answered in JSON too, as their other errors are.
JSON_ENDPOINTS = (
    "/o/token/",
    "/o/introspect/",
    "/o/revoke_token/",
    "/o/device-authorization/",
    "/o/userinfo/",
    "/o/.well-known/",
)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: the session store or the database unreachable is the operator's to fix, so say
    503 (a page, or JSON at the endpoints that answer programs), not 500."""
    return pages.server_error(
        request,
        template_name="provider/unavailable.html",
        as_json=request.path.startswith(JSON_ENDPOINTS),
    )
