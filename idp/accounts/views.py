"""Two-factor sign-in pages: the code step after the password, enrolment, recovery codes, turning it off.

Also the admin's login page, with the same hand-over to the code step: the admin's own login
form checks the password only and would be a way around the second factor.
"""

from __future__ import annotations

import time
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import REDIRECT_FIELD_NAME, authenticate
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from accounts.forms import CodeForm, ProofForm
from accounts.login import TwoFactorLoginMixin, code_refused, locked_out_response, sign_in_locked_out
from accounts.pending import (
    CODE,
    ENROL,
    Pending,
    pending_clear,
    pending_next_url,
    pending_of,
    sign_in_with_second_factor,
)
from accounts.selectors import recovery_codes_left, two_factor_enabled, two_factor_required
from accounts.services import (
    TOTP_CODE,
    normalised,
    recovery_codes_replace,
    second_factor_verify,
    totp_device_confirm,
    totp_device_start,
    totp_qr_svg,
    totp_secret_text,
    two_factor_remove,
)
from provider.login_sessions import SID_SESSION_KEY, active

#: Enrolling is allowed this long after a sign-in; later, the password is asked for again first.
RECENT_SIGN_IN_SECONDS = 10 * 60


# --- the second step of signing in ----------------------------------------------------------------
@never_cache
@sensitive_post_parameters("code")
def two_factor_verify(request: HttpRequest) -> HttpResponse:
    """After the password: the app's six-digit code (or a recovery code), then the sign-in."""
    pending = pending_of(request, step=CODE)
    if pending is None:
        return _sign_in_expired(request)
    if request.method != "POST":
        return render(request, "accounts/two_factor_verify.html", {"form": CodeForm()})
    if sign_in_locked_out(request, pending.user):
        pending_clear(request)  # after the lock-out, the password again
        return locked_out_response(request, pending.user)
    form = CodeForm(request.POST)
    wait_seconds = 0
    if form.is_valid():  # (an empty form is no guess: not counted)
        check = second_factor_verify(user=pending.user, code=form.cleaned_data["code"])
        if check.accepted:
            sign_in_with_second_factor(request, pending)
            return HttpResponseRedirect(_continue_url(pending))
        wait_seconds = check.wait_seconds
        code_refused(request, pending.user)
        if getattr(request, "axes_locked_out", False):
            pending_clear(request)  # axes' middleware answers with its lock-out page instead of ours
    context = {"form": form, "refused": True, "wait_seconds": wait_seconds}
    return render(request, "accounts/two_factor_verify.html", context, status=400)


def _sign_in_expired(request: HttpRequest) -> HttpResponse:
    """No sign-in waiting for a code here (never started, finished, or older than its few minutes)."""
    next_url = pending_next_url(request)
    pending_clear(request)
    login_url = reverse("login") + (f"?{urlencode({'next': next_url})}" if next_url else "")
    return render(request, "accounts/sign_in_expired.html", {"login_url": login_url}, status=400)


def _continue_url(pending: Pending) -> str:
    return pending.next_url or resolve_url(settings.LOGIN_REDIRECT_URL)


# --- the person's own two-factor page -------------------------------------------------------------
@never_cache
@login_required
def two_factor(request: HttpRequest) -> HttpResponse:
    return _two_factor_page(request)


def _two_factor_page(request: HttpRequest, *, error: str = "", status: int = 200) -> HttpResponse:
    context = {
        "enabled": two_factor_enabled(request.user),
        "required": two_factor_required(request.user),
        "recovery_codes_left": recovery_codes_left(request.user),
        "error": error,
    }
    return render(request, "accounts/two_factor.html", context, status=status)


def _signed_in_recently(request: HttpRequest) -> bool:
    login_session = active(request.session.get(SID_SESSION_KEY))
    return login_session is not None and time.time() - login_session.auth_time.timestamp() < RECENT_SIGN_IN_SECONDS


@never_cache
@sensitive_post_parameters("code")
def two_factor_enrol(request: HttpRequest) -> HttpResponse:
    """Enrol an authenticator app: scan the QR code (or type the secret), confirm with a first code.

    Two kinds of visitor: a signed-in person (who signed in within the last few minutes, or
    else types the password again first: a left-open browser must not be enough to tie the
    account to someone else's phone), and a person MFA_REQUIRED stopped after the password,
    who is signed in only once the first code confirms the app.
    """
    pending = pending_of(request, step=ENROL)
    if pending is not None:
        user = pending.user
    elif not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    elif not _signed_in_recently(request):
        return redirect_to_login(request.get_full_path(), reverse("reauthenticate"))
    else:
        user = request.user
    if two_factor_enabled(user):
        return redirect("two-factor") if pending is None else _sign_in_expired(request)

    device = totp_device_start(user=user)
    form, status = CodeForm(), 200
    if request.method == "POST":
        form = CodeForm(request.POST)
        codes = totp_device_confirm(device=device, code=form.cleaned_data["code"]) if form.is_valid() else None
        if codes is not None:
            if pending is not None:
                sign_in_with_second_factor(request, pending)
                continue_url = _continue_url(pending)
            else:
                continue_url = reverse("two-factor")
            return render(request, "accounts/recovery_codes.html", {"codes": codes, "continue_url": continue_url})
        status = 400
    context = {
        "form": form,
        "refused": status == 400,
        "qr_svg": totp_qr_svg(device),
        "secret": totp_secret_text(device),
        "signing_in": pending is not None,
    }
    return render(request, "accounts/two_factor_enrol.html", context, status=status)


def _proved(request: HttpRequest, proof: str) -> bool:
    """A code from the person's app, or their password; either way a wrong one counts for axes."""
    user = request.user
    if TOTP_CODE.fullmatch(normalised(proof)):  # never a password: all-digit ones are refused
        if second_factor_verify(user=user, code=proof).accepted:
            return True
        code_refused(request, user)
        return False
    # authenticate(), not check_password(): django-axes counts a wrong password (and refuses
    # during a lock-out) as on the sign-in page.
    proved = authenticate(request, username=user.get_username(), password=proof)
    return proved is not None and proved.pk == user.pk


@never_cache
@login_required
@require_POST
@sensitive_post_parameters("proof")
def two_factor_disable(request: HttpRequest) -> HttpResponse:
    if two_factor_required(request.user):
        return _two_factor_page(request, error=_("Two-factor sign-in is required for your account."), status=403)
    if refused := _proof_refused(request):
        return refused
    two_factor_remove(user=request.user)
    return redirect("two-factor")


@never_cache
@login_required
@require_POST
@sensitive_post_parameters("proof")
def recovery_codes_regenerate(request: HttpRequest) -> HttpResponse:
    if not two_factor_enabled(request.user):
        return redirect("two-factor")
    if refused := _proof_refused(request):
        return refused
    codes = recovery_codes_replace(user=request.user)
    return render(request, "accounts/recovery_codes.html", {"codes": codes, "continue_url": reverse("two-factor")})


def _proof_refused(request: HttpRequest) -> HttpResponse | None:
    """None if the form proves it is the person; else the page again, 400 (or axes' 429)."""
    if sign_in_locked_out(request, request.user):
        return locked_out_response(request, request.user)
    form = ProofForm(request.POST)
    if form.is_valid() and _proved(request, form.cleaned_data["proof"]):
        return None
    return _two_factor_page(request, error=_("That code or password is not right."), status=400)


# --- the admin's login ----------------------------------------------------------------------------
class AdminLoginView(TwoFactorLoginMixin, auth_views.LoginView):
    """Django's login view as the admin uses it, with the hand-over to the second step."""

    authentication_form = AdminAuthenticationForm
    template_name = "admin/login.html"


@never_cache
def admin_login(request: HttpRequest) -> HttpResponse:
    """AdminSite.login, but a person with two-factor sign-in goes on to the code step.

    The admin's own login form would sign them in with the password alone. Everything else is
    as the admin does it (its page, its 200 for a wrong password, django-axes counting).
    """
    if request.method == "GET" and admin.site.has_permission(request):
        return redirect("admin:index")
    context = {
        **admin.site.each_context(request),
        "title": _("Log in"),
        "subtitle": None,
        "app_path": request.get_full_path(),
        "username": request.user.get_username(),
    }
    if REDIRECT_FIELD_NAME not in request.GET and REDIRECT_FIELD_NAME not in request.POST:
        context[REDIRECT_FIELD_NAME] = reverse("admin:index")
    request.current_app = admin.site.name
    return AdminLoginView.as_view(extra_context=context)(request)
